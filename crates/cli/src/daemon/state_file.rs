//! The learned-state file: JSON, written atomically (temporary file, fsync, rename) on exit,
//! read on start. A damaged or incompatible file is set aside (`.bad`) and learning starts over.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use burstwatch_engine::detect::state::{LearnedState, STATE_VERSION};

/// Largest state file read (a full detector at default caps is far smaller).
const MAX_BYTES: u64 = 2 << 30;

/// Read the learned state at `path`, if the file exists and is usable (else it is set aside).
pub fn load(path: &Path) -> Option<LearnedState> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => {
            tracing::info!(path = %path.display(), "no saved state; learning from scratch");
            return None;
        }
    };
    let result = (|| -> anyhow::Result<LearnedState> {
        anyhow::ensure!(meta.len() <= MAX_BYTES, "larger than {MAX_BYTES} bytes");
        let text = std::fs::read(path)?;
        let state: LearnedState = serde_json::from_slice(&text)?;
        anyhow::ensure!(
            state.version == STATE_VERSION,
            "state format version {} is not {STATE_VERSION}",
            state.version
        );
        Ok(state)
    })();
    match result {
        Ok(state) => {
            let (hosts, endpoints) = state.sizes();
            tracing::info!(path = %path.display(), hosts, endpoints, "learned state restored");
            Some(state)
        }
        Err(e) => {
            let bad = path.with_extension("bad");
            let _ = std::fs::rename(path, &bad);
            tracing::warn!(path = %path.display(), error = %e, set_aside = %bad.display(),
                "saved state not usable; learning from scratch");
            None
        }
    }
}

/// Write learned state to `path` atomically.
pub fn save(state: &LearnedState, path: &Path) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, state)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write state to {}", path.display()))?;
    let (hosts, endpoints) = state.sizes();
    tracing::info!(path = %path.display(), hosts, endpoints, "learned state saved");
    Ok(())
}
