//! # burstwatch-daemon
//!
//! The shell of `burstwatch daemon`: live capture on the configured interfaces into the same engine as
//! `analyze`, with outputs, signals and learned state that survives restarts.
//!
//! Threads: one capture thread per interface (read, decode, batch), one engine worker, one
//! output thread; the main thread runs a small tokio runtime for signals (and the HTTP
//! endpoint). SIGTERM/SIGINT stop the captures, flush every open flow and pending alert, write
//! the state snapshot and exit 0. SIGHUP reloads thresholds (a bad file is rejected, naming
//! key and line, and the running settings stay) and reopens the output files.

mod announce;
mod capture;
mod check;
mod export;
mod flow;
mod flow_stats;
mod notify;
mod output;
mod reload;
mod shared;
mod sinks;
mod state_file;
mod worker;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context as _;
use burstwatch_capture::privilege;
use burstwatch_capture::{Fanout, LiveBackend, LiveCapture, LiveConfig};
use burstwatch_config::{Backend, Settings};
use burstwatch_engine::detect::state::LearnedState;
use burstwatch_engine::detect::Enrich;
use burstwatch_exporter::http::{self, Endpoints};
use burstwatch_exporter::metrics::{BuildInfo, Metrics};
use burstwatch_exporter::sinks::Sinks;

use burstwatch_pipeline::shards::Engines;

use shared::{IfaceCounters, Shared};
use worker::Control;

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
fn preflight(config: &Path) -> anyhow::Result<Settings> {
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
    flow_beacons_off(&mut s);
    Ok(s)
}

/// Flow export (`daemon.flow_listen`) keeps no packet timing: beacons are not scored.
fn flow_beacons_off(s: &mut Settings) {
    if !s.daemon.flow_listen.is_empty() {
        s.detect.beacon_min_events = u32::MAX;
    }
}

