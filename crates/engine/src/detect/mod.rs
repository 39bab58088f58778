//! Burst and beacon detection on packet time.
//!
//! Per packet with one side in the home networks and the other outside:
//!
//! 1. the subscriber's state keeps one-second upstream bins and a robust baseline of its
//!    active seconds (streaming p50/p95 in the log domain, trusted after a warm-up);
//! 2. the (subscriber, endpoint) pair keeps one-second bins both ways; a closed bin feeds the
//!    burst state machine: a second at or above `max(floor, factor x host p95)` starts a burst,
//!    seconds at a fraction of that continue it, a few quiet seconds end it;
//! 3. the endpoint's prevalence set counts distinct subscribers within the look-back.
//!
//! A finished burst that moved enough bytes, mostly upstream, in at most the maximum duration
//! becomes a candidate; after a hold (so prevalence settles) it is scored and, if the endpoint
//! is rare (or watched) and not allowed, and the score passes, becomes an [`Alert`]. Pairs whose
//! silence-separated exchanges are small and regular become `beacon` candidates.

pub mod alert;
pub mod burstlog;
pub mod config;
pub mod pair;
pub mod prevalence;
pub mod score;
pub mod state;
pub mod stats;

use std::collections::VecDeque;
use std::net::IpAddr;

use ahash::RandomState;

use crate::key::{addr_bytes, addr_ip, Addr};
use crate::lrumap::LruMap;
pub use alert::{Alert, AlertKind, EndpointInfo, Reason, Severity};
pub use burstlog::{BurstOutcome, BurstRecord};
pub use config::{DetectConfig, EndpointLists, Weights};
pub use pair::PairRates;
use pair::{FinishedBurst, PairState};
use prevalence::{sec_of, EndpointState};
use stats::LogQuantile;

const S: i64 = 1_000_000_000;

/// ASN/country lookup for endpoints, supplied by the shell (e.g. from a MaxMind-format file).
/// Lookups happen only when an alert is scored, never per packet.
pub trait Enrich: Send {
    /// Autonomous system number and ISO country code of an address, when known.
    fn lookup(&self, ip: IpAddr) -> (Option<u32>, Option<String>);
}

/// Which side of a packet is the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a home address to an outside one.
    Up,
    /// From an outside address to a home one.
    Down,
    /// Both sides at home.
    Internal,
    /// Neither side at home (transit).
    Transit,
}

/// Subscriber state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct HostState {
    sec: i64,
    bin_up: u64,
    p50: Option<LogQuantile>,
    p95: Option<LogQuantile>,
    active_secs: u32,
}

impl HostState {
    /// Count upstream bytes; a closed second at or above `burst_bytes` (the rate that starts a
    /// burst) is left out of the baseline, which describes the subscriber's ordinary activity:
    /// otherwise its own bursts would raise the bar for its next ones.
    fn add_up(&mut self, ts: i64, bytes: u64, burst_bytes: f64) {
        let sec = ts.div_euclid(S);
        if sec != self.sec {
            self.close_bin(burst_bytes);
            self.sec = sec;
        }
        self.bin_up += bytes;
    }

    fn close_bin(&mut self, burst_bytes: f64) {
        if self.bin_up > 0 && (self.bin_up as f64) < burst_bytes {
            let x = self.bin_up as f64;
            self.p50.get_or_insert(LogQuantile::new(0.5)).update(x);
            self.p95.get_or_insert(LogQuantile::new(0.95)).update(x);
            self.active_secs = self.active_secs.saturating_add(1);
        }
        self.bin_up = 0;
    }

    /// p95 of active-second upstream bytes, once warm.
    fn baseline_bytes(&self, warmup: u32) -> Option<f64> {
        if self.active_secs < warmup {
            return None;
        }
        self.p95.map(|q| q.value())
    }
}

