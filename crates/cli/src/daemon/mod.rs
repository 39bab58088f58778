//! `burstwatch daemon`: live capture on the configured interfaces into the same engine as
//! `analyze`, with outputs, signals and learned state that survives restarts.
//!
//! Threads: one capture thread per interface (read, decode, batch), one engine worker, one
//! output thread; the main thread runs a small tokio runtime for signals (and the HTTP
//! endpoint). SIGTERM/SIGINT stop the captures, flush every open flow and pending alert, write
//! the state snapshot and exit 0. SIGHUP reloads thresholds (a bad file is rejected, naming
//! key and line, and the running settings stay) and reopens the output files.

mod capture;
mod output;
mod shared;
mod state_file;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context as _;
use burstwatch_capture::{LiveBackend, LiveConfig};
use burstwatch_config::{Backend, Settings};
use burstwatch_engine::Engine;

use shared::{IfaceCounters, Shared};
use worker::Control;

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
}

/// Validate a config file: exit 0 and a one-line summary, or exit 2 and the key and line.
pub fn check_config(args: &CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let s = Settings::load(&args.config)?;
    println!(
        "{}: ok ({} interface(s), {} home prefix(es), metrics on {})",
        args.config.display(),
        s.daemon.interfaces.len(),
        s.detect.home_nets.prefixes().len(),
        s.daemon.metrics_bind
    );
    Ok(ExitCode::SUCCESS)
}

/// Run the daemon until SIGTERM or SIGINT.
pub fn run(args: &DaemonArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(&args.config)?;
    let d = settings.daemon.clone();
    if d.interfaces.is_empty() {
        anyhow::bail!(
            "{}: daemon.interfaces is empty: name at least one interface to capture on",
            args.config.display()
        );
    }
    let shared = Arc::new(Shared::default());
    if let Ok(mut v) = shared.ifaces.lock() {
        *v = d
            .interfaces
            .iter()
            .map(|name| IfaceCounters {
                name: name.clone(),
                ..IfaceCounters::default()
            })
            .collect();
    }
    let mut engine = build_engine(&settings)?;
    if let Some(path) = &d.state_file {
        let restored = state_file::restore(&mut engine, path);
        shared.restored.store(restored, Ordering::Relaxed);
    }

    let (pkt_tx, pkt_rx) = mpsc::sync_channel(64);
    let (ctl_tx, ctl_rx) = mpsc::channel();
    let (out_tx, out_rx) = mpsc::channel();
    let worker = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || worker::run(engine, pkt_rx, ctl_rx, out_tx, shared))?
    };
    let output = {
        let shared = Arc::clone(&shared);
        let cfg = output::Outputs {
            flows: d.flows_file.clone(),
            alerts: d.alerts_file.clone(),
            alerts_stdout: d.alerts_stdout,
        };
        std::thread::Builder::new()
            .name("output".into())
            .spawn(move || output::run(cfg, out_rx, shared, |_, _| {}))?
    };
    let retry = Duration::from_secs_f64(d.retry_seconds);
    let mut captures = Vec::new();
    for (slot, name) in d.interfaces.iter().enumerate() {
        let cfg = LiveConfig {
            interface: name.clone(),
            backend: match d.backend {
                Backend::Pcap => LiveBackend::Pcap,
                Backend::AfPacket => LiveBackend::AfPacket,
            },
            snaplen: d.snaplen,
            buffer_bytes: d.buffer_mib.saturating_mul(1 << 20),
            promiscuous: d.promiscuous,
            immediate: d.immediate,
            filter: d.filter.clone(),
            poll_ms: 100,
        };
        let (tx, shared) = (pkt_tx.clone(), Arc::clone(&shared));
        captures.push(
            std::thread::Builder::new()
                .name(format!("capture-{name}"))
                .spawn(move || capture::run(cfg, slot, retry, tx, shared))?,
        );
    }
    drop(pkt_tx);
    tracing::info!(interfaces = ?d.interfaces, "daemon started");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(signals(&args.config, &shared, &ctl_tx))?;

    tracing::info!("stopping: flushing flows and alerts");
    shared.stop.store(true, Ordering::Relaxed);
    for c in captures {
        let _ = c.join();
    }
    let engine = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
    let _ = output.join();
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &d.state_file {
        if let Err(e) = state_file::save(&engine, path) {
            tracing::error!(error = %format!("{e:#}"), "learned state not saved");
            code = ExitCode::from(1);
        }
    }
    tracing::info!("stopped");
    Ok(code)
}

fn build_engine(settings: &Settings) -> anyhow::Result<Engine> {
    let seed = {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x6461_656d_6f6e_u64)
    };
    let mut engine = Engine::new(settings.flow.clone(), settings.detect.clone(), seed);
    let e = &settings.enrich;
    if e.asn_database.is_some() || e.country_database.is_some() {
        let en = burstwatch_enrich::MmdbEnricher::open(
            e.asn_database.as_deref(),
            e.country_database.as_deref(),
        )?;
        engine.detector_mut().set_enrich(Box::new(en));
    }
    Ok(engine)
}

/// Wait for SIGTERM/SIGINT; handle SIGHUP (reload, reopen) meanwhile.
async fn signals(
    config: &Path,
    shared: &Shared,
    control: &mpsc::Sender<Control>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => {
                shared.reopen.store(true, Ordering::Relaxed);
                let ok = match Settings::load(config) {
                    Ok(s) => {
                        tracing::info!(config = %config.display(), "configuration reloaded");
                        let _ = control.send(Control::Reload(Box::new(s)));
                        true
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "configuration rejected; the running one stays");
                        false
                    }
                };
                if let Ok(mut r) = shared.reloads.lock() {
                    if ok { r.0 += 1 } else { r.1 += 1 }
                }
            }
        }
    }
}
