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
mod clock_step;
mod export;
mod flow;
mod flow_stats;
mod notify;
mod output;
mod preflight;
mod publish;
mod reload;
mod shared;
mod signals;
mod sinks;
mod state_file;
mod templates_file;
mod worker;

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use anyhow::Context as _;
use burstwatch_capture::privilege;
use burstwatch_config::Settings;
use burstwatch_engine::detect::state::LearnedState;
use burstwatch_engine::detect::Enrich;
use burstwatch_exporter::http::{self, Endpoints};
use burstwatch_exporter::metrics::{BuildInfo, Metrics};
use burstwatch_exporter::sinks::Sinks;
use burstwatch_pipeline::shards::{EngineSpec, Engines};

pub use preflight::check_config;

use capture::{capture_threads, open_captures};
use preflight::preflight;
use publish::{log_sinks_at_exit, publish, SINK_DRAIN};
use shared::{IfaceCounters, Shared};
use signals::Signals;

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
    let mut settings = preflight(config)?;
    // Flow export makes flow records only where they are written (`flows_file`); without it
    // its synthetic packets skip the flow table (the alerts are the same). Kept on reload.
    settings.flow.export_flows = settings.daemon.flows_file.is_some();
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
    // And the shared store's password, certificates and pseudonym key.
    let cluster_files = burstwatch_pipeline::cluster::Shared::prepare(&settings)?;
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
    // So are the flow-export templates saved beside it (before any flow thread starts).
    let templates_path = d
        .state_file
        .as_deref()
        .filter(|_| !d.flow_listen.is_empty())
        .map(templates_file::path_for);
    if let Some(p) = &templates_path {
        templates_file::load(p, &shared.flow_templates);
    }
    if d.state_file.is_some() {
        shared.restored.store(state.is_some(), Ordering::Relaxed);
        if let Ok(mut s) = shared.state_saved_ns.lock() {
            *s = state.as_ref().map(|s| s.now_ns);
        }
    }
    let resume_ns = state.as_ref().map(|s| s.now_ns).filter(|&t| t > i64::MIN);
    let mut engine = build_engine(&settings, state)?;
    // Endpoint prevalence shared with other sensors (`[cluster]`): never waits on the packets.
    let cluster = cluster_files
        .map(|p| {
            burstwatch_pipeline::cluster::Shared::start_prepared(
                p,
                &settings,
                burstwatch_cluster::Mode::Live,
            )
        })
        .transpose()?;
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
            let templates = templates_path
                .clone()
                .map(|p| (p, Arc::clone(&shared.flow_templates)));
            let writer = std::thread::Builder::new()
                .name("state".into())
                .spawn(move || {
                    let mut saved_generation = None;
                    for state in rx {
                        if let Err(e) = state_file::save(&state, &path) {
                            tracing::error!(error = %format!("{e:#}"), "state checkpoint not saved");
                        }
                        // The templates with the checkpoint, when they changed.
                        if let Some((p, stash)) = &templates {
                            let g = stash.generation();
                            if saved_generation != Some(g) {
                                match templates_file::save(stash, p) {
                                    Ok(()) => saved_generation = Some(g),
                                    Err(e) => tracing::error!(error = %format!("{e:#}"),
                                        "flow-export templates not saved"),
                                }
                            }
                        }
                    }
                })?;
            let every = Duration::from_secs_f64(d.state_save_seconds);
            (Some(worker::Checkpoints { every, tx }), Some(writer))
        }
        None => (None, None),
    };
    // Emptied batches go back to the capture threads for reuse, a few per thread.
    let (spare_tx, mut spare_rx): (Vec<_>, Vec<_>) =
        (0..live.len()).map(|_| mpsc::sync_channel(8)).unzip();
    let worker = {
        let shared = Arc::clone(&shared);
        let write_flows = d.flows_file.is_some();
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
                    worker::Recycle {
                        write_flows,
                        spare: spare_tx,
                    },
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
    for (slot, ((cfg, first), spare)) in live.into_iter().zip(spare_rx.drain(..)).enumerate() {
        let (tx, shared) = ((pkt_tx.clone(), spare), Arc::clone(&shared));
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
    rt.block_on(signals::until_stop(
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
    if let Some(p) = &templates_path {
        if let Err(e) = templates_file::save(&shared.flow_templates, p) {
            tracing::error!(error = %format!("{e:#}"), "flow-export templates not saved");
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

fn build_engine(settings: &Settings, state: Option<LearnedState>) -> anyhow::Result<Engines> {
    Engines::new(
        settings.daemon.workers,
        EngineSpec {
            flow: settings.flow.clone(),
            detect: settings.detect.clone(),
            seed: burstwatch_pipeline::engine_setup::hash_seed(),
            enrich: open_enrich(settings)?,
            state,
        },
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
