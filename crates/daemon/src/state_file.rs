//! The learned-state file: a header line, then the state as JSON.
//!
//! ```text
//! burstwatch-state 3 <json length> sha256:<64 hex digits of the JSON>
//! {"version":3,...}
//! ```
//!
//! Written atomically (temporary file created with `O_EXCL|O_NOFOLLOW`, mode 0600, fsync,
//! rename, fsync of the directory) on exit and at every checkpoint; read on start. What is
//! refused, and what becomes of the file:
//!
//! * **not trusted**: a symbolic link, not a regular file, owned by another account than the
//!   daemon's (effective) user, or writable by group or others. Anyone who can write it could
//!   mark endpoints popular and silence alerts. Logged as an error; the daemon starts learning
//!   from scratch and leaves the file alone (the next checkpoint replaces it with its own).
//! * **foreign**: no burstwatch header (another program's file, or one from before the header).
//!   Logged, left alone, replaced by the next checkpoint.
//! * **damaged**: our header, but truncated, a checksum mismatch, unreadable JSON or another
//!   format version (this one reads versions 2 and 3; a version 2 file has no endpoint
//!   prefixes, which are counted again from its endpoints). Set aside as `.bad` for a look,
//!   and learning starts from scratch.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use burstwatch_engine::detect::state::{LearnedState, STATE_VERSION, STATE_VERSION_MIN};
use rustix::fs::{Mode, OFlags, CWD};
use sha2::{Digest as _, Sha256};

/// Largest state file read (a full detector at default caps is far smaller).
const MAX_BYTES: u64 = 2 << 30;
/// First word of the header line.
const MAGIC: &str = "burstwatch-state";
/// Longest header line.
const MAX_HEADER: usize = 160;

/// Why a state file was not restored.
#[derive(Debug)]
pub enum LoadError {
    /// There is no file (a first start).
    Missing,
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// Someone else could have written it.
    Untrusted(String),
    /// Not a burstwatch state file.
    Foreign(String),
    /// Ours, but damaged or of another format.
    Damaged(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Missing => write!(f, "no saved state"),
            LoadError::Io(e) => write!(f, "cannot read: {e}"),
            LoadError::Untrusted(why) => write!(f, "not trusted: {why}"),
            LoadError::Foreign(why) => write!(f, "not a burstwatch state file: {why}"),
            LoadError::Damaged(why) => write!(f, "damaged: {why}"),
        }
    }
}

/// Read the learned state at `path`, if the file exists and is usable. Every refusal is
/// logged with its reason; a damaged file of ours is set aside as `.bad`.
pub fn load(path: &Path) -> Option<LearnedState> {
    match read(path) {
        Ok(state) => {
            let (hosts, endpoints) = state.sizes();
            tracing::info!(path = %path.display(), hosts, endpoints, pending = state.pending_len(),
                "learned state restored");
            Some(state)
        }
        Err(LoadError::Missing) => {
            tracing::info!(path = %path.display(), "no saved state; learning from scratch");
            None
        }
        Err(e @ LoadError::Damaged(_)) => {
            let bad = bad_path(path);
            match std::fs::rename(path, &bad) {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), error = %e, set_aside = %bad.display(),
                    "saved state not usable; learning from scratch")
                }
                Err(re) => tracing::warn!(path = %path.display(), error = %e, rename_error = %re,
                    "saved state not usable; learning from scratch"),
            }
            None
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e,
                "saved state refused and left as it is; learning from scratch (the next \
                 checkpoint replaces it)");
            None
        }
    }
}

/// `state.json` → `state.json.bad`.
pub(crate) fn bad_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".bad");
    PathBuf::from(s)
}

/// Open, check and parse the state file.
pub fn read(path: &Path) -> Result<LearnedState, LoadError> {
    parse(&read_trusted(path)?)
}

