//! Alert sinks: where [`AlertEvent`]s go.
//!
//! Each sink runs as a tokio task behind its own bounded queue. [`Sinks::send`] offers the
//! event to every queue without waiting: a full queue drops the event for that sink and counts
//! it (`burstwatch_sink_queue_overflow_total`). [`Sinks::shutdown`] closes the queues and waits,
//! up to a deadline, for the sinks to deliver what is queued.
//!
//! * [`lines`]: one JSON object per line, appended to a file (re-opened on [`Sinks::reopen`],
//!   for logrotate) or written to standard output.
//! * [`alertmanager`]: batched `POST {url}/api/v2/alerts` with a timeout and retries with
//!   exponential backoff; one sink per URL (every instance of an HA cluster gets every alert).
//! * [`webhook`]: batched `POST {url}` of a JSON array of alert objects.
//! * [`syslog`]: RFC 5424 messages over UDP, TCP or a local socket.
//!
//! The HTTP sinks share [`client`]: `https://` with the system's roots or a CA file, basic or
//! bearer credentials read from files. Each sink's counters carry its kind (`sink`) and its
//! URL or address (`target`).

pub mod alertmanager;
pub mod client;
pub mod lines;
pub mod syslog;
mod time;
pub mod webhook;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::stats::SinkStats;
pub use alertmanager::AlertmanagerConfig;
pub use client::{Auth, HttpClientConfig, HttpDelivery, Retry, Secret};
pub use syslog::SyslogConfig;
pub use time::rfc3339;
pub use webhook::WebhookConfig;

/// One alert, as built by the daemon core from an engine alert.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertEvent {
    /// The alert as one JSON object, without a trailing newline.
    pub json_line: String,
    /// Stable alert id.
    pub id: String,
    /// `burst` or `beacon`.
    pub kind: &'static str,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: &'static str,
    /// Score in [0, 1].
    pub score: f64,
    /// Subscriber address.
    pub src: String,
    /// Endpoint address (and port).
    pub dst: String,
    /// Start of the event, ns since the Unix epoch.
    pub starts_at_unix_ns: i64,
    /// End of the event, ns since the Unix epoch.
    pub ends_at_unix_ns: i64,
    /// One human sentence.
    pub summary: String,
}

/// Errors starting a sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The alert file could not be opened for appending.
    #[error("cannot open alert file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An HTTP sink's URL, CA file or credentials are not usable.
    #[error("sink url {url:?}: {reason}")]
    Url {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Which sinks to run.
#[derive(Debug, Clone)]
pub struct SinksConfig {
    /// Append JSON lines to this file.
    pub file: Option<PathBuf>,
    /// Write JSON lines to standard output.
    pub stdout: bool,
    /// Post to these Alertmanagers, each with its own queue.
    pub alertmanager: Vec<AlertmanagerConfig>,
    /// Post to a webhook.
    pub webhook: Option<WebhookConfig>,
    /// Send to syslog.
    pub syslog: Option<SyslogConfig>,
    /// Labels naming where the alerts come from (`sensor`, `site`), added to every alert the
    /// Alertmanager, webhook and syslog sinks send; an empty value adds none.
    pub origin: Vec<(String, String)>,
    /// Queue length of the file and stdout sinks (the others have their own).
    pub queue: usize,
}

impl Default for SinksConfig {
    fn default() -> Self {
        Self {
            file: None,
            stdout: false,
            alertmanager: Vec::new(),
            webhook: None,
            syslog: None,
            origin: Vec::new(),
            queue: 4096,
        }
    }
}

impl SinksConfig {
    /// The names of the sinks [`Sinks::start`] runs for this configuration, in its order (none:
    /// alerts go nowhere but the metrics, which the daemon and `check-config` warn about).
    /// A new sink kind is named here as well as started there.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.file.is_some() {
            names.push("file");
        }
        if self.stdout {
            names.push("stdout");
        }
        names.extend(self.alertmanager.iter().map(|_| "alertmanager"));
        if self.webhook.is_some() {
            names.push("webhook");
        }
        if self.syslog.is_some() {
            names.push("syslog");
        }
        names
    }
}

/// Counters one sink task updates; read into [`SinkStats`].
#[derive(Debug, Default)]
pub struct SinkCounters {
    /// Alerts delivered.
    pub sent: AtomicU64,
    /// Alerts given up on.
    pub failed: AtomicU64,
    /// Alerts dropped at a full queue.
    pub overflow: AtomicU64,
    /// Repeated delivery attempts.
    pub retries: AtomicU64,
    /// Alerts in the queue or being delivered.
    pub queued: AtomicU64,
    /// The sink cannot write now (a line sink whose file fails; see [`lines`]).
    pub failing: AtomicBool,
}

impl SinkCounters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters as plain data.
    pub fn stats(&self, name: &'static str, target: &str) -> SinkStats {
        SinkStats {
            name,
            target: target.to_string(),
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            overflow: self.overflow.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            failing: self.failing.load(Ordering::Relaxed),
        }
    }

    /// Mark `n` queued alerts as handled (delivered or given up on).
    pub(crate) fn done(&self, n: u64) {
        // Saturating: never wraps even if a caller miscounts.
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(n))
            });
    }
}

/// A message to a sink task.
#[derive(Debug)]
pub(crate) enum Msg {
    /// Deliver this alert.
    Alert(Arc<AlertEvent>),
    /// Deliver everything before this message, then answer.
    Flush(oneshot::Sender<()>),
}