/// Counters kept by the detector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectStats {
    /// Packets from home to outside.
    pub packets_up: u64,
    /// Packets from outside to home.
    pub packets_down: u64,
    /// Packets with both sides at home (counted, not scored).
    pub packets_internal: u64,
    /// Packets with neither side at home (counted, not scored).
    pub packets_transit: u64,
    /// L3 bytes by the same four directions: up, down, internal, transit.
    pub bytes_up: u64,
    /// L3 bytes from outside to home.
    pub bytes_down: u64,
    /// L3 bytes with both sides at home.
    pub bytes_internal: u64,
    /// L3 bytes with neither side at home.
    pub bytes_transit: u64,
    /// Packets to or from a non-unicast outside address (broadcast, multicast, link-local;
    /// counted, not scored).
    pub packets_not_unicast: u64,
    /// Bursts segmented (before any gate).
    pub bursts: u64,
    /// Bursts longer than the maximum duration (sustained transfers, not alerted).
    pub bursts_too_long: u64,
    /// Bursts below the minimum volume.
    pub bursts_too_small: u64,
    /// Bursts not mostly upstream.
    pub bursts_not_upstream: u64,
    /// Candidates dropped because the endpoint is allow-listed.
    pub suppressed_allowed: u64,
    /// Candidates dropped because the endpoint is not rare.
    pub suppressed_common: u64,
    /// Candidates dropped for a score below the threshold.
    pub suppressed_low_score: u64,
    /// Alerts by kind (`[burst, beacon]`) and severity (low..critical).
    pub alerts: [[u64; 4]; 2],
    /// Subscribers tracked now.
    pub hosts: usize,
    /// Pairs tracked now.
    pub pairs: usize,
    /// Endpoints tracked now.
    pub endpoints: usize,
    /// Evictions at the caps: `[hosts, pairs, endpoints]`.
    pub evicted: [u64; 3],
}

/// A burst or beacon waiting for its hold to pass.
#[derive(Debug, Clone)]
struct Candidate {
    emit_at: i64,
    kind: AlertKind,
    home: Addr,
    ext: Addr,
    v4: bool,
    detected_ns: i64,
    burst: Option<FinishedBurst>,
    /// Beacon: (regularity, median interval s, median event bytes, events).
    beacon: Option<(f64, f64, f64, u32)>,
    pair_first_seen_ns: i64,
    occurrence: u32,
    recurrence: f64,
    baseline_bytes: Option<f64>,
    totals: (u64, u64, u64, u64),
    proto_port: (u8, u16),
    start_ns: i64,
    end_ns: i64,
}

/// The detector. Feed it with [`Detector::ingest`]; pull alerts with [`Detector::pop_alert`].
pub struct Detector {
    cfg: DetectConfig,
    hosts: LruMap<Addr, HostState>,
    pairs: LruMap<(Addr, Addr), PairState>,
    endpoints: LruMap<Addr, EndpointState>,
    bursting: Vec<(u32, (Addr, Addr))>,
    pending: VecDeque<Candidate>,
    out: VecDeque<Alert>,
    port_pairs: Vec<u32>,
    port_max: u32,
    start_ns: Option<i64>,
    now_ns: i64,
    last_sweep_sec: i64,
    enrich: Option<Box<dyn Enrich>>,
    stats: DetectStats,
    host_hasher: RandomState,
    /// Opt-in record of every segmented burst (forensic reports); `None` in the daemon.
    burst_log: Option<burstlog::BurstLog>,
}

impl Detector {
    /// A detector with these settings.
    pub fn new(cfg: DetectConfig, hash_seed: u64) -> Self {
        let h = |k: u64| {
            RandomState::with_seeds(hash_seed ^ k, hash_seed.rotate_left(9) ^ k, 0x5151, k)
        };
        Self {
            hosts: LruMap::new(cfg.max_hosts, h(1)),
            pairs: LruMap::new(cfg.max_pairs, h(2)),
            endpoints: LruMap::new(cfg.max_endpoints, h(3)),
            cfg,
            bursting: Vec::new(),
            pending: VecDeque::new(),
            out: VecDeque::new(),
            port_pairs: vec![0; 2 * 65_536],
            port_max: 1,
            start_ns: None,
            now_ns: i64::MIN,
            last_sweep_sec: i64::MIN,
            enrich: None,
            stats: DetectStats::default(),
            // A fixed key: host hashes in prevalence sets must not depend on the run.
            host_hasher: RandomState::with_seeds(
                0x6275_7273_7477,
                0x6174_6368,
                0x686f_7374,
                0x7365_7473,
            ),
            burst_log: None,
        }
    }

