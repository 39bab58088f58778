//! The engine worker: ingest decoded packets, move time forward on an idle link, apply config
//! reloads, hand flow records and alerts to the output thread, and take a snapshot of the
//! learned state for the state writer now and then.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burstwatch_engine::detect::state::LearnedState;
use burstwatch_engine::detect::EarlyReason;
use burstwatch_engine::Alert;

use super::capture::Batch;
use super::clock_step::{ClockStep, Step};
use super::reload::Reload;
use super::shared::Shared;
use burstwatch_pipeline::alert_json::write_alert_from;
use burstwatch_pipeline::flow_json::write_record;
use burstwatch_pipeline::privacy::Privacy;
use burstwatch_pipeline::shards::Engines;

/// Longest wait before host shards get a partly filled round.
const FLUSH: Duration = Duration::from_millis(50);

/// Flow-record JSON lines are handed to the output thread in buffers of about this size.
const FLOW_BATCH: usize = 64 * 1024;

/// What the worker sends to the output thread.
pub enum Output {
    /// Flow records as JSON lines, each with its newline (at most about [`FLOW_BATCH`] bytes
    /// of whole lines).
    Flows(Vec<u8>),
    /// One alert as a JSON line (with its newline), and the alert.
    Alert(Vec<u8>, Box<Alert>),
}

/// What the worker saves work with.
pub struct Recycle {
    /// Whether flow records are written anywhere (a flow file is configured); otherwise they
    /// are only counted, not made into JSON lines.
    pub write_flows: bool,
    /// Where emptied packet batches go back for reuse, one channel per capture thread (taken
    /// in turn; a batch no thread has room for is freed).
    pub spare: Vec<SyncSender<Batch>>,
}

/// Requests to the worker.
pub enum Control {
    /// New thresholds, caps and enrich databases (a SIGHUP reload); learned state is kept.
    Reload(Box<Reload>),
}

/// Periodic snapshots of the learned state, handed to the thread that writes them.
pub struct Checkpoints {
    /// Time between snapshots.
    pub every: Duration,
    /// The writer; a snapshot is skipped while the writer is still busy with the last one.
    pub tx: SyncSender<LearnedState>,
}