/// One running sink.
struct Handle {
    name: &'static str,
    target: String,
    tx: mpsc::Sender<Msg>,
    counters: Arc<SinkCounters>,
    task: JoinHandle<()>,
    reopen: Option<Arc<Notify>>,
}

impl Handle {
    /// Start a sink's task, `run`, on the receiving end of a queue of `queue` alerts (at least
    /// 1) with the sink's counters.
    fn spawn<F>(
        name: &'static str,
        target: String,
        queue: usize,
        run: impl FnOnce(mpsc::Receiver<Msg>, Arc<SinkCounters>) -> F,
    ) -> Handle
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let counters = Arc::new(SinkCounters::default());
        let task = tokio::spawn(run(rx, Arc::clone(&counters)));
        Handle {
            name,
            target,
            tx,
            counters,
            task,
            reopen: None,
        }
    }
}

/// The fan-out over every configured sink.
pub struct Sinks {
    handles: Vec<Handle>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self
            .handles
            .iter()
            .map(|h| format!("{} {}", h.name, h.target))
            .collect();
        f.debug_struct("Sinks").field("sinks", &names).finish()
    }
}

impl Sinks {
    /// Open the configured sinks and start their tasks (call inside a tokio runtime).
    pub async fn start(cfg: &SinksConfig) -> Result<Self, SinkError> {
        let mut handles = Vec::new();
        if let Some(path) = &cfg.file {
            let file = lines::open_append(path).await?;
            let reopen = Arc::new(Notify::new());
            let target = lines::Target::File {
                reopen: Arc::clone(&reopen),
            };
            let mut h = Handle::spawn("file", String::new(), cfg.queue, |rx, c| {
                lines::run(rx, target, file, c)
            });
            h.reopen = Some(reopen);
            handles.push(h);
        }
        if cfg.stdout {
            handles.push(Handle::spawn(
                "stdout",
                String::new(),
                cfg.queue,
                |rx, c| lines::run(rx, lines::Target::Stdout, lines::stdout(), c),
            ));
        }
        for am in &cfg.alertmanager {
            let sink = alertmanager::Webhook::new(am, &cfg.origin)?;
            let target = sink.target();
            handles.push(Handle::spawn(
                "alertmanager",
                target,
                am.http.queue,
                |rx, c| sink.run(rx, c),
            ));
        }
        if let Some(wh) = &cfg.webhook {
            let sink = webhook::Webhook::new(wh, &cfg.origin)?;
            let target = sink.target();
            handles.push(Handle::spawn("webhook", target, wh.queue, |rx, c| {
                sink.run(rx, c)
            }));
        }
        if let Some(sl) = &cfg.syslog {
            let sink = syslog::Syslog::new(sl, &cfg.origin)?;
            let target = sl.transport.label();
            handles.push(Handle::spawn("syslog", target, sl.queue, |rx, c| {
                sink.run(rx, c)
            }));
        }
        debug_assert_eq!(
            handles.iter().map(|h| h.name).collect::<Vec<_>>(),
            cfg.names(),
            "SinksConfig::names must name every sink started"
        );
        Ok(Self { handles })
    }

    /// Offer an alert to every sink. Never waits, needs no runtime context (any thread may
    /// call it): a sink whose queue is full drops the alert and counts an overflow.
    pub fn send(&self, event: AlertEvent) {
        let event = Arc::new(event);
        for h in &self.handles {
            match h.tx.try_send(Msg::Alert(Arc::clone(&event))) {
                Ok(()) => SinkCounters::add(&h.counters.queued, 1),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    SinkCounters::add(&h.counters.overflow, 1);
                    tracing::warn!(sink = h.name, target = %h.target, id = %event.id, "alert sink queue full; alert dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    SinkCounters::add(&h.counters.failed, 1);
                }
            }
        }
    }

    /// Re-open the alert file by name before its next write (after logrotate moved it; the
    /// daemon calls this on SIGHUP).
    pub fn reopen(&self) {
        for h in &self.handles {
            if let Some(n) = &h.reopen {
                n.notify_one();
            }
        }
    }

    /// Wait until every sink handled what was queued before this call (or `deadline` passed).
    /// Returns whether all sinks answered in time.
    pub async fn flush(&self, deadline: Duration) -> bool {
        let all = async {
            let mut ok = true;
            for h in &self.handles {
                let (tx, rx) = oneshot::channel();
                ok &= h.tx.send(Msg::Flush(tx)).await.is_ok() && rx.await.is_ok();
            }
            ok
        };
        tokio::time::timeout(deadline, all).await.unwrap_or(false)
    }

    /// Counters of every sink.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.handles
            .iter()
            .map(|h| h.counters.stats(h.name, &h.target))
            .collect()
    }

    /// Close the queues and let the sinks deliver what is queued, for at most `deadline`;
    /// sinks still busy then are stopped and their queued alerts counted as failed. Returns the
    /// final counters.
    pub async fn shutdown(self, deadline: Duration) -> Vec<SinkStats> {
        let end = tokio::time::Instant::now() + deadline;
        let mut rest = Vec::new();
        for h in self.handles {
            drop(h.tx);
            rest.push((h.name, h.target, h.counters, h.task));
        }
        let mut out = Vec::new();
        for (name, target, counters, mut task) in rest {
            if tokio::time::timeout_at(end, &mut task).await.is_err() {
                task.abort();
                let left = counters.queued.swap(0, Ordering::Relaxed);
                SinkCounters::add(&counters.failed, left);
                tracing::warn!(
                    sink = name,
                    target = %target,
                    lost = left,
                    "alert sink did not finish in time"
                );
            }
            out.push(counters.stats(name, &target));
        }
        out
    }
}
