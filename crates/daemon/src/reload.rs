//! SIGHUP: what a reload applies and what it cannot. Thresholds, caps, home networks and
//! the enrich databases (reopened, so an updated file is picked up) take effect; keys read
//! only at start are named in the log, one line each, and keep their running value.

use std::fmt::Debug;
use std::path::Path;

use burstwatch_config::Settings;
use burstwatch_engine::detect::Enrich;

use super::check;

/// A reload that passed every check: the settings to run with and the reopened enricher
/// (`None`: no database configured).
pub struct Reload {
    /// The new settings, restart-only keys set back to their running values.
    pub settings: Settings,
    /// The enrich databases, opened again.
    pub enrich: Option<Box<dyn Enrich>>,
}

/// Read `config` again and check it as at start; `Err` lists every problem (the running
/// settings stay). Keys that need a restart are logged.
pub fn load(config: &Path, running: &Settings) -> Result<Reload, Vec<String>> {
    let text = burstwatch_config::read_config_text(config).map_err(|e| vec![e.to_string()])?;
    let mut new =
        Settings::parse(&text, &config.display().to_string()).map_err(|e| vec![e.to_string()])?;
    let found = check::check(&new, config, &text);
    // The interfaces are read at start only: a file that names none leaves the running ones.
    for w in found.not_ready.iter().chain(&found.warnings) {
        tracing::warn!("{w}");
    }
    if !found.errors.is_empty() {
        return Err(found.errors);
    }
    let enrich = super::open_enrich(&new).map_err(|e| vec![format!("{e:#}")])?;
    for (key, running_value, file_value) in restart_only_changes(running, &new) {
        tracing::warn!(
            key,
            running = %running_value,
            file = %file_value,
            "{key} changed in the file but is read at start only: restart to apply it; \
             running with {running_value}"
        );
    }
    // Keep what a restart would change, so that the next reload compares with what runs.
    new.daemon = running.daemon.clone();
    new.privacy = running.privacy.clone();
    new.cluster = running.cluster.clone();
    new.flow.max_fragments = running.flow.max_fragments;
    new.flow.fragment_timeout_ns = running.flow.fragment_timeout_ns;
    new.flow.export_flows = running.flow.export_flows;
    Ok(Reload {
        settings: new,
        enrich,
    })
}

/// Each key read at start only whose value differs: (key, running value, value in the file).
pub fn restart_only_changes(old: &Settings, new: &Settings) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let mut cmp = |key: &'static str, a: &dyn Debug, b: &dyn Debug| {
        let (a, b) = (format!("{a:?}"), format!("{b:?}"));
        if a != b {
            out.push((key, a, b));
        }
    };
    // Each `section.key` is compared field by field, named as the config file names it.
    macro_rules! keys {
        ($($section:ident . $key:ident),* $(,)?) => {
            $(cmp(
                concat!(stringify!($section), ".", stringify!($key)),
                &old.$section.$key,
                &new.$section.$key,
            );)*
        };
    }
    keys!(
        daemon.interfaces,
        daemon.flow_listen,
        daemon.backend,
        daemon.filter,
        daemon.snaplen,
        daemon.buffer_mib,
        daemon.ring_block_kib,
        daemon.ring_blocks,
        daemon.ring_block_timeout_ms,
        daemon.promiscuous,
        daemon.immediate,
        daemon.metrics_bind,
        daemon.alerts_file,
        daemon.alerts_stdout,
        daemon.flows_file,
        daemon.alertmanager_url,
        daemon.alertmanager_queue,
        daemon.alertmanager,
        daemon.webhook,
        daemon.syslog,
        daemon.sensor,
        daemon.site,
        daemon.state_file,
        daemon.retry_seconds,
        daemon.state_save_seconds,
        daemon.workers,
        daemon.capture_threads,
        daemon.user,
        // The key is read once, while the process may still be root.
        privacy.key_file,
        privacy.pseudonymize_endpoints,
    );
    // The shared store's thread is started once.
    cmp("cluster", &old.cluster, &new.cluster);
    // The fragment table is sized at start.
    keys!(flow.max_fragments);
    cmp(
        "flow.fragment_timeout_seconds",
        &(old.flow.fragment_timeout_ns as f64 / 1e9),
        &(new.flow.fragment_timeout_ns as f64 / 1e9),
    );
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn restart_only_keys_are_named_and_reloadable_ones_are_not() {
        let old = Settings::parse("[daemon]\ninterfaces = [\"eth1\"]\nworkers = 2\n", "t").unwrap();
        let new = Settings::parse(
            "[daemon]\ninterfaces = [\"eth1\"]\nworkers = 1\nuser = \"nobody\"\n\
             flow_listen = [\"udp://127.0.0.1:2055\"]\n\
             [detect]\nrare_max_hosts = 5\n[flow]\nmax_fragments = 10\n\
             [cluster]\nredis_url = \"redis://r:6379\"\nsensor_id = \"a\"\nkey_file = \"k\"\n",
            "t",
        )
        .unwrap();
        let keys: Vec<_> = restart_only_changes(&old, &new)
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(
            keys,
            [
                "daemon.flow_listen",
                "daemon.sensor",
                "daemon.workers",
                "daemon.user",
                "cluster",
                "flow.max_fragments"
            ]
        );
        assert!(restart_only_changes(&old, &old).is_empty());
    }

    /// Whether flow export makes flow records is set at start from `flows_file` (not a key of
    /// the file): a reload keeps it, and keeps the start-only `[flow]` keys with it.
    #[test]
    fn a_reload_keeps_what_the_start_set_of_the_flow_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("burstwatch.toml");
        let text = "[daemon]\nflow_listen = [\"udp://127.0.0.1:2055\"]\n\
                    [flow]\nmax_fragments = 10\n";
        std::fs::write(&path, text).unwrap();
        let mut running = Settings::parse(text, "t").unwrap();
        for export_flows in [false, true] {
            running.flow.export_flows = export_flows;
            running.flow.max_fragments = 7;
            let r = load(&path, &running).unwrap();
            assert_eq!(r.settings.flow.export_flows, export_flows);
            assert_eq!(r.settings.flow.max_fragments, 7);
        }
    }
}
