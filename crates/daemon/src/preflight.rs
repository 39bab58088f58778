//! The settings the daemon starts with: what `check-config` reports and the start refuses
//! (the machine checks of `check.rs`), the memory budget split into table caps, and no beacon
//! scoring on flow export.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use burstwatch_config::Settings;

use crate::{announce, check, sinks};

/// Validate a config file as the daemon does at start: exit 0 and a one-line summary, or exit
/// 2 and every problem, each with file, line and key. A file that names no interface yet (as
/// shipped) is valid with a warning: the daemon refuses to start on it, `--strict` fails it.
pub fn check_config(config: &Path, strict: bool) -> anyhow::Result<ExitCode> {
    let text = burstwatch_config::read_config_text(config)?;
    let mut s = Settings::parse(&text, &config.display().to_string())?;
    let found = check::check(&s, config, &text);
    for w in found.not_ready.iter().chain(&found.warnings) {
        eprintln!("burstwatch: warning: {w}");
    }
    for e in &found.errors {
        eprintln!("burstwatch: error: {e}");
    }
    let warned = !found.warnings.is_empty() || !found.not_ready.is_empty();
    if !found.errors.is_empty() || (strict && warned) {
        return Ok(ExitCode::from(2));
    }
    let workers = s.daemon.workers;
    if let Err(e) = memory_budget(&mut s, workers, config) {
        eprintln!("burstwatch: error: {e:#}");
        return Ok(ExitCode::from(2));
    }
    let sinks = sinks::names(&s.daemon);
    if let Some(w) = announce::no_sink(&sinks) {
        // Not an error, even with --strict: a daemon for the metrics alone is a valid set-up.
        eprintln!("burstwatch: warning: {}: {w}", config.display());
    }
    println!(
        "{}: ok ({} interface(s), {} home prefix(es), alert sinks: {}, metrics on {}{})",
        config.display(),
        s.daemon.interfaces.len(),
        s.detect.home_nets.prefixes().len(),
        if sinks.is_empty() {
            "none".to_string()
        } else {
            sinks.join(", ")
        },
        s.daemon.metrics_bind,
        if s.privacy.key_file.is_some() {
            ", pseudonymised output"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The settings, if the daemon can start with them: what `check-config` checks, warnings
/// logged, errors returned (exit 2: a configuration error, which the systemd unit does not
/// restart on).
pub(crate) fn preflight(config: &Path) -> anyhow::Result<Settings> {
    let text = burstwatch_config::read_config_text(config)?;
    let s = Settings::parse(&text, &config.display().to_string())?;
    let found = check::check(&s, config, &text);
    for w in &found.warnings {
        tracing::warn!("{w}");
    }
    let refused: Vec<&str> = found
        .errors
        .iter()
        .chain(&found.not_ready)
        .map(String::as_str)
        .collect();
    if !refused.is_empty() {
        anyhow::bail!("{}", refused.join("\n"));
    }
    let mut s = s;
    let workers = s.daemon.workers;
    memory_budget(&mut s, workers, config)?;
    Ok(s)
}

/// The caps of the flow and detector tables from `limits.memory_budget_mib`, for `workers`
/// workers, with the capture buffers and the Alertmanager queue counted in.
pub(crate) fn memory_budget(
    settings: &mut Settings,
    workers: usize,
    config: &Path,
) -> anyhow::Result<()> {
    let plan = settings
        .apply_daemon_memory_budget(workers)
        .with_context(|| format!("{}: limits.memory_budget_mib", config.display()))?;
    tracing::info!(
        budget_mib = plan.budget_bytes >> 20,
        estimated_mib = plan.estimated_bytes().div_ceil(1 << 20),
        workers,
        max_flows = plan.caps.max_flows,
        max_hosts = plan.caps.max_hosts,
        max_pairs = plan.caps.max_pairs,
        max_endpoints = plan.caps.max_endpoints,
        "memory budget split (flows, subscribers and pairs per worker)"
    );
    Ok(())
}