/// The bytes of `path`, if it is a regular file of the daemon's account that nobody else
/// can write, and not too large.
pub(crate) fn read_trusted(path: &Path) -> Result<Vec<u8>, LoadError> {
    // No symlink is followed and a FIFO does not block the open; the checks below are made on
    // the file that was opened, not on the name.
    let fd = match rustix::fs::openat(
        CWD,
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Err(LoadError::Missing),
        Err(rustix::io::Errno::LOOP) => return Err(LoadError::Untrusted("a symbolic link".into())),
        Err(e) => return Err(LoadError::Io(e.into())),
    };
    let mut file = File::from(fd);
    let meta = file.metadata().map_err(LoadError::Io)?;
    if !meta.is_file() {
        return Err(LoadError::Untrusted("not a regular file".into()));
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(LoadError::Untrusted(format!(
            "owned by uid {}, not by the daemon's account (uid {euid})",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(LoadError::Untrusted(format!(
            "writable by group or others (mode {:o}); chmod 600 it",
            meta.mode() & 0o7777
        )));
    }
    if meta.len() > MAX_BYTES {
        return Err(LoadError::Foreign(format!("larger than {MAX_BYTES} bytes")));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(LoadError::Io)?;
    Ok(bytes)
}

/// Check the header against the body and parse it.
fn parse(bytes: &[u8]) -> Result<LearnedState, LoadError> {
    let (version, body) = unframe(bytes, MAGIC, STATE_VERSION_MIN..=STATE_VERSION)?;
    let state: LearnedState = serde_json::from_slice(body)
        .map_err(|e| LoadError::Damaged(format!("unreadable state: {e}")))?;
    if state.version != version {
        return Err(LoadError::Damaged(format!(
            "state format version {} where the header says {version}",
            state.version
        )));
    }
    Ok(state)
}

/// Check a file's header line (`MAGIC VERSION LENGTH sha256:HEX`) against its body: the
/// format version and the body.
pub(crate) fn unframe<'a>(
    bytes: &'a [u8],
    magic: &str,
    versions: std::ops::RangeInclusive<u32>,
) -> Result<(u32, &'a [u8]), LoadError> {
    let no_header = || LoadError::Foreign(format!("no {magic} header line"));
    let end = bytes
        .iter()
        .take(MAX_HEADER)
        .position(|&b| b == b'\n')
        .ok_or_else(no_header)?;
    let header = std::str::from_utf8(&bytes[..end]).map_err(|_| no_header())?;
    let mut words = header.split(' ');
    if words.next() != Some(magic) {
        return Err(no_header());
    }
    let damaged = |why: &str| LoadError::Damaged(why.to_string());
    let version: u32 = words
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| damaged("header without a format version"))?;
    if !versions.contains(&version) {
        return Err(LoadError::Damaged(format!(
            "format version {version}, this burstwatch reads {} to {}",
            versions.start(),
            versions.end()
        )));
    }
    let len: usize = words
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| damaged("header without a length"))?;
    let sum = words
        .next()
        .and_then(|v| v.strip_prefix("sha256:"))
        .ok_or_else(|| damaged("header without a checksum"))?;
    let body = &bytes[end + 1..];
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    if body.len() < len {
        return Err(LoadError::Damaged(format!(
            "truncated: {} of {len} bytes",
            body.len()
        )));
    }
    if body.len() > len {
        return Err(LoadError::Damaged(format!(
            "{} bytes where the header says {len}",
            body.len()
        )));
    }
    if hex(&Sha256::digest(body)) != sum {
        return Err(damaged(
            "checksum mismatch: the content was changed or corrupted",
        ));
    }
    Ok((version, body))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write learned state to `path` atomically.
pub fn save(state: &LearnedState, path: &Path) -> anyhow::Result<()> {
    let body = serde_json::to_vec(state).context("cannot serialise the state")?;
    write_framed(MAGIC, STATE_VERSION, &body, path)
        .with_context(|| format!("cannot write state to {}", path.display()))?;
    let (hosts, endpoints) = state.sizes();
    tracing::info!(path = %path.display(), hosts, endpoints, pending = state.pending_len(),
        "learned state saved");
    Ok(())
}

/// Write `body` under its header line to `path` atomically.
pub(crate) fn write_framed(
    magic: &str,
    version: u32,
    body: &[u8],
    path: &Path,
) -> std::io::Result<()> {
    let header = format!(
        "{magic} {version} {} sha256:{}\n",
        body.len(),
        hex(&Sha256::digest(body))
    );
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = create_exclusive(&tmp)?;
        let filled = f
            .write_all(header.as_bytes())
            .and_then(|()| f.write_all(body))
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_all());
        drop(f);
        // A write that failed (a full disk) leaves no partial file taking space; the file
        // at `path` is the last one written whole.
        if let Err(e) = filled.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        // The rename itself reaches the disk with the directory.
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write()
}

/// Create `tmp` for writing, never through a symlink and never an existing file. A leftover
/// (a checkpoint interrupted by a crash, or anything planted there) is unlinked by name, which
/// never touches what a symlink points to, and the create is tried once more.
fn create_exclusive(tmp: &Path) -> std::io::Result<File> {
    let open = || {
        rustix::fs::openat(
            CWD,
            tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
    };
    match open() {
        Ok(fd) => Ok(File::from(fd)),
        Err(rustix::io::Errno::EXIST) => {
            let what = match std::fs::symlink_metadata(tmp) {
                Ok(m) if m.file_type().is_symlink() => "a symbolic link",
                Ok(m) if m.is_file() => "a file",
                Ok(_) => "not a regular file",
                Err(_) => "gone",
            };
            tracing::warn!(path = %tmp.display(), found = what,
                "temporary state file already exists; removing it (its target, if a link, is not touched)");
            std::fs::remove_file(tmp)?;
            Ok(File::from(open()?))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use burstwatch_engine::{DetectConfig, Detector};

    /// A state with one endpoint and five subscribers.
    fn state() -> LearnedState {
        let mut d = Detector::new(DetectConfig::default(), 1);
        let ext: std::net::IpAddr = "198.18.7.7".parse().unwrap();
        for t in 0..30i64 {
            for h in 1..=5u8 {
                let home = std::net::IpAddr::from([10, 0, 0, h]);
                let ts = (1_700_000_000 + t) * 1_000_000_000;
                d.ingest(ts, home, ext, 40000, 443, 6, 600, 7);
            }
        }
        d.learned_state()
    }

    fn saved(dir: &Path) -> PathBuf {
        let path = dir.join("state.json");
        save(&state(), &path).unwrap();
        path
    }

    #[test]
    fn a_saved_state_loads_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved(dir.path());
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load(&path), Some(state()));
        // Written again over itself (checkpoints): no temporary file is left.
        save(&state(), &path).unwrap();
        assert!(!dir.path().join("state.tmp").exists());
        assert_eq!(load(&path), Some(state()));
    }

    #[test]
    fn a_state_file_others_can_write_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved(dir.path());
        let before = std::fs::read(&path).unwrap();
        for mode in [0o666, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(load(&path), None, "mode {mode:o}");
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains("writable by group or others"), "{err}");
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "not renamed, not changed"
        );
        assert!(!bad_path(&path).exists());
    }

    #[test]
    fn a_state_file_of_another_account_is_refused() {
        if rustix::process::geteuid().as_raw() != 0 {
            eprintln!("not root: cannot give a file to another account; skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = saved(dir.path());
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        assert_eq!(load(&path), None);
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("owned by uid 65534"), "{err}");
        assert!(path.exists() && !bad_path(&path).exists());
    }

    #[test]
    fn a_symlinked_state_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = saved(dir.path());
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(load(&link), None);
        assert!(read(&link)
            .unwrap_err()
            .to_string()
            .contains("symbolic link"));
        assert!(real.exists());
    }

    #[test]
    fn a_planted_temporary_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let path = dir.path().join("state.json");
        std::os::unix::fs::symlink(&victim, dir.path().join("state.tmp")).unwrap();
        save(&state(), &path).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(!std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(load(&path), Some(state()));
        // A stale temporary file of a crashed checkpoint is replaced too.
        std::fs::write(dir.path().join("state.tmp"), "half a checkpoint").unwrap();
        save(&state(), &path).unwrap();
        assert_eq!(load(&path), Some(state()));
    }

    #[test]
    fn a_truncated_state_file_is_refused_and_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        assert_eq!(load(&path), None);
        assert!(
            !path.exists() && bad_path(&path).exists(),
            "ours: set aside"
        );
    }

    #[test]
    fn a_changed_state_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved(dir.path());
        // Still valid JSON of the same length, one digit changed.
        let text = std::fs::read_to_string(&path).unwrap();
        let at = text.find("\"now_ns\":").unwrap() + 9;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
        std::fs::write(&path, &bytes).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        assert_eq!(load(&path), None);
        assert!(bad_path(&path).exists());
    }

    #[test]
    fn a_foreign_file_is_refused_and_never_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for text in [
            "hello, world\n".to_string(),
            // Plain JSON as an older burstwatch wrote it, without the header.
            serde_json::to_string(&state()).unwrap(),
        ] {
            std::fs::write(&path, &text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(load(&path), None);
            assert!(read(&path)
                .unwrap_err()
                .to_string()
                .contains("not a burstwatch state file"));
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
            assert!(!bad_path(&path).exists());
        }
    }
}
