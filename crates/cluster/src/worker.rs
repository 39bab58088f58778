//! The cluster thread: tags contacts, keeps the backlog, flushes, answers, reconnects.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burstwatch_engine::detect::{Contact, GlobalPrevalence, GlobalQuery};

use crate::backlog::Backlog;
use crate::store::{SensorInfo, Store};
use crate::{now_ms, Counters, Error, Mode, Msg, Options};

/// A backlog this large is flushed at once, not at the next interval.
const FLUSH_EARLY: usize = 65_536;
/// Longest pause between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(1000);
/// A batch sensor whose last flush is older than this is not waited for.
const STALE_MS: u64 = 10_000;
/// Batch runs flush (and show their progress) at least this often.
const BATCH_INTERVAL: Duration = Duration::from_millis(50);

const NS: i64 = 1_000_000_000;

fn sec(ns: i64) -> u32 {
    u32::try_from(ns.div_euclid(NS)).unwrap_or(if ns < 0 { 0 } else { u32::MAX })
}

pub(crate) struct Worker {
    opts: Options,
    counters: Arc<Counters>,
    store: Option<Store>,
    number: u16,
    backlog: Backlog,
    next_try: Instant,
    backoff: Duration,
    /// Newest packet time handed over with contacts (ns).
    watermark_ns: i64,
    state: &'static str,
}

impl Worker {
    pub fn new(opts: Options, counters: Arc<Counters>) -> Self {
        let backlog = Backlog::new(opts.max_backlog, opts.set_cap as usize);
        Self {
            opts,
            counters,
            store: None,
            number: 0,
            backlog,
            next_try: Instant::now(),
            backoff: Duration::from_millis(100),
            watermark_ns: i64::MIN,
            state: "running",
        }
    }

    /// Connect and register now.
    pub fn connect(&mut self) -> Result<(), Error> {
        let result = Store::connect(&self.opts.target).and_then(|mut s| {
            let n = s.register(&self.opts.sensor_id, &self.opts.tags.check_value())?;
            Ok((s, n))
        });
        match result {
            Ok((s, n)) => {
                if self.store.is_none() {
                    tracing::info!(sensor = %self.opts.sensor_id, number = n, "shared prevalence store connected");
                }
                self.store = Some(s);
                self.number = n;
                self.backoff = Duration::from_millis(100);
                self.counters.connected.store(true, Ordering::Relaxed);
                self.heartbeat();
                Ok(())
            }
            Err(e) => {
                self.failed();
                Err(e)
            }
        }
    }