    /// Use an ASN/country lookup for endpoint context and ASN/country lists.
    pub fn set_enrich(&mut self, enrich: Box<dyn Enrich>) {
        self.enrich = Some(enrich);
    }

    /// Replace thresholds (a config reload); learned state is kept.
    pub fn set_config(&mut self, cfg: DetectConfig) {
        self.hosts.set_cap(cfg.max_hosts);
        self.pairs.set_cap(cfg.max_pairs);
        self.endpoints.set_cap(cfg.max_endpoints);
        self.cfg = cfg;
    }

    /// The settings in force.
    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> DetectStats {
        let mut s = self.stats.clone();
        s.hosts = self.hosts.len();
        s.pairs = self.pairs.len();
        s.endpoints = self.endpoints.len();
        s.evicted = [
            self.hosts.evicted,
            self.pairs.evicted,
            self.endpoints.evicted,
        ];
        s
    }

    /// Next alert, if any.
    pub fn pop_alert(&mut self) -> Option<Alert> {
        self.out.pop_front()
    }

    /// Record every segmented burst with its gate outcome, keeping at most `cap` undrained
    /// records (drain them with [`Detector::pop_burst`]). Off unless called.
    pub fn record_bursts(&mut self, cap: usize) {
        self.burst_log = Some(burstlog::BurstLog::new(cap));
    }

    /// Next burst record, if recording is on and one is ready.
    pub fn pop_burst(&mut self) -> Option<BurstRecord> {
        self.burst_log.as_mut()?.pop()
    }

    /// Burst records lost to a full queue.
    pub fn bursts_dropped(&self) -> u64 {
        self.burst_log.as_ref().map_or(0, |l| l.dropped)
    }

    fn log_burst(
        &mut self,
        key: (Addr, Addr),
        v4: bool,
        acc: &pair::BurstAcc,
        outcome: BurstOutcome,
        scored: Option<(f64, u64)>,
    ) {
        if let Some(log) = self.burst_log.as_mut() {
            let mut rec = BurstRecord::new(addr_ip(key.0, v4), addr_ip(key.1, v4), acc, outcome);
            rec.score = scored.map(|s| s.0);
            rec.alert_id = scored
                .filter(|_| outcome == BurstOutcome::Alerted)
                .map(|s| s.1);
            log.push(rec);
        }
    }

    /// Which side is the subscriber.
    #[inline]
    pub fn direction(&self, src: &Addr, dst: &Addr) -> Direction {
        match (
            self.cfg.home_nets.contains_bytes(src),
            self.cfg.home_nets.contains_bytes(dst),
        ) {
            (true, false) => Direction::Up,
            (false, true) => Direction::Down,
            (true, true) => Direction::Internal,
            (false, false) => Direction::Transit,
        }
    }

    /// Count one packet: `ip_len` L3 bytes from `src:sport` to `dst:dport`, protocol `proto`;
    /// `flow_hash` identifies its connection (for counting the flows of a burst).
    #[allow(clippy::too_many_arguments)] // the per-packet facts, passed flat to stay allocation-free
    pub fn ingest(
        &mut self,
        ts: i64,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        proto: u8,
        ip_len: u32,
        flow_hash: u32,
    ) {
        let mut hint = u32::MAX;
        self.ingest_hinted(
            ts, src, dst, sport, dport, proto, ip_len, flow_hash, &mut hint,
        );
    }

