//! `burstwatch keygen` and `burstwatch reveal`: pseudonymisation keys and their inverse.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use burstwatch_anon::{format_key_hex, Pseudonymizer, KEY_LEN};

/// Arguments of `burstwatch keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the key (64 hex digits and a newline, file mode 0600).
    #[arg(short, long, value_name = "KEYFILE")]
    pub output: PathBuf,
    /// Replace an existing file (every pseudonym made with the old key becomes unrevealable).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `burstwatch reveal`.
#[derive(Debug, clap::Args)]
pub struct RevealArgs {
    /// The key the pseudonyms were made with.
    #[arg(long, value_name = "KEYFILE")]
    pub key: PathBuf,
    /// Pseudonymised addresses (IPv4 or IPv6).
    #[arg(required = true, value_name = "ADDR")]
    pub addrs: Vec<IpAddr>,
}

/// Writes a fresh random key.
pub fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no random numbers: {e}"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if args.force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let path = &args.output;
    let mut f = opts.open(path).with_context(|| {
        format!(
            "cannot create {} (use --force to replace a key)",
            path.display()
        )
    })?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on truncation: tighten it.
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    writeln!(f, "{}", format_key_hex(&key))
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Prints `pseudonym original` for each address.
pub fn reveal(args: &RevealArgs) -> anyhow::Result<ExitCode> {
    let p = Pseudonymizer::from_key_file(&args.key)?;
    let mut out = std::io::stdout().lock();
    for a in &args.addrs {
        writeln!(out, "{a} {}", p.reveal(*a))?;
    }
    Ok(ExitCode::SUCCESS)
}