/// Run the daemon until SIGTERM or SIGINT.
pub fn run(config: &Path, build: &BuildInfo<'static>) -> anyhow::Result<ExitCode> {
    // Signals, HTTP and sinks run on one small runtime driven by this thread (a current-thread
    // runtime starts no thread, so the privilege switch below still covers every thread). The
    // signal handlers are installed first of all: a SIGTERM that arrives while the daemon is
    // still starting (state restore, captures) is kept and answered by a clean stop as soon as
    // the daemon runs, instead of killing it with nothing saved.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let signals_in = {
        let _entered = rt.enter();
        Signals::install().context("cannot install the signal handlers")?
    };
    let settings = preflight(config)?;
    let d = settings.daemon.clone();
    announce::start(config, &settings, &sinks::names(&d));
    // Room for the exporter's connections besides captures and outputs.
    let open_files = privilege::raise_open_file_limit();
    let shared = Arc::new(Shared {
        sensor: d.sensor.clone().filter(|s| !s.is_empty()),
        ..Shared::default()
    });
    // One slot per capture thread (`capture_threads` per interface, in interface order).
    if let Ok(mut v) = shared.ifaces.lock() {
        *v = d
            .interfaces
            .iter()
            .flat_map(|name| std::iter::repeat_n(name, capture_threads(&d)))
            .map(|name| IfaceCounters {
                name: name.clone(),
                ..IfaceCounters::default()
            })
            .collect();
    }
    shared.workers.store(d.workers, Ordering::Relaxed);
    shared.set_caps(settings.flow.max_flows, &settings.detect);
    // The pseudonymisation key is read while the process may still be root (it can stay
    // root-only), once: a reload keeps the running key.
    let privacy = burstwatch_pipeline::privacy::Privacy::from_settings(&settings)
        .with_context(|| format!("{}: privacy.key_file", config.display()))?;
    if privacy.enabled() {
        tracing::info!(
            "home-network addresses are pseudonymised in flow records, alerts and sinks"
        );
    }
    // Captures open first, while the process may still be root, and with one thread: then the
    // switch to `daemon.user` applies to every thread started after it.
    let live = open_captures(&d, &settings.detect.home_nets);
    let flow_sockets = flow::bind(&d.flow_listen)?;
    // So are the sinks' password and token files (they can stay root-only).
    let sinks_cfg = sinks::config(&d).with_context(|| format!("{}", config.display()))?;
    if let Some(user) = &d.user {
        let account = privilege::lookup_user(user)
            .with_context(|| format!("{}: daemon.user", config.display()))?;
        let dropped = privilege::drop_to(&account)
            .with_context(|| format!("cannot switch to user {user:?}"))?;
        log_privileges(&account, &dropped);
    }
    // The learned state is read as the account the daemon runs as (after the switch): the
    // file must belong to it.
    let state = d.state_file.as_deref().and_then(state_file::load);
    if d.state_file.is_some() {
        shared.restored.store(state.is_some(), Ordering::Relaxed);
        if let Ok(mut s) = shared.state_saved_ns.lock() {
            *s = state.as_ref().map(|s| s.now_ns);
        }
    }
    let resume_ns = state.as_ref().map(|s| s.now_ns).filter(|&t| t > i64::MIN);
    let mut engine = build_engine(&settings, state)?;
    // Endpoint prevalence shared with other sensors (`[cluster]`): never waits on the packets.
    let cluster =
        burstwatch_pipeline::cluster::Shared::start(&settings, burstwatch_cluster::Mode::Live)?;
    if cluster.is_some() {
        engine
            .scorer_mut()
            .enable_global(burstwatch_pipeline::cluster::Shared::global_config(
                &settings,
            ));
    }
    tracing::info!(workers = d.workers, "engine ready");

    let metrics = Arc::new(Metrics::for_sensor(build, d.sensor.as_deref())?);
    let cluster_metrics = match &cluster {
        Some(c) => Some((
            burstwatch_exporter::cluster_metrics::ClusterMetrics::register(
                metrics.registry(),
                c.sensor(),
            )?,
            c.counters(),
        )),
        None => None,
    };
    let sinks = Arc::new(rt.block_on(Sinks::start(&sinks_cfg))?);
    let listener = rt.block_on(http::bind(d.metrics_bind))?;
    tracing::info!(bind = %d.metrics_bind, "metrics endpoint listening");
    let ready = Arc::new(AtomicBool::new(false));

    let (pkt_tx, pkt_rx) = mpsc::sync_channel(64);
    let (ctl_tx, ctl_rx) = mpsc::channel();
    let (out_tx, out_rx) = mpsc::channel();
    // Checkpoints of the learned state are written on a thread of their own, so a large state
    // does not hold up the packets.
    let (checkpoints, state_writer) = match &d.state_file {
        Some(path) => {
            let (tx, rx) = mpsc::sync_channel::<LearnedState>(1);
            let path = path.clone();
            let writer = std::thread::Builder::new()
                .name("state".into())
                .spawn(move || {
                    for state in rx {
                        if let Err(e) = state_file::save(&state, &path) {
                            tracing::error!(error = %format!("{e:#}"), "state checkpoint not saved");
                        }
                    }
                })?;
            let every = Duration::from_secs_f64(d.state_save_seconds);
            (Some(worker::Checkpoints { every, tx }), Some(writer))
        }
        None => (None, None),
    };
    let worker = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("engine".into())
            .spawn(move || {
                worker::run(
                    engine,
                    pkt_rx,
                    ctl_rx,
                    out_tx,
                    shared,
                    privacy,
                    resume_ns,
                    checkpoints,
                    cluster,
                )
            })?
    };
    let output = {
        let (shared, sinks, metrics) = (
            Arc::clone(&shared),
            Arc::clone(&sinks),
            Arc::clone(&metrics),
        );
        let cfg = output::Outputs {
            flows: d.flows_file.clone(),
        };
        std::thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                output::run(cfg, out_rx, shared, |line, alert| {
                    metrics.observe_alert(
                        alert.kind.as_str(),
                        alert.severity.as_str(),
                        alert.score,
                    );
                    export::log_alert(alert);
                    sinks.send(export::alert_event(line, alert));
                })
            })?
    };
    let retry = Duration::from_secs_f64(d.retry_seconds);
    let mut captures = Vec::new();
    let threads = capture_threads(&d);
    for (slot, (cfg, first)) in live.into_iter().enumerate() {
        let (tx, shared) = (pkt_tx.clone(), Arc::clone(&shared));
        let name = if threads > 1 {
            format!("capture-{}-{}", cfg.interface, slot % threads)
        } else {
            format!("capture-{}", cfg.interface)
        };
        captures.push(
            std::thread::Builder::new()
                .name(name)
                .spawn(move || capture::run(cfg, first, slot, retry, tx, shared))?,
        );
    }
    shared
        .flow_listening
        .store(!flow_sockets.is_empty(), Ordering::Relaxed);
    if let Ok(mut v) = shared.flow_stats.lock() {
        v.resize(flow_sockets.len(), flow_stats::FlowThreadStats::default());
    }
    for (slot, socket) in flow_sockets.into_iter().enumerate() {
        let (tx, shared) = (pkt_tx.clone(), Arc::clone(&shared));
        captures.push(
            std::thread::Builder::new()
                .name("flow-export".into())
                .spawn(move || flow::run(socket, slot, tx, shared))?,
        );
    }
    drop(pkt_tx);
    tracing::info!(interfaces = ?d.interfaces, flow_listen = ?d.flow_listen, "daemon started");

    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(http::serve_with(
        listener,
        Endpoints {
            metrics: Arc::clone(&metrics),
            ready: Arc::clone(&ready),
        },
        http::Limits::for_open_files(open_files),
        async move {
            let _ = http_stopped.await;
        },
    ));
    let publisher = rt.spawn(publish(
        Arc::clone(&shared),
        Arc::clone(&metrics),
        Arc::clone(&sinks),
        Arc::clone(&ready),
        cluster_metrics,
    ));
    // READY=1 (after the state restore, with captures, sinks and exporter up), status lines
    // and watchdog pings, when systemd listens.
    let supervisor = rt.spawn(notify::supervise(Arc::clone(&shared)));
    rt.block_on(signals(
        signals_in,
        config,
        settings.clone(),
        &shared,
        &ctl_tx,
        &metrics,
        &sinks,
    ))?;

    tracing::info!("stopping: flushing flows and alerts");
    supervisor.abort();
    notify::stopping();
    ready.store(false, Ordering::Relaxed);
    shared.stop.store(true, Ordering::Relaxed);
    for c in captures {
        let _ = c.join();
    }
    let mut engine = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the engine thread panicked"))?;
    let _ = output.join();
    if let Some(w) = state_writer {
        // The worker hung up its end: the writer ends after the checkpoint it may be writing.
        let _ = w.join();
    }
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &d.state_file {
        if let Err(e) = state_file::save(&engine.learned_state(), path) {
            tracing::error!(error = %format!("{e:#}"), "learned state not saved");
            code = ExitCode::from(1);
        }
    }
    // The publisher holds the sinks too: wait until the aborted task is gone, so that the
    // sinks can be shut down (which delivers what is queued) rather than dropped.
    publisher.abort();
    let _ = rt.block_on(publisher);
    match Arc::try_unwrap(sinks) {
        Ok(sinks) => {
            let left = rt.block_on(sinks.shutdown(SINK_DRAIN));
            // Final counters for a last scrape, then one line with what each sink delivered.
            metrics.update(&export::snapshot(&shared, left.clone()), export::now_ns());
            log_sinks_at_exit(&left);
        }
        Err(sinks) => {
            // Not expected: every other holder has ended. Say what could not be delivered.
            let left = sinks.stats();
            tracing::error!("alert sinks still in use at exit; queued alerts not delivered");
            log_sinks_at_exit(&left);
        }
    }
    let _ = stop_http.send(());
    let _ = rt.block_on(server);
    tracing::info!("stopped");
    Ok(code)
}

