//! The arguments of `burstwatch daemon` and `burstwatch check-config`; the daemon itself is
//! `crates/daemon`.

use std::path::PathBuf;

/// Arguments of `burstwatch daemon`.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Configuration file (TOML; the `[daemon]` section names the interfaces).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Arguments of `burstwatch check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// Configuration file to validate.
    #[arg(value_name = "FILE")]
    pub config: PathBuf,
    /// Treat warnings (no interface named, or one that does not exist on this machine now) as
    /// errors: for a check on the machine the daemon runs on, before it starts.
    #[arg(long)]
    pub strict: bool,
}