    /// [`Detector::ingest`] with a cache of the pair's slot kept by the caller per connection
    /// (`u32::MAX` to start): a valid hint skips two hash lookups; a stale one is detected
    /// (the slot's key is compared) and replaced. The result is the same either way.
    #[allow(clippy::too_many_arguments)] // as `ingest`
    #[inline]
    pub fn ingest_hinted(
        &mut self,
        ts: i64,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        proto: u8,
        ip_len: u32,
        flow_hash: u32,
        pair_hint: &mut u32,
    ) {
        self.advance_to(ts);
        let (s, d) = (addr_bytes(src), addr_bytes(dst));
        let (up, home, ext, ext_port) = match self.direction(&s, &d) {
            Direction::Up => {
                self.stats.packets_up += 1;
                self.stats.bytes_up += u64::from(ip_len);
                (true, s, d, dport)
            }
            Direction::Down => {
                self.stats.packets_down += 1;
                self.stats.bytes_down += u64::from(ip_len);
                (false, d, s, sport)
            }
            Direction::Internal => {
                self.stats.packets_internal += 1;
                self.stats.bytes_internal += u64::from(ip_len);
                return;
            }
            Direction::Transit => {
                self.stats.packets_transit += 1;
                self.stats.bytes_transit += u64::from(ip_len);
                return;
            }
        };
        if !is_unicast_endpoint(&ext) {
            // Broadcast, multicast, link-local and the like are not endpoints anyone "talks to".
            self.stats.packets_not_unicast += 1;
            return;
        }
        let v4 = src.is_ipv4();
        let now_sec = ts.div_euclid(S);

        // The cached pair slot, if still this pair's, and its subscriber's slot.
        let cached = (self.pairs.key_at(*pair_hint) == Some(&(home, ext))).then_some(*pair_hint);
        let cached_host = cached.and_then(|p| {
            let h = self.pairs.get(p).host_hint;
            (self.hosts.key_at(h) == Some(&home)).then_some(h)
        });

        // Subscriber baseline.
        let hidx = match cached_host {
            Some(h) => {
                self.hosts.touch(h);
                h
            }
            None => self.hosts.upsert(home, HostState::default, |_, _| {}).0,
        };
        if up {
            let before = self
                .hosts
                .get(hidx)
                .baseline_bytes(self.cfg.baseline_warmup_seconds);
            let burst_bytes = self.entry_bytes(before);
            self.hosts
                .get_mut(hidx)
                .add_up(ts, u64::from(ip_len), burst_bytes);
        }
        let baseline = self
            .hosts
            .get(hidx)
            .baseline_bytes(self.cfg.baseline_warmup_seconds);

        // Pair state (a new pair registers the subscriber with the endpoint).
        let mut evicted: Option<((Addr, Addr), PairState)> = None;
        let (pidx, new_pair) = match (cached, cached_host) {
            (Some(p), Some(_)) => {
                self.pairs.touch(p);
                (p, false)
            }
            _ => self.pairs.upsert(
                (home, ext),
                || PairState::new(ts),
                |k, v| evicted = Some((k, v)),
            ),
        };
        *pair_hint = pidx;
        self.pairs.get_mut(pidx).host_hint = hidx;
        if let Some((k, mut v)) = evicted {
            if let Some(f) = v.finish_burst(self.cfg.burst_max_ns) {
                self.on_burst(k, v4, f, &v);
            }
        }
        if new_pair || self.pairs.get(pidx).last_ns < ts - S {
            self.touch_endpoint(home, ext, ts);
        }
        if new_pair && matches!(proto, 6 | 17) {
            let slot = usize::from(proto == 17) * 65_536 + usize::from(ext_port);
            self.port_pairs[slot] = self.port_pairs[slot].saturating_add(1);
            self.port_max = self.port_max.max(self.port_pairs[slot]);
        }

        let entry = self.entry_bytes(baseline);
        let (cont, quiet, max_ns, gap) = (
            self.cfg.burst_continue_ratio,
            self.cfg.burst_quiet_ns / S,
            self.cfg.burst_max_ns,
            self.cfg.beacon_event_gap_ns,
        );
        let pair = self.pairs.get_mut(pidx);
        let had_burst = pair.burst.is_some();
        let finished = pair.close_bin_before(now_sec, entry, baseline, cont, quiet, max_ns);
        let event_closed = pair.add(ts, up, ip_len, flow_hash, proto, ext_port, gap);
        let now_bursting = pair.burst.is_some();
        if let Some(f) = finished {
            let snapshot = self.pairs.get(pidx).clone();
            self.on_burst((home, ext), v4, f, &snapshot);
        }
        if now_bursting && (!had_burst || !self.pairs.get(pidx).in_bursting) {
            let p = self.pairs.get_mut(pidx);
            if !p.in_bursting {
                p.in_bursting = true;
                self.bursting.push((pidx, (home, ext)));
            }
        }
        if event_closed {
            self.check_beacon(pidx, (home, ext), v4, ts);
        }
    }