/// Say what the switch of account did: which user, which capabilities are left.
fn log_privileges(account: &privilege::Account, dropped: &privilege::Dropped) {
    let caps = dropped.kept.join(", ");
    if account.uid == 0 {
        tracing::info!(user = %account.name, caps = %caps, bounding_set_cleared = dropped.bounding_cleared,
            "staying root (daemon.user); kept only these capabilities, no_new_privs set");
    } else {
        tracing::info!(user = %account.name, uid = account.uid, gid = account.gid, caps = %caps,
            bounding_set_cleared = dropped.bounding_cleared, switched = dropped.switched,
            "running unprivileged; kept only these capabilities, no_new_privs set");
    }
}

/// How long the alert sinks get at exit to deliver what is queued.
const SINK_DRAIN: Duration = Duration::from_secs(10);

/// One line at exit: per sink, alerts delivered and not delivered (given up, dropped at a
/// full queue, or still queued when the drain deadline passed).
fn log_sinks_at_exit(stats: &[burstwatch_exporter::stats::SinkStats]) {
    let undelivered: u64 = stats.iter().map(|s| s.failed + s.overflow + s.queued).sum();
    let line = stats
        .iter()
        .map(|s| {
            let target = if s.target.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.target)
            };
            format!(
                "{}: {} sent, {} undelivered{target}",
                s.name,
                s.sent,
                s.failed + s.overflow + s.queued
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if undelivered > 0 {
        tracing::warn!(undelivered, "alert sinks at exit: {line}");
    } else {
        tracing::info!("alert sinks at exit: {line}");
    }
}

/// Once a second: counters to the exporter; ready while every interface captures and every
/// output file can be written; the transit share judged (a warning when most traffic has no
/// side in the home networks).
/// The shared store's metric families and the counters they show.
type ClusterMetricsSource = (
    burstwatch_exporter::cluster_metrics::ClusterMetrics,
    Arc<burstwatch_cluster::Counters>,
);

async fn publish(
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    sinks: Arc<Sinks>,
    ready: Arc<AtomicBool>,
    cluster: Option<ClusterMetricsSource>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut transit = burstwatch_exporter::transit::TransitWatch::default();
    loop {
        tick.tick().await;
        let snapshot = export::snapshot(&shared, sinks.stats());
        metrics.update(&snapshot, export::now_ns());
        if let Some((m, c)) = &cluster {
            m.update(&burstwatch_pipeline::cluster::stats(c));
        }
        transit.check(std::time::Instant::now(), &snapshot.direction);
        // Not ready while an output file cannot be written: records are being held or lost.
        let outputs_ok = snapshot.outputs.iter().all(|o| !o.failing);
        ready.store(shared.all_up() && outputs_ok, Ordering::Relaxed);
    }
}

/// Capture threads per interface: `daemon.capture_threads`, else one per core up to the
/// worker count (one with the pcap backend, which cannot share an interface).
fn capture_threads(d: &burstwatch_config::DaemonSettings) -> usize {
    d.capture_threads.unwrap_or_else(|| match d.backend {
        Backend::Pcap => 1,
        Backend::AfPacket => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(d.workers)
            .max(1),
    })
}

/// The capture settings of every capture thread (`capture_threads` per interface, in interface
/// order), each with its capture if it opened now (the capture threads retry the others).
fn open_captures(
    d: &burstwatch_config::DaemonSettings,
    home_nets: &burstwatch_engine::PrefixSet,
) -> Vec<(LiveConfig, Option<LiveCapture>)> {
    let threads = capture_threads(d);
    let home: Vec<_> = home_nets.prefixes().iter().map(|p| p.network()).collect();
    // The steering program: each subscriber on one ring; too many home prefixes for one
    // program: the kernel's flow hash (each connection on one ring).
    let steer = match burstwatch_capture::tpacket::steer::program(&home) {
        Ok(_) => Some(home),
        Err(e) if threads > 1 => {
            tracing::warn!(error = %e, "capture threads steered by the kernel's flow hash instead");
            None
        }
        Err(_) => None,
    };
    let mut out = Vec::new();
    for (i, name) in d.interfaces.iter().enumerate() {
        // One fanout group per interface, distinct from other processes' groups.
        let group = (std::process::id() as u16)
            .wrapping_mul(64)
            .wrapping_add(i as u16);
        for t in 0..threads {
            let cfg = LiveConfig {
                interface: name.clone(),
                backend: match d.backend {
                    Backend::Pcap => LiveBackend::Pcap,
                    Backend::AfPacket => LiveBackend::AfPacket,
                },
                snaplen: d.snaplen,
                buffer_bytes: d.buffer_mib.saturating_mul(1 << 20),
                ring_block_bytes: d.ring_block_kib.saturating_mul(1024),
                ring_blocks: d.ring_blocks,
                ring_block_timeout_ms: d.ring_block_timeout_ms,
                promiscuous: d.promiscuous,
                immediate: d.immediate,
                filter: d.filter.clone(),
                poll_ms: 100,
                fanout: (threads > 1).then(|| Fanout {
                    group,
                    steer: steer.clone(),
                }),
            };
            let cap = LiveCapture::open(&cfg)
                .map_err(|e| {
                    tracing::warn!(interface = %name, thread = t, error = %e, "capture not open yet")
                })
                .ok();
            out.push((cfg, cap));
        }
    }
    out
}

/// The caps of the flow and detector tables from `limits.memory_budget_mib`, for `workers`
/// workers, with the capture buffers and the Alertmanager queue counted in.
fn memory_budget(settings: &mut Settings, workers: usize, config: &Path) -> anyhow::Result<()> {
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

fn build_engine(settings: &Settings, state: Option<LearnedState>) -> anyhow::Result<Engines> {
    Engines::new(
        settings.daemon.workers,
        settings.flow.clone(),
        settings.detect.clone(),
        burstwatch_pipeline::engine_setup::hash_seed(),
        open_enrich(settings)?,
        state,
    )
}

/// The enrich databases of `settings`, opened (read whole); `None` when none is configured.
fn open_enrich(settings: &Settings) -> anyhow::Result<Option<Box<dyn Enrich>>> {
    let e = &settings.enrich;
    burstwatch_pipeline::engine_setup::open_enrich(
        e.asn_database.as_deref(),
        e.country_database.as_deref(),
    )
}

/// The daemon's signal streams, installed before anything else.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Install the handlers (needs the runtime entered).
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Wait for SIGTERM/SIGINT; handle SIGHUP (reload, reopen) meanwhile.
async fn signals(
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
                    flow_beacons_off(&mut r.settings);
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
