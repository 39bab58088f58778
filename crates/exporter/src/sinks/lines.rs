//! The JSON-lines sinks: one alert object per line, appended to a file or written to stdout.
//!
//! The file is opened with `O_APPEND` (several writers may share it). After logrotate renames
//! it, [`super::Sinks::reopen`] makes the sink open the path again before its next write, so
//! new alerts go to the new file and the rotated one is complete.
//!
//! Writing is a [`LineFile`] on tokio's blocking pool: a failed write (no space left, a path
//! that became a directory) keeps up to [`crate::linefile::BACKLOG`] bytes of alerts and
//! retries every [`RETRY`]; alerts beyond are counted as failed. While it fails the sink says
//! so ([`SinkCounters::failing`]: `/readyz` is not ready), and it logs the first error of each
//! kind once.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::{mpsc, Notify};

use super::{Msg, SinkCounters, SinkError};
use crate::linefile::{Dest, LineFile, RETRY};

/// The destination of a line sink.
#[derive(Debug)]
pub(crate) enum Target {
    /// A file (the [`LineFile`]'s path), re-opened by name when notified.
    File {
        /// Notified by [`super::Sinks::reopen`].
        reopen: Arc<Notify>,
    },
    /// Standard output.
    Stdout,
}

/// Open `path` for appending, creating it if needed.
pub(crate) async fn open_append(path: &Path) -> Result<LineFile, SinkError> {
    let dest = Dest::File(path.to_path_buf());
    blocking(move || LineFile::open("alerts_file", dest))
        .await
        .ok_or_else(|| std::io::Error::other("the open was cancelled"))
        .and_then(|r| r)
        .map_err(|source| SinkError::Open {
            path: path.to_path_buf(),
            source,
        })
}

/// Standard output as a line sink.
pub(crate) fn stdout() -> LineFile {
    LineFile::new("alerts_stdout", Dest::Stdout)
}

/// Completes when the target should be re-opened (never for stdout).
async fn reopen_requested(target: &Target) {
    match target {
        Target::File { reopen, .. } => reopen.notified().await,
        Target::Stdout => std::future::pending().await,
    }
}

/// Run `f` on the blocking pool (file I/O must not stall the runtime's thread); `None` if the
/// runtime is shutting down.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    }
}

/// The sink's [`LineFile`] and what of it the counters already show.
struct Lines {
    file: LineFile,
    written: u64,
    dropped: u64,
}

impl Lines {
    /// Run `op` on the file in the blocking pool; `None` if the runtime is going away.
    async fn io(mut self, op: fn(&mut LineFile)) -> Option<Self> {
        blocking(move || {
            op(&mut self.file);
            self
        })
        .await
    }

    /// Move what the file wrote or dropped since the last call into the counters.
    fn account(&mut self, counters: &SinkCounters) {
        let (w, d) = (self.file.written(), self.file.dropped());
        let (sent, failed) = (w - self.written, d - self.dropped);
        SinkCounters::add(&counters.sent, sent);
        SinkCounters::add(&counters.failed, failed);
        counters.done(sent + failed);
        counters
            .failing
            .store(self.file.failing(), Ordering::Relaxed);
        (self.written, self.dropped) = (w, d);
    }
}

/// The sink task: queue each alert as a line, write whenever the queue is empty (or the
/// buffer full), retry every [`RETRY`] while the output fails.
pub(crate) async fn run(
    mut rx: mpsc::Receiver<Msg>,
    target: Target,
    file: LineFile,
    counters: Arc<SinkCounters>,
) {
    let mut lines = Lines {
        file,
        written: 0,
        dropped: 0,
    };
    let mut next_retry = tokio::time::Instant::now();
    loop {
        let failing = lines.file.failing();
        if !failing {
            next_retry = tokio::time::Instant::now() + RETRY;
        }
        let msg = tokio::select! {
            biased;
            () = reopen_requested(&target) => {
                let Some(l) = lines.io(|f| { f.reopen(); f.write_out(); }).await else { return };
                lines = l;
                lines.account(&counters);
                continue;
            }
            () = tokio::time::sleep_until(next_retry), if failing => {
                let Some(l) = lines.io(|f| { f.write_out(); }).await else { return };
                lines = l;
                lines.account(&counters);
                next_retry = tokio::time::Instant::now() + RETRY;
                continue;
            }
            m = rx.recv() => m,
        };
        let (write, flushed) = match msg {
            None => {
                if let Some(mut l) = lines
                    .io(|f| {
                        f.close();
                    })
                    .await
                {
                    l.account(&counters);
                }
                return;
            }
            // A flush writes out what is held unless the file is failing (the retry timer
            // does that); an alert is written once a batch is full or the queue is empty.
            Some(Msg::Flush(done)) => (!lines.file.failing(), Some(done)),
            Some(Msg::Alert(ev)) => {
                lines.file.push(one_line(&ev.json_line).as_bytes());
                let write = lines.file.wants_write() || (rx.is_empty() && !lines.file.failing());
                (write, None)
            }
        };
        if write {
            let Some(l) = lines
                .io(|f| {
                    f.write_out();
                })
                .await
            else {
                return;
            };
            lines = l;
        }
        lines.account(&counters);
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
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
    async fn file_sink_holds_alerts_through_a_failed_reopen_and_recovers() {
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
        sinks.send(ev(1)); // the directory is gone: cannot open; held, and the sink is failing
        assert!(sinks.flush(Duration::from_secs(5)).await);
        let s = &sinks.stats()[0];
        assert!(s.failing);
        assert_eq!((s.sent, s.failed, s.queued), (0, 0, 1));
        std::fs::create_dir(&sub).unwrap();
        sinks.send(ev(2));
        let stats = sinks.shutdown(Duration::from_secs(5)).await;
        assert_eq!(ids(&path), ["a1", "a2"]);
        assert_eq!((stats[0].sent, stats[0].failed), (2, 0));
        assert!(!stats[0].failing);
    }

    #[tokio::test]
    async fn a_path_turned_directory_fails_then_recovers_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let cfg = SinksConfig {
            file: Some(path.clone()),
            ..SinksConfig::default()
        };
        let sinks = Sinks::start(&cfg).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        sinks.reopen();
        sinks.send(ev(1));
        assert!(sinks.flush(Duration::from_secs(5)).await);
        assert!(sinks.stats()[0].failing);
        // The directory goes away: the retry writes the held alert, no new alert needed.
        std::fs::remove_dir(&path).unwrap();
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while sinks.stats()[0].failing {
            assert!(tokio::time::Instant::now() < until, "still failing");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(ids(&path), ["a1"]);
        let s = &sinks.stats()[0];
        assert_eq!((s.sent, s.failed, s.queued), (1, 0, 0));
    }

    #[tokio::test]
    async fn a_full_device_counts_what_the_backlog_cannot_hold() {
        let cfg = SinksConfig {
            file: Some("/dev/full".into()),
            queue: 100_000,
            ..SinksConfig::default()
        };
        let sinks = Sinks::start(&cfg).await.unwrap();
        for i in 0..60_000 {
            sinks.send(ev(i));
        }
        assert!(sinks.flush(Duration::from_secs(10)).await);
        let s = sinks.stats()[0].clone();
        assert!(s.failing);
        assert!(s.failed > 0 && s.failed < 60_000, "{s:?}");
        assert_eq!(s.failed + s.queued, 60_000, "{s:?}");
        let stats = sinks.shutdown(Duration::from_secs(5)).await;
        assert_eq!((stats[0].sent, stats[0].failed), (0, 60_000));
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
