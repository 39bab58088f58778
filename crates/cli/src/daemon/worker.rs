//! The engine worker: ingest decoded packets, move time forward on an idle link, apply config
//! reloads, and hand flow records and alerts to the output thread.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burstwatch_config::Settings;
use burstwatch_engine::Alert;

use super::capture::Batch;
use super::shared::Shared;
use crate::alert_json::write_alert;
use crate::flow_json::write_record;
use crate::privacy::Privacy;
use crate::shards::Engines;

/// Longest wait before host shards get a partly filled round.
const FLUSH: Duration = Duration::from_millis(50);

/// What the worker sends to the output thread.
pub enum Output {
    /// One flow record as a JSON line (with its newline).
    Flow(Vec<u8>),
    /// One alert as a JSON line (with its newline), and the alert.
    Alert(Vec<u8>, Box<Alert>),
}

/// Requests to the worker.
pub enum Control {
    /// New thresholds and caps (a SIGHUP reload); learned state is kept.
    Reload(Box<Settings>),
}

/// Run until every capture thread has hung up; then flush every flow and alert and return the
/// engines (for the state snapshot).
pub fn run(
    mut engine: Engines,
    rx: Receiver<Batch>,
    control: Receiver<Control>,
    out: Sender<Output>,
    shared: Arc<Shared>,
    privacy: Privacy,
) -> Engines {
    let mut last_ts: Option<i64> = None;
    let mut last_wall = Instant::now();
    let mut last_publish = Instant::now();
    let mut last_flush = Instant::now();
    let mut records = 0u64;
    let mut alerts = 0u64;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(batch) => {
                for (ts, meta) in &batch {
                    engine.ingest(*ts, meta);
                    last_ts = Some(last_ts.map_or(*ts, |l| l.max(*ts)));
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
        drain(&mut engine, &out, &privacy, &mut records, &mut alerts);
        while let Ok(Control::Reload(s)) = control.try_recv() {
            engine.set_config(s.flow.clone(), s.detect.clone());
            tracing::info!("thresholds reloaded; learned state kept");
        }
        if last_publish.elapsed() >= Duration::from_secs(1) {
            last_publish = Instant::now();
            publish(&engine, &shared, last_ts, records, alerts);
        }
    }
    engine.finish();
    drain(&mut engine, &out, &privacy, &mut records, &mut alerts);
    publish(&engine, &shared, last_ts, records, alerts);
    engine
}

/// Send every ready record and alert to the output thread, as they may appear in output: an
/// alert is pseudonymised before anything (JSON line, sink labels, summary) is made of it.
fn drain(
    engine: &mut Engines,
    out: &Sender<Output>,
    privacy: &Privacy,
    records: &mut u64,
    alerts: &mut u64,
) {
    while let Some(rec) = engine.pop_record() {
        let mut line = Vec::with_capacity(320);
        if write_record(&mut line, &rec, privacy).is_ok() {
            *records += 1;
            let _ = out.send(Output::Flow(line));
        }
    }
    while let Some(alert) = engine.pop_alert() {
        let alert = privacy.alert(alert);
        let mut line = Vec::with_capacity(1024);
        if write_alert(&mut line, &alert, &Privacy::disabled()).is_ok() {
            *alerts += 1;
            let _ = out.send(Output::Alert(line, Box::new(alert)));
        }
    }
}

fn publish(engine: &Engines, shared: &Shared, last_ts: Option<i64>, records: u64, alerts: u64) {
    if let Ok(mut w) = shared.worker.lock() {
        w.flows = engine.flow_stats();
        w.detect = engine.detect_stats();
        w.last_packet_ns = last_ts;
        w.records = records;
        w.alerts = alerts;
    }
}
