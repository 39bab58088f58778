//! The output thread: flow records as JSON lines to a file (appended, reopened on SIGHUP for
//! logrotate); each alert is handed on (to the alert sinks and the metrics).

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use burstwatch_engine::Alert;

use super::shared::Shared;
use super::worker::Output;

/// Where the output thread writes.
pub struct Outputs {
    /// Flow records file.
    pub flows: Option<PathBuf>,
}

struct Sink {
    path: PathBuf,
    w: Option<BufWriter<File>>,
}

impl Sink {
    fn open(path: &Path) -> Sink {
        let mut s = Sink {
            path: path.to_path_buf(),
            w: None,
        };
        s.reopen();
        s
    }

    fn reopen(&mut self) {
        if let Some(mut w) = self.w.take() {
            let _ = w.flush();
        }
        match OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            Ok(f) => self.w = Some(BufWriter::with_capacity(1 << 16, f)),
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot open output")
            }
        }
    }

    fn write(&mut self, line: &[u8]) {
        if let Some(w) = self.w.as_mut() {
            if let Err(e) = w.write_all(line) {
                tracing::error!(path = %self.path.display(), error = %e, "write failed");
                self.w = None;
            }
        }
    }

    fn flush(&mut self) {
        if let Some(w) = self.w.as_mut() {
            let _ = w.flush();
        }
    }
}

/// Run until the worker hangs up; `on_alert` sees every alert (sinks, metrics).
pub fn run(
    cfg: Outputs,
    rx: Receiver<Output>,
    shared: Arc<Shared>,
    mut on_alert: impl FnMut(&[u8], &Alert),
) {
    let mut flows = cfg.flows.as_deref().map(Sink::open);
    loop {
        let msg = rx.recv_timeout(Duration::from_millis(500));
        if shared.reopen.swap(false, Ordering::Relaxed) {
            flows.iter_mut().for_each(Sink::reopen);
            tracing::info!("flow file reopened");
        }
        match msg {
            Ok(Output::Flow(line)) => {
                if let Some(s) = flows.as_mut() {
                    s.write(&line);
                }
            }
            Ok(Output::Alert(line, alert)) => on_alert(&line, &alert),
            Err(RecvTimeoutError::Timeout) => flows.iter_mut().for_each(Sink::flush),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    flows.iter_mut().for_each(Sink::flush);
}
