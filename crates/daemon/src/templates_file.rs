//! The flow-export templates file, beside the learned state (`daemon.state_file` plus
//! `.templates`): the NetFlow v9 / IPFIX templates every exporter announced, so that after a
//! restart its data is decoded at once rather than held (or dropped) until it sends its
//! templates again, which routers do only every few minutes.
//!
//! ```text
//! burstwatch-templates 1 <json length> sha256:<64 hex digits of the JSON>
//! [{"scope":"ipfix:192.0.2.1:50000/1","kind":"ipfix_data","id":256,"wire":"01..."},...]
//! ```
//!
//! Written and trusted as the state file is (see `state_file`): atomically, mode 0600, and
//! read only if it is a regular file of the daemon's account that nobody else can write; a
//! damaged one is set aside as `.bad`. At most `MAX_TEMPLATES` entries of at most
//! `MAX_TEMPLATE_BYTES` each are taken back; the rest is counted and logged.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use burstwatch_flowexport::{SavedTemplate, TemplateStash};

use crate::state_file::{bad_path, read_trusted, unframe, write_framed, LoadError};

const MAGIC: &str = "burstwatch-templates";
const VERSION: u32 = 1;

/// `state.json` → `state.json.templates`.
pub fn path_for(state_file: &Path) -> PathBuf {
    let mut s = state_file.as_os_str().to_owned();
    s.push(".templates");
    PathBuf::from(s)
}

/// Read the templates saved at `path` into `stash`; every refusal is logged with its reason.
pub fn load(path: &Path, stash: &TemplateStash) {
    let got = read_trusted(path).and_then(|bytes| {
        let (_, body) = unframe(&bytes, MAGIC, VERSION..=VERSION)?;
        serde_json::from_slice::<Vec<SavedTemplate>>(body)
            .map_err(|e| LoadError::Damaged(format!("unreadable templates: {e}")))
    });
    match got {
        Ok(saved) => {
            let (offered, refused_before) = (saved.len(), stash.refused());
            let taken = stash.restore(saved);
            tracing::info!(path = %path.display(), templates = taken,
                refused = stash.refused() - refused_before, offered, "flow-export templates restored");
        }
        Err(LoadError::Missing) => {}
        Err(e @ LoadError::Damaged(_)) => {
            let bad = bad_path(path);
            let renamed = std::fs::rename(path, &bad);
            tracing::warn!(path = %path.display(), error = %e, set_aside = %bad.display(),
                rename_ok = renamed.is_ok(), "saved flow-export templates not usable");
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e,
                "saved flow-export templates refused and left as they are (the next save replaces them)");
        }
    }
}

/// Write every template of `stash` to `path` atomically.
pub fn save(stash: &TemplateStash, path: &Path) -> anyhow::Result<()> {
    let saved = stash.snapshot();
    let body = serde_json::to_vec(&saved).context("cannot serialise the templates")?;
    write_framed(MAGIC, VERSION, &body, path)
        .with_context(|| format!("cannot write flow-export templates to {}", path.display()))?;
    tracing::debug!(path = %path.display(), templates = saved.len(), "flow-export templates saved");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn stash_of(n: u16) -> std::sync::Arc<TemplateStash> {
        let s = TemplateStash::new();
        let saved = (0..n)
            .map(|i| SavedTemplate {
                scope: format!("ipfix:192.0.2.1:50000/{i}"),
                kind: "ipfix_data".into(),
                id: 256 + i,
                wire: "0102".into(),
            })
            .collect();
        assert_eq!(s.restore(saved), usize::from(n));
        s
    }

    #[test]
    fn saved_templates_load_again_and_bad_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("state.json"));
        assert!(path.to_string_lossy().ends_with("state.json.templates"));
        save(&stash_of(3), &path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = TemplateStash::new();
        load(&path, &back);
        assert_eq!(back.snapshot(), stash_of(3).snapshot());
        // Writable by others: refused, left alone.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let none = TemplateStash::new();
        load(&path, &none);
        assert!(none.is_empty());
        assert!(path.exists());
        // Changed content: set aside as damaged.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        load(&path, &none);
        assert!(none.is_empty());
        assert!(!path.exists() && bad_path(&path).exists());
        // A state file is not a templates file.
        std::fs::write(&path, "burstwatch-state 3 2 sha256:00\n{}\n").unwrap();
        load(&path, &none);
        assert!(none.is_empty());
        // Missing: nothing, quietly.
        load(&dir.path().join("absent"), &none);
        assert!(none.is_empty());
    }
}