    fn entry_bytes(&self, baseline: Option<f64>) -> f64 {
        let floor = self.cfg.burst_rate_floor_bps / 8.0;
        baseline.map_or(floor, |b| floor.max(b * self.cfg.burst_baseline_factor))
    }

    fn host_hash(&self, home: &Addr) -> u32 {
        (self.host_hasher.hash_one(home) >> 32) as u32
    }

    fn touch_endpoint(&mut self, home: Addr, ext: Addr, ts: i64) {
        let now_sec = sec_of(ts);
        let lookback = sec_of(self.cfg.lookback_ns);
        let h = self.host_hash(&home);
        let (eidx, _) = self
            .endpoints
            .upsert(ext, || EndpointState::new(now_sec), |_, _| {});
        self.endpoints.get_mut(eidx).touch(h, now_sec, lookback);
    }

    /// Move packet time forward: end quiet bursts, emit alerts whose hold passed.
    pub fn advance_to(&mut self, ts: i64) {
        if self.start_ns.is_none() {
            self.start_ns = Some(ts);
        }
        if ts <= self.now_ns {
            return;
        }
        self.now_ns = ts;
        let sec = ts.div_euclid(S);
        if sec == self.last_sweep_sec {
            return;
        }
        self.last_sweep_sec = sec;
        self.sweep_bursts(sec, false);
        self.emit_due(false);
        self.expire_idle();
    }

    fn sweep_bursts(&mut self, now_sec: i64, all: bool) {
        let quiet = self.cfg.burst_quiet_ns / S;
        let (cont, max_ns) = (self.cfg.burst_continue_ratio, self.cfg.burst_max_ns);
        let mut i = 0;
        while i < self.bursting.len() {
            let (idx, key) = self.bursting[i];
            let valid = self.pairs.find(&key) == Some(idx);
            if !valid {
                self.bursting.swap_remove(i);
                continue;
            }
            let baseline = self.hosts.find(&key.0).and_then(|h| {
                self.hosts
                    .get(h)
                    .baseline_bytes(self.cfg.baseline_warmup_seconds)
            });
            let entry = self.entry_bytes(baseline);
            let pair = self.pairs.get_mut(idx);
            let mut done = pair.close_bin_before(now_sec, entry, baseline, cont, quiet, max_ns);
            if done.is_none() && (all || pair.burst_is_over(now_sec, quiet)) {
                done = pair.finish_burst(max_ns);
            }
            let still = pair.burst.is_some();
            if let Some(f) = done {
                let snapshot = self.pairs.get(idx).clone();
                let v4 = addr_ip(key.1, true).is_ipv4();
                self.on_burst(key, v4, f, &snapshot);
            }
            if still && !all {
                i += 1;
            } else {
                self.pairs.get_mut(idx).in_bursting = false;
                self.bursting.swap_remove(i);
            }
        }
    }

    fn expire_idle(&mut self) {
        // Pairs idle for longer than the look-back carry nothing the detector still needs.
        let limit = self.cfg.lookback_ns.max(self.cfg.beacon_realert_ns);
        while let Some(idx) = self.pairs.oldest() {
            let p = self.pairs.get(idx);
            if p.burst.is_some() || self.now_ns.saturating_sub(p.last_ns) <= limit {
                break;
            }
            self.pairs.remove(idx);
        }
        while let Some(idx) = self.endpoints.oldest() {
            let (n, popular) = self
                .endpoints
                .get(idx)
                .prevalence(sec_of(self.now_ns), sec_of(self.cfg.lookback_ns));
            if n > 0 || popular {
                break;
            }
            self.endpoints.remove(idx);
        }
    }

