//! The signal loop: SIGTERM and SIGINT end it (the daemon then stops cleanly); SIGHUP reopens
//! the outputs and reloads the configuration, applied if it is valid, rejected if not.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use burstwatch_config::Settings;
use burstwatch_exporter::metrics::Metrics;
use burstwatch_exporter::sinks::Sinks;

use crate::preflight::memory_budget;
use crate::shared::Shared;
use crate::worker::Control;
use crate::{notify, reload};

/// The daemon's signal streams, installed before anything else.
pub(crate) struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Install the handlers (needs the runtime entered).
    pub(crate) fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Wait for SIGTERM/SIGINT; handle SIGHUP (reload, reopen) meanwhile.
pub(crate) async fn until_stop(
    Signals {
        mut term,
        mut int,
        mut hup,
    }: Signals,
    config: &Path,
    mut running: Settings,
    shared: &Shared,
    control: &mpsc::Sender<Control>,
    metrics: &Metrics,
    sinks: &Sinks,
) -> anyhow::Result<()> {
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                notify::reloading();
                shared.reopen.store(true, Ordering::Relaxed);
                sinks.reopen();
                let workers = shared.workers.load(Ordering::Relaxed);
                let loaded = reload::load(config, &running).and_then(|mut r| {
                    memory_budget(&mut r.settings, workers, config)
                        .map(|()| r)
                        .map_err(|e| vec![format!("{e:#}")])
                });
                let ok = match loaded {
                    Ok(r) => {
                        let e = &r.settings.enrich;
                        tracing::info!(config = %config.display(),
                            asn_database = ?e.asn_database, country_database = ?e.country_database,
                            "configuration reloaded; enrich databases reopened");
                        shared.set_caps(r.settings.flow.max_flows, &r.settings.detect);
                        running = r.settings.clone();
                        let _ = control.send(Control::Reload(Box::new(r)));
                        true
                    }
                    Err(errors) => {
                        for e in errors {
                            tracing::error!(error = %e, "configuration rejected; the running one stays");
                        }
                        false
                    }
                };
                metrics.config_reload(ok);
                notify::reloaded(ok);
            }
        }
    }
}