/// Run until every capture thread has hung up; then flush every flow, finish every burst, emit
/// every alert still on hold (marked as emitted early at a shutdown) and return the engines
/// (for the state snapshot). `resume_ns` is the packet time of a restored snapshot: on an idle
/// link time goes on from there, so candidates restored on hold leave when their hold passes.
#[allow(clippy::too_many_arguments)] // the worker's channels and settings, each used once
pub fn run(
    mut engine: Engines,
    rx: Receiver<Batch>,
    control: Receiver<Control>,
    out: Sender<Output>,
    shared: Arc<Shared>,
    privacy: Privacy,
    resume_ns: Option<i64>,
    checkpoints: Option<Checkpoints>,
    mut cluster: Option<burstwatch_pipeline::cluster::Shared>,
    recycle: Recycle,
) -> Engines {
    let mut last_ts: Option<i64> = resume_ns;
    let mut clock = ClockStep::new(resume_ns);
    let mut last_checkpoint = Instant::now();
    let mut last_wall = Instant::now();
    let mut last_publish = Instant::now();
    let mut last_flush = Instant::now();
    let mut next_spare = 0usize;
    let mut outlet = Outlet {
        out,
        privacy,
        shared,
        write_flows: recycle.write_flows,
        records: 0,
        alerts: 0,
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(mut batch) => {
                for (ts, meta) in &batch {
                    // Flow export's samples (a sampling rate) come placed by their exporters'
                    // clocks and held seconds behind the captured packets: not the capture
                    // clock's to judge.
                    let t = if meta.sampling > 0 {
                        *ts
                    } else {
                        let (t, step) = clock.place(*ts);
                        if let Some(s) = step {
                            warn_step(s, t);
                        }
                        t
                    };
                    engine.ingest(t, meta);
                    last_ts = Some(last_ts.map_or(t, |l| l.max(t)));
                }
                if !recycle.spare.is_empty() {
                    batch.clear();
                    next_spare = (next_spare + 1) % recycle.spare.len();
                    let _ = recycle.spare[next_spare].try_send(batch);
                }
                last_wall = Instant::now();
                if last_flush.elapsed() >= FLUSH {
                    // Host shards: hand over a partly filled round so a slow link still
                    // gets its records and alerts promptly.
                    last_flush = last_wall;
                    engine.flush();
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // An idle link: packet time stands still, so let it follow the wall clock from
                // the last packet on; quiet bursts end and held alerts go out.
                if let Some(t) = last_ts {
                    let idle = i64::try_from(last_wall.elapsed().as_nanos()).unwrap_or(i64::MAX);
                    engine.advance_to(t.saturating_add(idle));
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some(c) = cluster.as_mut() {
            c.pump(engine.scorer_mut());
        }
        outlet.drain(&mut engine);
        while let Ok(Control::Reload(r)) = control.try_recv() {
            let s = r.settings;
            engine.set_config(s.flow, s.detect.clone());
            engine.set_enrich(r.enrich);
            // New home networks are pseudonymised from now on too.
            outlet.privacy.set_home_nets(s.detect.home_nets);
            tracing::info!("thresholds and enrich databases reloaded; learned state kept");
        }
        if last_publish.elapsed() >= Duration::from_secs(1) {
            last_publish = Instant::now();
            outlet.publish(&engine, last_ts, &clock);
        }
        if let Some(c) = checkpoints.as_ref() {
            if last_checkpoint.elapsed() >= c.every {
                last_checkpoint = Instant::now();
                checkpoint(&mut engine, c);
            }
        }
    }
    // The process is stopping: what is still on hold goes out now, marked as early.
    engine.set_finish_reason(EarlyReason::Shutdown);
    engine.finish();
    if let Some(mut c) = cluster.take() {
        // One short chance for the store to answer what is on hold; the rest is decided with
        // the local view.
        let until = Instant::now() + Duration::from_millis(500);
        c.pump(engine.scorer_mut());
        while Instant::now() < until
            && engine
                .scorer_mut()
                .global_stats()
                .is_some_and(|g| g.waiting > 0)
        {
            std::thread::sleep(Duration::from_millis(20));
            c.pump(engine.scorer_mut());
        }
        engine.scorer_mut().give_up_waiting();
        tracing::info!("{}", c.summary());
        c.finish();
    }
    outlet.drain(&mut engine);
    outlet.publish(&engine, last_ts, &clock);
    engine
}

/// Say that the capture clock stepped back, and what that does to times from here on.
fn warn_step(s: Step, at_ns: i64) {
    tracing::warn!(
        back_seconds = s.back_ns as f64 / 1e9,
        offset_seconds = s.offset_ns as f64 / 1e9,
        "packet time stepped back {:.1} s (the system clock was set back?): detection goes on from \
         packet time {:.3}; packet times are shifted by +{:.1} s from here on, in alerts and flow \
         records too",
        s.back_ns as f64 / 1e9,
        at_ns as f64 / 1e9,
        s.offset_ns as f64 / 1e9
    );
}

/// Hand a snapshot to the state writer (skipped while it still writes the previous one).
fn checkpoint(engine: &mut Engines, c: &Checkpoints) {
    match c.tx.try_send(engine.snapshot()) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            tracing::warn!("state checkpoint skipped: the previous one is still being written")
        }
        Err(TrySendError::Disconnected(_)) => {}
    }
}

/// Where the worker's flow records and alerts go, and how many went.
struct Outlet {
    out: Sender<Output>,
    privacy: Privacy,
    shared: Arc<Shared>,
    /// Whether flow records are written anywhere (else only counted).
    write_flows: bool,
    records: u64,
    alerts: u64,
}

impl Outlet {
    /// Send every ready record and alert to the output thread, as they may appear in output:
    /// an alert is pseudonymised before anything (JSON line, sink labels, summary) is made of
    /// it.
    fn drain(&mut self, engine: &mut Engines) {
        // Flow export: alerts say what their volume was estimated from.
        let shared = &self.shared;
        let source = shared
            .flow_listening
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(|| shared.flow_tag.lock().map(|t| *t).unwrap_or_default());
        let sensor = shared.sensor.as_deref();
        let mut lines = Vec::new();
        while let Some(rec) = engine.pop_record() {
            if !self.write_flows {
                self.records += 1;
                continue;
            }
            if lines.capacity() == 0 {
                lines.reserve(FLOW_BATCH + 1024);
            }
            let start = lines.len();
            if write_record(&mut lines, &rec, &self.privacy, sensor).is_ok() {
                self.records += 1;
            } else {
                lines.truncate(start);
            }
            if lines.len() >= FLOW_BATCH {
                let _ = self.out.send(Output::Flows(std::mem::take(&mut lines)));
            }
        }
        if !lines.is_empty() {
            let _ = self.out.send(Output::Flows(lines));
        }
        while let Some(alert) = engine.pop_alert() {
            let alert = self.privacy.alert(alert);
            let mut line = Vec::with_capacity(1024);
            let src = source.map(|t| t.alert_source(&alert));
            if write_alert_from(&mut line, &alert, &Privacy::disabled(), src, sensor).is_ok() {
                self.alerts += 1;
                let _ = self.out.send(Output::Alert(line, Box::new(alert)));
            }
        }
    }

    /// The worker's counters and heartbeat for the exporter and the watchdog.
    fn publish(&self, engine: &Engines, last_ts: Option<i64>, clock: &ClockStep) {
        if let Ok(mut w) = self.shared.worker.lock() {
            w.flows = engine.flow_stats();
            w.detect = engine.detect_stats();
            w.last_packet_ns = last_ts;
            w.clock_steps = clock.steps();
            w.clock_offset_ns = clock.offset_ns();
            w.records = self.records;
            w.alerts = self.alerts;
            w.beat = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests;