    /// End of input: finish every burst and emit every pending alert regardless of its hold.
    pub fn finish(&mut self) {
        let sec = self.now_ns.div_euclid(S).saturating_add(1);
        self.sweep_bursts(sec, true);
        self.emit_due(true);
    }

    fn on_burst(&mut self, key: (Addr, Addr), v4: bool, f: FinishedBurst, pair: &PairState) {
        self.stats.bursts += 1;
        let acc = &f.acc;
        if f.too_long {
            self.stats.bursts_too_long += 1;
            self.log_burst(key, v4, acc, BurstOutcome::TooLong, None);
            return;
        }
        if acc.up < self.cfg.burst_min_bytes {
            self.stats.bursts_too_small += 1;
            self.log_burst(key, v4, acc, BurstOutcome::TooSmall, None);
            return;
        }
        let total = (acc.up + acc.down).max(1) as f64;
        if (acc.up as f64) / total < self.cfg.burst_min_upstream_ratio {
            self.stats.bursts_not_upstream += 1;
            self.log_burst(key, v4, acc, BurstOutcome::NotUpstream, None);
            return;
        }
        let start_sec = sec_of(acc.start_ns);
        let mut starts = pair.recent_burst_starts();
        starts.push(start_sec);
        let recurrence = score::recurrence(&starts);
        let occurrence = pair.bursts.saturating_add(1);
        if let Some(idx) = self.pairs.find(&key) {
            self.pairs.get_mut(idx).push_burst_start(start_sec);
        }
        let proto_port = acc.main_port();
        let baseline_bytes = acc.baseline_bytes;
        self.pending.push_back(Candidate {
            emit_at: acc.end_ns.saturating_add(self.cfg.alert_hold_ns),
            kind: AlertKind::Burst,
            home: key.0,
            ext: key.1,
            v4,
            detected_ns: self.now_ns.max(acc.end_ns),
            start_ns: acc.start_ns,
            end_ns: acc.end_ns,
            totals: (acc.up, acc.down, acc.pk_up, acc.pk_down),
            proto_port,
            burst: Some(f),
            beacon: None,
            pair_first_seen_ns: pair.first_seen_ns,
            occurrence,
            recurrence,
            baseline_bytes,
        });
    }

