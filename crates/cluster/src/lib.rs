//! # burstwatch-cluster
//!
//! Endpoint prevalence shared across sensors through Redis: the shell around the engine's
//! sans-IO interface ([`burstwatch_engine::detect::global`]).
//!
//! ```text
//!  engine (Scorer) ──Contact──▶ Cluster::publish ─┐        ┌─▶ bw:e:<tag>, bw:p:<tag>
//!                  ──GlobalQuery─▶ Cluster::ask ──┤ thread ├─▶ (sorted sets, one Lua
//!  engine ◀──answer── Cluster::answers ◀──────────┘        │    script per batch)
//!                                                          └─▶ bw:sensor:<id> (directory)
//! ```
//!
//! A thread of its own owns the connection: the packet path only hands over vectors through a
//! bounded channel (`try_send`; a full channel drops the contacts and counts them) and never
//! waits for Redis. The thread turns addresses into keyed tags ([`tags`]), merges contacts in a
//! bounded [`backlog::Backlog`], and flushes them once per `flush_interval` in pipelined script
//! calls; questions are answered in batches after a flush, so this sensor's own contacts are
//! in. When Redis is down or slow the backlog keeps what fits (drops counted), questions go
//! unanswered (the engine scores with its local view, `rarity_certain = false`), and the
//! thread reconnects with a back-off of at most a second and drains the backlog.
//!
//! Batch runs (`analyze`) use [`Cluster::sync`]: flush, wait until every other running sensor
//! has flushed up to the question's packet time (or a bounded wait passed), then ask; so
//! several `analyze` processes over parts of one capture see one population.
#![forbid(unsafe_code)]

pub mod backlog;
mod conn;
mod info;
pub mod store;
pub mod tags;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use burstwatch_engine::detect::{Contact, GlobalPrevalence, GlobalQuery};

pub use info::NodeSize;
pub use store::{SensorInfo, Store, Target};
pub use tags::Tags;

/// Messages waiting for the cluster thread, at most.
const CHANNEL: usize = 256;

/// What can go wrong with the shared store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis refused, failed or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The password file could not be read.
    #[error("cannot read the Redis password file {path}: {source}")]
    Password {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file for `rediss://` could not be read, or is not a PEM certificate file.
    #[error("cannot use the Redis CA file {path}: {why}")]
    CaFile {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The client certificate or key for `rediss://` could not be read, or is not PEM.
    #[error("cannot use the Redis client certificate file {path}: {why}")]
    ClientCert {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// Another sensor wrote the store with another pseudonym key.
    #[error(
        "the store holds pseudonyms made with another key: every sensor of a cluster needs the \
         same cluster.key_file"
    )]
    KeyMismatch,
    /// The sensor directory is full.
    #[error("more than 65535 sensors are registered in the store")]
    TooManySensors,
    /// A reply of an unexpected shape.
    #[error("unexpected reply from the store: {0}")]
    Reply(&'static str),
}

/// Live (daemon) or batch (`analyze`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Never wait for other sensors; flush on the interval.
    Live,
    /// Questions wait for the other running sensors to reach their packet time.
    Batch,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Batch => "batch",
        }
    }
}

/// How the cluster thread runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the store is.
    pub target: Target,
    /// This sensor's id.
    pub sensor_id: String,
    /// The tags of the pseudonym key.
    pub tags: Tags,
    /// Flush period.
    pub flush_interval: Duration,
    /// Distinct contacts kept while the store cannot take them.
    pub max_backlog: usize,
    /// Subscribers a set keeps.
    pub set_cap: u32,
    /// The look-back (ns): members older than it no longer count; sets live this long.
    pub lookback_ns: i64,
    /// How long past the look-back a set lives without contacts (s).
    pub ttl_extra_sec: u64,
    /// Live or batch.
    pub mode: Mode,
    /// Batch: longest wait for the other sensors at a question.
    pub peer_wait: Duration,
}

/// Counters of the cluster thread (read any time).
#[derive(Debug, Default)]
pub struct Counters {
    /// Contacts written to the store.
    pub written: AtomicU64,
    /// Contacts dropped (full backlog or full channel).
    pub dropped: AtomicU64,
    /// Distinct contacts a flush left behind (waiting for the store).
    pub backlog: AtomicU64,
    /// Failed store operations (connects, writes, questions).
    pub errors: AtomicU64,
    /// Wall clock of the last successful flush (ms since the epoch; the start before one).
    pub last_flush_ms: AtomicU64,
    /// Questions answered by the store.
    pub answered: AtomicU64,
    /// Questions dropped or left unanswered (store down, full channel).
    pub unanswered: AtomicU64,
    /// Whether a connection is up.
    pub connected: AtomicBool,
}

