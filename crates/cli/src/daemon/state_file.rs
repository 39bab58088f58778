//! The learned-state file: JSON, written atomically (temporary file, fsync, rename) on exit,
//! read on start. A damaged or incompatible file is set aside (`.bad`) and learning starts over.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use burstwatch_engine::detect::state::LearnedState;
use burstwatch_engine::Engine;

/// Largest state file read (a full detector at default caps is far smaller).
const MAX_BYTES: u64 = 2 << 30;

/// Restore `engine` from `path` if the file exists. Returns the packet time the state was saved
/// at, when it was restored.
pub fn restore(engine: &mut Engine, path: &Path) -> Option<i64> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => {
            tracing::info!(path = %path.display(), "no saved state; learning from scratch");
            return None;
        }
    };
    let result = (|| -> anyhow::Result<(usize, usize, i64)> {
        anyhow::ensure!(meta.len() <= MAX_BYTES, "larger than {MAX_BYTES} bytes");
        let text = std::fs::read(path)?;
        let state: LearnedState = serde_json::from_slice(&text)?;
        let (hosts, endpoints) = state.sizes();
        let saved = state.now_ns;
        engine.detector_mut().restore(state)?;
        Ok((hosts, endpoints, saved))
    })();
    match result {
        Ok((hosts, endpoints, saved)) => {
            tracing::info!(path = %path.display(), hosts, endpoints, "learned state restored");
            Some(saved)
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

/// Write the engine's learned state to `path` atomically.
pub fn save(engine: &Engine, path: &Path) -> anyhow::Result<()> {
    let state = engine.detector().learned_state();
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer(&mut f, &state)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("cannot write state to {}", path.display()))?;
    let (hosts, endpoints) = state.sizes();
    tracing::info!(path = %path.display(), hosts, endpoints, "learned state saved");
    Ok(())
}