    fn check_beacon(&mut self, pidx: u32, key: (Addr, Addr), v4: bool, ts: i64) {
        let cfg = &self.cfg;
        let pair = self.pairs.get(pidx);
        if pair.events < cfg.beacon_min_events
            || (pair.last_beacon_ns != i64::MIN
                && ts.saturating_sub(pair.last_beacon_ns) < cfg.beacon_realert_ns)
        {
            return;
        }
        // Only small exchanges count: bursts to the same endpoint (the mission shape) would
        // otherwise break up the beacon's rhythm.
        let events: Vec<(u32, u32)> = pair
            .recent_events()
            .into_iter()
            .filter(|e| u64::from(e.1) <= cfg.beacon_max_event_bytes)
            .collect();
        if events.len() < (cfg.beacon_min_events as usize).min(pair::EVENT_RING) {
            return;
        }
        // Event starts are in centiseconds.
        let intervals: Vec<f64> = events
            .windows(2)
            .map(|w| f64::from(w[1].0.saturating_sub(w[0].0)) / 100.0)
            .collect();
        let mut iv = intervals.clone();
        let med_interval = stats::median(&mut iv);
        let mut sizes: Vec<f64> = events.iter().map(|e| f64::from(e.1)).collect();
        let med_bytes = stats::median(&mut sizes);
        if med_interval * (S as f64) < (cfg.beacon_min_interval_ns as f64) {
            return;
        }
        // An exchange lost inside a burst (or not sent) is a missed beat, not irregularity:
        // intervals near a multiple of the median period count as that many beats.
        let beats: Vec<f64> = intervals
            .iter()
            .map(|&iv| iv / (iv / med_interval.max(1e-9)).round().max(1.0))
            .collect();
        let regularity = stats::regularity(&beats);
        if regularity < cfg.beacon_min_regularity {
            return;
        }
        if pair.last_proto == 6 && pair.distinct_event_flows() * 2 < events.len() {
            // Keep-alives inside one long-lived TCP connection (push, VPN, WebSocket) are not
            // periodic sessions.
            return;
        }
        let beacon_port = (pair.last_proto, pair.last_port);
        let start_ns = pair.first_seen_ns + i64::from(events[0].0) * 10_000_000;
        let (first_seen, totals) = (
            pair.first_seen_ns,
            (
                pair.total_up,
                pair.total_down,
                pair.total_pk_up,
                pair.total_pk_down,
            ),
        );
        let p = self.pairs.get_mut(pidx);
        p.last_beacon_ns = ts;
        p.beacons = p.beacons.saturating_add(1);
        let occurrence = p.beacons;
        self.pending.push_back(Candidate {
            emit_at: ts.saturating_add(self.cfg.alert_hold_ns),
            kind: AlertKind::Beacon,
            home: key.0,
            ext: key.1,
            v4,
            detected_ns: ts,
            start_ns,
            end_ns: ts,
            totals,
            proto_port: beacon_port,
            burst: None,
            beacon: Some((regularity, med_interval, med_bytes, events.len() as u32)),
            pair_first_seen_ns: first_seen,
            occurrence,
            recurrence: 0.0,
            baseline_bytes: None,
        });
    }

    fn emit_due(&mut self, all: bool) {
        // Candidates enter in roughly time order; sort the due ones for deterministic output.
        let mut due: Vec<Candidate> = Vec::new();
        let mut keep = VecDeque::with_capacity(self.pending.len());
        for c in self.pending.drain(..) {
            if all || c.emit_at <= self.now_ns {
                due.push(c);
            } else {
                keep.push_back(c);
            }
        }
        self.pending = keep;
        due.sort_by(|a, b| {
            (a.emit_at, a.start_ns, a.home, a.ext, a.kind)
                .cmp(&(b.emit_at, b.start_ns, b.home, b.ext, b.kind))
        });
        for c in due {
            self.emit(c);
        }
    }

    /// Record the outcome of a burst candidate (beacon candidates are not bursts).
    fn log_candidate(&mut self, c: &Candidate, outcome: BurstOutcome, scored: Option<(f64, u64)>) {
        if let (Some(f), true) = (c.burst.as_ref(), self.burst_log.is_some()) {
            self.log_burst((c.home, c.ext), c.v4, &f.acc, outcome, scored);
        }
    }

