//! What the daemon says about itself at start (and `check-config` about the same settings):
//! version, config path, interfaces, alert sinks, home networks; a warning when no alert sink
//! is configured.

use std::path::Path;

use burstwatch_config::Settings;

/// The warning for a configuration without alert sinks, or `None` when it has one.
pub fn no_sink(sinks: &[&str]) -> Option<&'static str> {
    sinks.is_empty().then_some(
        "no alert sink configured (daemon.alerts_file, daemon.alerts_stdout, \
         daemon.alertmanager_url, [daemon.webhook], [daemon.syslog]): alerts are counted in the metrics \
         (burstwatch_alerts_total) but delivered nowhere",
    )
}

/// The home networks as a comma-separated list.
pub fn home_nets(settings: &Settings) -> String {
    let p = settings.detect.home_nets.prefixes();
    if p.is_empty() {
        return "none".into();
    }
    p.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The start lines: one info line with what runs where, a warning without alert sinks, and a
/// debug line with the detection thresholds.
pub fn start(config: &Path, settings: &Settings, sinks: &[&str]) {
    let d = &settings.daemon;
    // The path as the daemon resolved it: the log may be read far from the command line.
    let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    tracing::info!(
        version = %env!("CARGO_PKG_VERSION"),
        config = %config.display(),
        interfaces = %d.interfaces.join(","),
        sinks = %if sinks.is_empty() { "none".to_string() } else { sinks.join(",") },
        home_nets = %home_nets(settings),
        workers = d.workers,
        "burstwatch daemon starting"
    );
    if let Some(w) = no_sink(sinks) {
        tracing::warn!("{w}");
    }
    let t = &settings.detect;
    tracing::debug!(
        burst_min_bytes = t.burst_min_bytes,
        burst_rate_floor_bps = t.burst_rate_floor_bps,
        alert_min_score = t.alert_min_score,
        alert_hold_seconds = t.alert_hold_ns as f64 / 1e9,
        "detection thresholds"
    );
}
