//! What this binary is: version, git commit and cargo features (set by `build.rs`), as
//! `burstwatch --version` prints them and the exporter's `burstwatch_build_info` labels them.

/// The package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Short commit hash (`-dirty` if the tree had changes), or `unknown` outside git.
pub const COMMIT: &str = env!("BURSTWATCH_COMMIT");
/// Enabled cargo features, comma-separated (empty when none).
pub const FEATURES: &str = env!("BURSTWATCH_FEATURES");
/// The compiler's version.
pub const RUSTC: &str = env!("BURSTWATCH_RUSTC");

/// The `--version` text after the program name (one line, the same for `-V`):
/// `0.1.0 (commit 1a2b3c4d5e6f; features: report; rustc 1.95.0)`, `features: none` when none.
pub const VERSION_LINE: &str = env!("BURSTWATCH_VERSION_LINE");

/// The labels of `burstwatch_build_info`.
pub fn labels() -> burstwatch_exporter::metrics::BuildInfo<'static> {
    burstwatch_exporter::metrics::BuildInfo {
        version: VERSION,
        commit: COMMIT,
        features: FEATURES,
        rustc: RUSTC,
    }
}