    fn emit(&mut self, c: Candidate) {
        // Prevalence as of the end of the hold (packet time may have moved on much further,
        // e.g. across a gap between rotated captures).
        let now_sec = sec_of(self.now_ns.min(c.emit_at));
        let lookback = sec_of(self.cfg.lookback_ns);
        let (prevalence, popular, first_contact) = match self.endpoints.find(&c.ext) {
            Some(i) => {
                let e = self.endpoints.get(i);
                let (n, p) = e.prevalence(now_sec, lookback);
                (n, p, e.first_contact(self.host_hash(&c.home)))
            }
            None => (0, false, None),
        };
        let dst = addr_ip(c.ext, c.v4);
        let (asn, country) = self.enrich.as_ref().map_or((None, None), |e| e.lookup(dst));
        let listed = |l: &EndpointLists| {
            l.prefixes.contains_bytes(&c.ext)
                || asn.is_some_and(|a| l.asns.contains(&a))
                || country
                    .as_ref()
                    .is_some_and(|cc| l.countries.iter().any(|x| x.eq_ignore_ascii_case(cc)))
        };
        if listed(&self.cfg.allow) {
            self.stats.suppressed_allowed += 1;
            self.log_candidate(&c, BurstOutcome::Allowed, None);
            return;
        }
        let watched = listed(&self.cfg.watch);
        if !watched && (popular || prevalence > self.cfg.rare_max_hosts) {
            self.stats.suppressed_common += 1;
            self.log_candidate(&c, BurstOutcome::CommonEndpoint, None);
            return;
        }
        let elapsed = self
            .now_ns
            .saturating_sub(self.start_ns.unwrap_or(self.now_ns));
        let fill = (elapsed as f64 / self.cfg.lookback_ns.max(1) as f64).clamp(0.0, 1.0);
        let first_seen_ns = first_contact
            .map(|s| i64::from(s) * S)
            .unwrap_or(c.pair_first_seen_ns);
        let novelty_age_s = (c.start_ns.saturating_sub(first_seen_ns)).max(0) as f64 / S as f64;
        let slot = match c.proto_port.0 {
            6 => Some(usize::from(c.proto_port.1)),
            17 => Some(65_536 + usize::from(c.proto_port.1)),
            _ => None,
        };
        let port_pairs = slot.map(|s| self.port_pairs[s]);
        let inputs = score::Inputs {
            kind: c.kind,
            burst: c.burst.as_ref().map(|f| &f.acc),
            beacon: c.beacon,
            baseline_bps: c.baseline_bytes.map(|b| b * 8.0),
            prevalence,
            novelty_age_s,
            recurrence: c.recurrence,
            occurrence: c.occurrence,
            port_pairs,
            port_max: self.port_max,
            watched,
            lookback_fill: fill,
        };
        let (score, reasons) = score::score(&self.cfg, &inputs);
        let id = alert_id(c.kind, &c.home, &c.ext, c.start_ns);
        if score < self.cfg.alert_min_score {
            self.stats.suppressed_low_score += 1;
            self.log_candidate(&c, BurstOutcome::LowScore, Some((score, id)));
            return;
        }
        self.log_candidate(&c, BurstOutcome::Alerted, Some((score, id)));
        let severity = Severity::from_score(score, &self.cfg.severity_bands);
        let kind_i = usize::from(c.kind == AlertKind::Beacon);
        self.stats.alerts[kind_i][severity as usize] += 1;
        let src = addr_ip(c.home, c.v4);
        let (bytes_out, bytes_in, packets_out, packets_in) = c.totals;
        let (peak_bps, flows) = c
            .burst
            .as_ref()
            .map_or((0.0, 0), |f| (f.acc.peak_up as f64 * 8.0, f.acc.flows));
        self.out.push_back(Alert {
            id,
            kind: c.kind,
            src,
            dst,
            dst_port: c.proto_port.1,
            proto: c.proto_port.0,
            start_ns: c.start_ns,
            end_ns: c.end_ns,
            detected_ns: c.detected_ns,
            bytes_out,
            bytes_in,
            packets_out,
            packets_in,
            peak_bps,
            flows,
            occurrence: c.occurrence,
            score,
            severity,
            reasons,
            endpoint: EndpointInfo {
                prevalence,
                popular,
                rarity_certain: fill >= 1.0,
                first_seen_ns: Some(first_seen_ns),
                asn,
                country,
                watched,
            },
            baseline_bps: c.baseline_bytes.map(|b| b * 8.0),
            pair_before: c.burst.as_ref().map(|f| f.acc.before),
        });
    }
}

/// Whether an outside address can be an endpoint: not unspecified, loopback, link-local,
/// multicast or the IPv4 limited broadcast.
fn is_unicast_endpoint(a: &Addr) -> bool {
    match addr_ip(*a, true) {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            let seg0 = v6.segments()[0];
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (seg0 & 0xffc0) == 0xfe80)
        }
    }
}

/// FNV-1a 64 of the alert's identity: stable across runs, machines and versions.
fn alert_id(kind: AlertKind, home: &Addr, ext: &Addr, start_ns: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    eat(kind as u8);
    home.iter().chain(ext.iter()).for_each(|&b| eat(b));
    start_ns.to_le_bytes().iter().for_each(|&b| eat(b));
    h
}