impl Counters {
    /// Seconds since the last successful flush (or the start; `None` before the start).
    pub fn flush_lag_seconds(&self) -> Option<f64> {
        let last = self.last_flush_ms.load(Ordering::Relaxed);
        (last > 0).then(|| (now_ms().saturating_sub(last)) as f64 / 1000.0)
    }
}

/// Wall clock, ms since the epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(crate) enum Msg {
    Contacts(Vec<Contact>, i64),
    Ask(Vec<GlobalQuery>),
    Sync {
        contacts: Vec<Contact>,
        now_ns: i64,
        queries: Vec<GlobalQuery>,
        reply: SyncSender<Vec<(u64, GlobalPrevalence)>>,
    },
    WaitSensors {
        n: usize,
        timeout: Duration,
        reply: SyncSender<usize>,
    },
    Finish(SyncSender<()>),
}

/// The handle of the cluster thread.
pub struct Cluster {
    tx: SyncSender<Msg>,
    answers: Receiver<Vec<(u64, GlobalPrevalence)>>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl Cluster {
    /// Start the thread. It connects once at once: a store written with another key is an
    /// error here; a store that cannot be reached is not (the thread retries; questions go
    /// unanswered meanwhile), and is logged.
    pub fn start(opts: Options) -> Result<Cluster, Error> {
        let counters = Arc::new(Counters::default());
        // The flush lag counts from the start until a first flush.
        counters.last_flush_ms.store(now_ms(), Ordering::Relaxed);
        let mut w = worker::Worker::new(opts, Arc::clone(&counters));
        match w.connect() {
            Err(Error::KeyMismatch) => return Err(Error::KeyMismatch),
            Err(e) => tracing::warn!(
                "shared prevalence store not reachable ({e}); scoring with the local view and \
                 retrying"
            ),
            Ok(()) => {}
        }
        let (tx, rx) = mpsc::sync_channel(CHANNEL);
        let (ans_tx, answers) = mpsc::sync_channel(CHANNEL);
        let thread = std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || w.run(rx, ans_tx))
            .map_err(|_| Error::Reply("cannot start the cluster thread"))?;
        Ok(Cluster {
            tx,
            answers,
            counters,
            thread: Some(thread),
        })
    }

    /// Hand over contacts drained from the scorer at packet time `now_ns`; never blocks (a
    /// full channel drops them, counted).
    pub fn publish(&self, contacts: Vec<Contact>, now_ns: i64) {
        if contacts.is_empty() {
            return;
        }
        let n = contacts.len() as u64;
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Msg::Contacts(contacts, now_ns))
        {
            self.counters.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Ask questions; the answers come through [`Cluster::answers`]. Never blocks.
    pub fn ask(&self, queries: Vec<GlobalQuery>) {
        if queries.is_empty() {
            return;
        }
        let n = queries.len() as u64;
        if self.tx.try_send(Msg::Ask(queries)).is_err() {
            self.counters.unanswered.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Answers that arrived since the last call.
    pub fn answers(&self) -> Vec<(u64, GlobalPrevalence)> {
        let mut out = Vec::new();
        while let Ok(mut a) = self.answers.try_recv() {
            out.append(&mut a);
        }
        out
    }

    /// Batch runs: flush `contacts`, wait for the other running sensors to reach `now_ns`
    /// (bounded), and answer `queries` (those the store could answer).
    pub fn sync(
        &self,
        contacts: Vec<Contact>,
        now_ns: i64,
        queries: Vec<GlobalQuery>,
    ) -> Vec<(u64, GlobalPrevalence)> {
        let (reply, rx) = mpsc::sync_channel(1);
        let msg = Msg::Sync {
            contacts,
            now_ns,
            queries,
            reply,
        };
        if self.tx.send(msg).is_err() {
            return Vec::new();
        }
        rx.recv().unwrap_or_default()
    }

    /// Batch runs: wait until `n` sensors (this one included) are running, at most `timeout`;
    /// returns how many were.
    pub fn wait_for_sensors(&self, n: usize, timeout: Duration) -> usize {
        let (reply, rx) = mpsc::sync_channel(1);
        if self
            .tx
            .send(Msg::WaitSensors { n, timeout, reply })
            .is_err()
        {
            return 0;
        }
        rx.recv().unwrap_or(0)
    }

    /// The thread's counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Flush what is left (one try), mark this sensor finished, and stop the thread.
    pub fn finish(mut self) {
        let (reply, rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Finish(reply)).is_ok() {
            let _ = rx.recv();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
