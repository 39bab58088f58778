//! The output thread: flow records as JSON lines to a file (appended, reopened on SIGHUP for
//! logrotate, held through write faults: see `burstwatch_exporter::linefile`); each alert is
//! handed on (to the alert sinks and the metrics).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burstwatch_engine::Alert;
use burstwatch_exporter::linefile::{Dest, LineFile};

use super::shared::Shared;
use super::worker::Output;

/// Where the output thread writes.
pub struct Outputs {
    /// Flow records file.
    pub flows: Option<PathBuf>,
}

/// Show the flow file's state to the exporter and `/readyz`.
fn publish(f: &LineFile, shared: &Shared) {
    let o = &shared.flows_output;
    o.dropped.store(f.dropped(), Ordering::Relaxed);
    o.failing.store(f.failing(), Ordering::Relaxed);
}

/// Run until the worker hangs up; `on_alert` sees every alert (sinks, metrics).
///
/// The flow file is a [`LineFile`]: written when 64 KiB are buffered or the thread is idle;
/// when it cannot be written, records are held (1 MiB), then dropped and counted, and the write
/// is retried every second.
pub fn run(
    cfg: Outputs,
    rx: Receiver<Output>,
    shared: Arc<Shared>,
    mut on_alert: impl FnMut(&[u8], &Alert),
) {
    let mut flows = cfg.flows.map(|p| LineFile::new("flows", Dest::File(p)));
    if let Some(f) = flows.as_mut() {
        shared
            .flows_output
            .configured
            .store(true, Ordering::Relaxed);
        f.write_out(); // open now: a bad path is logged at start
        publish(f, &shared);
    }
    loop {
        let msg = rx.recv_timeout(Duration::from_millis(250));
        if shared.reopen.swap(false, Ordering::Relaxed) {
            if let Some(f) = flows.as_mut() {
                f.reopen();
                f.write_out();
                tracing::info!("flow file reopened");
            }
        }
        match msg {
            Ok(Output::Flows(lines)) => {
                if let Some(f) = flows.as_mut() {
                    for line in lines.split_inclusive(|&b| b == b'\n') {
                        f.push(line);
                        if f.wants_write() {
                            f.write_out();
                        }
                    }
                }
            }
            Ok(Output::Alert(line, alert)) => on_alert(&line, &alert),
            Err(RecvTimeoutError::Timeout) => {
                if let Some(f) = flows.as_mut().filter(|f| !f.failing()) {
                    f.write_out();
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some(f) = flows.as_mut() {
            if f.retry_due(Instant::now()) {
                f.write_out();
            }
            publish(f, &shared);
        }
    }
    if let Some(f) = flows.as_mut() {
        f.close();
        publish(f, &shared);
    }
}
