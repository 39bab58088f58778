//! The JSON-lines sinks: one alert object per line, appended to a file or written to stdout.
//!
//! The file is opened with `O_APPEND` (several writers may share it). After logrotate renames
//! it, [`super::Sinks::reopen`] makes the sink open the path again before its next write, so
//! new alerts go to the new file and the rotated one is complete. A write error drops the
//! handle; the next alert opens the path again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, Notify};

use super::{Msg, SinkCounters, SinkError};

/// Where a line sink writes.
pub(crate) type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// The destination of a line sink.
#[derive(Debug)]
pub(crate) enum Target {
    /// A file, re-opened by name when notified.
    File {
        /// The path.
        path: PathBuf,
        /// Notified by [`super::Sinks::reopen`].
        reopen: Arc<Notify>,
    },
    /// Standard output.
    Stdout,
}

/// Open `path` for appending, creating it if needed.
pub(crate) async fn open_append(path: &Path) -> Result<Writer, SinkError> {
    let f = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
        .map_err(|source| SinkError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Box::new(f))
}

/// Completes when the target should be re-opened (never for stdout).
async fn reopen_requested(target: &Target) {
    match target {
        Target::File { reopen, .. } => reopen.notified().await,
        Target::Stdout => std::future::pending().await,
    }
}

/// The sink task: write each alert as a line, flush whenever the queue is empty.
pub(crate) async fn run(
    mut rx: mpsc::Receiver<Msg>,
    target: Target,
    writer: Writer,
    counters: Arc<SinkCounters>,
) {
    let mut out = Some(BufWriter::new(writer));
    // Lines written into the buffer but not yet flushed.
    let mut unflushed = 0u64;
    loop {
        let msg = tokio::select! {
            biased;
            () = reopen_requested(&target) => {
                flush(&mut out, &mut unflushed, &counters).await;
                out = None; // opened again, by name, before the next write
                continue;
            }
            m = rx.recv() => m,
        };
        match msg {
            None => {
                flush(&mut out, &mut unflushed, &counters).await;
                return;
            }
            Some(Msg::Flush(done)) => {
                flush(&mut out, &mut unflushed, &counters).await;
                let _ = done.send(());
            }
            Some(Msg::Alert(ev)) => {
                if out.is_none() {
                    out = reopen(&target).await;
                }
                let Some(w) = out.as_mut() else {
                    SinkCounters::add(&counters.failed, 1);
                    counters.done(1);
                    continue;
                };
                let line = one_line(&ev.json_line);
                let wrote = match w.write_all(line.as_bytes()).await {
                    Ok(()) => w.write_all(b"\n").await,
                    Err(e) => Err(e),
                };
                match wrote {
                    Ok(()) => unflushed += 1,
                    Err(e) => {
                        tracing::warn!(error = %e, "alert sink: write failed; re-opening");
                        SinkCounters::add(&counters.failed, unflushed + 1);
                        counters.done(unflushed + 1);
                        unflushed = 0;
                        out = None;
                    }
                }
                if rx.is_empty() {
                    flush(&mut out, &mut unflushed, &counters).await;
                }
            }
        }
    }
}

/// Open the target again (file: by name, so a renamed file is left alone).
async fn reopen(target: &Target) -> Option<BufWriter<Writer>> {
    match target {
        Target::File { path, .. } => match open_append(path).await {
            Ok(w) => Some(BufWriter::new(w)),
            Err(e) => {
                tracing::warn!(error = %e, "alert sink: cannot re-open");
                None
            }
        },
        Target::Stdout => Some(BufWriter::new(Box::new(tokio::io::stdout()))),
    }
}

/// Flush buffered lines and count them as sent (or failed).
async fn flush(out: &mut Option<BufWriter<Writer>>, unflushed: &mut u64, counters: &SinkCounters) {
    let n = std::mem::take(unflushed);
    let Some(w) = out.as_mut() else {
        return;
    };
    match w.flush().await {
        Ok(()) => SinkCounters::add(&counters.sent, n),
        Err(e) => {
            tracing::warn!(error = %e, "alert sink: flush failed; re-opening");
            SinkCounters::add(&counters.failed, n);
            *out = None;
        }
    }
    counters.done(n);
}

/// The line without CR/LF (a JSON encoder never emits them raw; this keeps one alert per line
/// whatever the caller passes).
fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\n', '\r']) {
        std::borrow::Cow::Owned(s.replace(['\n', '\r'], " "))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::super::{AlertEvent, Sinks, SinksConfig};
    use std::time::Duration;

    fn ev(i: u32) -> AlertEvent {
        AlertEvent {
            json_line: format!("{{\"id\":\"a{i}\",\"note\":\"x\ny\"}}"),
            id: format!("a{i}"),
            kind: "burst",
            severity: "high",
            ..AlertEvent::default()
        }
    }

    fn ids(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["id"].as_str().unwrap().to_string()
            })
            .collect()
    }

    #[tokio::test]
    async fn file_sink_reopens_after_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let rotated = dir.path().join("alerts.jsonl.1");
        std::fs::write(&path, "{\"id\":\"old\"}\n").unwrap();
        let cfg = SinksConfig {
            file: Some(path.clone()),
            ..SinksConfig::default()
        };
        let sinks = Sinks::start(&cfg).await.unwrap();
        sinks.send(ev(1));
        sinks.send(ev(2));
        assert!(sinks.flush(Duration::from_secs(5)).await);
        std::fs::rename(&path, &rotated).unwrap();
        // Written after the rename but before reopen: still goes to the renamed file.
        sinks.send(ev(3));
        assert!(sinks.flush(Duration::from_secs(5)).await);
        sinks.reopen();
        sinks.send(ev(4));
        let stats = sinks.shutdown(Duration::from_secs(5)).await;
        assert_eq!(ids(&rotated), ["old", "a1", "a2", "a3"]);
        assert_eq!(ids(&path), ["a4"]);
        assert_eq!(
            (stats[0].name, stats[0].sent, stats[0].failed),
            ("file", 4, 0)
        );
        assert_eq!(stats[0].queued, 0);
    }

    #[tokio::test]
    async fn file_sink_counts_a_failed_reopen_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let path = sub.join("alerts.jsonl");
        let cfg = SinksConfig {
            file: Some(path.clone()),
            ..SinksConfig::default()
        };
        let sinks = Sinks::start(&cfg).await.unwrap();
        std::fs::remove_dir_all(&sub).unwrap();
        sinks.reopen();
        sinks.send(ev(1)); // the directory is gone: cannot open, counted as failed
        assert!(sinks.flush(Duration::from_secs(5)).await);
        std::fs::create_dir(&sub).unwrap();
        sinks.send(ev(2));
        let stats = sinks.shutdown(Duration::from_secs(5)).await;
        assert_eq!(ids(&path), ["a2"]);
        assert_eq!((stats[0].sent, stats[0].failed), (1, 1));
    }

    #[tokio::test]
    async fn unopenable_file_is_a_start_error() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SinksConfig {
            file: Some(dir.path().join("missing/alerts.jsonl")),
            ..SinksConfig::default()
        };
        let err = Sinks::start(&cfg).await.unwrap_err().to_string();
        assert!(err.contains("missing/alerts.jsonl"), "{err}");
    }
}