    /// A store operation failed: drop the connection, retry later.
    fn failed(&mut self) {
        if self.store.take().is_some() {
            tracing::warn!(
                "shared prevalence store lost; scoring with the local view until it is back"
            );
        }
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.counters.connected.store(false, Ordering::Relaxed);
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    /// Connected, or trying again if the back-off passed.
    fn ensure(&mut self) -> bool {
        if self.store.is_none() && Instant::now() >= self.next_try {
            let _ = self.connect();
        }
        self.store.is_some()
    }

    pub fn run(mut self, rx: Receiver<Msg>, answers: SyncSender<Vec<(u64, GlobalPrevalence)>>) {
        let interval = match self.opts.mode {
            Mode::Live => self.opts.flush_interval,
            Mode::Batch => self.opts.flush_interval.min(BATCH_INTERVAL),
        };
        let mut next_flush = Instant::now() + interval;
        loop {
            let wait = next_flush.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Contacts(c, now_ns)) => {
                    self.add(&c, now_ns);
                    if self.backlog.len() >= FLUSH_EARLY {
                        self.flush();
                    }
                }
                Ok(Msg::Ask(q)) => {
                    self.flush();
                    let a = self.ask(&q);
                    if !a.is_empty() {
                        let _ = answers.try_send(a);
                    }
                }
                Ok(Msg::Sync {
                    contacts,
                    now_ns,
                    queries,
                    reply,
                }) => {
                    self.add(&contacts, now_ns);
                    self.flush();
                    if !queries.is_empty() {
                        self.wait_peers(now_ns);
                    }
                    let _ = reply.send(self.ask(&queries));
                }
                Ok(Msg::WaitSensors { n, timeout, reply }) => {
                    let _ = reply.send(self.wait_sensors(n, timeout));
                }
                Ok(Msg::Finish(reply)) => {
                    self.state = "finished";
                    self.flush();
                    let _ = reply.send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.state = "finished";
                    self.flush();
                    return;
                }
            }
            if Instant::now() >= next_flush {
                self.flush();
                next_flush = Instant::now() + interval;
            }
        }
    }

    fn add(&mut self, contacts: &[Contact], now_ns: i64) {
        let tags = &self.opts.tags;
        for c in contacts {
            let who = tags.subscriber(&c.subscriber);
            let s = sec(c.ts_ns);
            self.backlog.add(tags.endpoint_set(&c.endpoint), who, s);
            self.backlog
                .add(tags.prefix_set(&c.prefix, c.prefix_len), who, s);
        }
        self.watermark_ns = self.watermark_ns.max(now_ns);
        self.counters
            .dropped
            .fetch_add(std::mem::take(&mut self.backlog.dropped), Ordering::Relaxed);
    }

    /// Write the backlog (pipelined) and the directory line.
    /// The backlog gauge shows what a flush left behind.
    fn flush(&mut self) {
        if !self.ensure() {
            self.counters
                .backlog
                .store(self.backlog.len() as u64, Ordering::Relaxed);
            return;
        }
        if !self.backlog.is_empty() {
            let sets = self.backlog.take();
            let n: usize = sets.iter().map(|s| s.1.len()).sum();
            let lookback = sec(self.opts.lookback_ns);
            let ttl = u64::from(lookback) + self.opts.ttl_extra_sec;
            let now = sec(self.watermark_ns.max(0));
            let result = match self.store.as_mut() {
                Some(st) => st.write(&sets, now, lookback, self.opts.set_cap, ttl, self.number),
                None => Ok(()),
            };
            if let Err(e) = result {
                tracing::debug!("flush failed: {e}");
                self.backlog.put_back(sets);
                self.counters
                    .dropped
                    .fetch_add(std::mem::take(&mut self.backlog.dropped), Ordering::Relaxed);
                self.counters
                    .backlog
                    .store(self.backlog.len() as u64, Ordering::Relaxed);
                self.failed();
                return;
            }
            self.counters.written.fetch_add(n as u64, Ordering::Relaxed);
            self.counters.backlog.store(0, Ordering::Relaxed);
        }
        self.heartbeat();
    }

    fn info(&self) -> SensorInfo {
        SensorInfo {
            id: self.opts.sensor_id.clone(),
            number: self.number,
            state: self.state.into(),
            mode: self.opts.mode.as_str().into(),
            watermark_ns: self.watermark_ns.max(0),
            flushed_at_ms: now_ms() as i64,
            backlog: self.backlog.len() as u64,
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            written: self.counters.written.load(Ordering::Relaxed),
        }
    }

    fn heartbeat(&mut self) {
        let info = self.info();
        let Some(st) = self.store.as_mut() else {
            return;
        };
        match st.heartbeat(&info) {
            Ok(()) => self
                .counters
                .last_flush_ms
                .store(now_ms(), Ordering::Relaxed),
            Err(e) => {
                tracing::debug!("directory update failed: {e}");
                self.failed();
            }
        }
    }

    fn ask(&mut self, queries: &[GlobalQuery]) -> Vec<(u64, GlobalPrevalence)> {
        if queries.is_empty() {
            return Vec::new();
        }
        let tags = &self.opts.tags;
        let questions: Vec<(String, String, u32, u32)> = queries
            .iter()
            .map(|q| {
                (
                    tags.endpoint_key(&q.endpoint),
                    tags.prefix_key(&q.prefix, q.prefix_len),
                    sec(q.since_ns.max(0)),
                    sec(q.at_ns.max(0)),
                )
            })
            .collect();
        let n = queries.len() as u64;
        if !self.ensure() {
            self.counters.unanswered.fetch_add(n, Ordering::Relaxed);
            return Vec::new();
        }
        let result = match self.store.as_mut() {
            Some(st) => st.ask(&questions),
            None => Ok(Vec::new()),
        };
        match result {
            Ok(a) => {
                self.counters.answered.fetch_add(n, Ordering::Relaxed);
                queries.iter().map(|q| q.id).zip(a).collect()
            }
            Err(e) => {
                tracing::debug!("question failed: {e}");
                self.counters.unanswered.fetch_add(n, Ordering::Relaxed);
                self.failed();
                Vec::new()
            }
        }
    }

    /// Other running sensors, fresh enough to wait for.
    fn peers(&mut self) -> Option<Vec<SensorInfo>> {
        let me = self.opts.sensor_id.clone();
        let now = now_ms() as i64;
        let list = self.store.as_mut()?.sensors();
        match list {
            Ok(l) => Some(
                l.into_iter()
                    .filter(|s| s.id != me && s.state == "running")
                    .filter(|s| now - s.flushed_at_ms < STALE_MS as i64)
                    .collect(),
            ),
            Err(_) => {
                self.failed();
                None
            }
        }
    }

    /// Batch: until every other running sensor has flushed up to `at_ns`, at most the peer
    /// wait.
    fn wait_peers(&mut self, at_ns: i64) {
        let deadline = Instant::now() + self.opts.peer_wait;
        while Instant::now() < deadline {
            let Some(peers) = self.peers() else { return };
            if peers.iter().all(|p| p.watermark_ns >= at_ns) {
                return;
            }
            self.heartbeat();
            std::thread::sleep(Duration::from_millis(2));
        }
        tracing::warn!("other sensors did not reach this packet time in time; asking anyway");
    }

    fn wait_sensors(&mut self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure();
            let seen = self.peers().map_or(0, |p| p.len()) + 1;
            if seen >= n || Instant::now() >= deadline {
                return seen;
            }
            self.heartbeat();
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
