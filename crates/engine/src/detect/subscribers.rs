//! The per-subscriber half of the detector: baselines, pairs and their bursts and beacons.
//!
//! Everything here depends on one subscriber's own packets only, so subscribers can be split
//! across shards by a hash of the home address. What needs the whole population (endpoint
//! prevalence, port usage, the hold and the score) goes out as [`Event`]s.

use std::net::IpAddr;

use ahash::RandomState;

use super::alert::{Connection, Connections};
use super::beacon;
use super::burstlog::{BurstOutcome, BurstRecord};
use super::config::{DetectConfig, ThresholdBasis};
use super::event::{self, Candidate, Event, EventKind};
use super::idle::{IdleQueue, IDLE_CLOSE_NS};
use super::pair::{self, FinishedBurst, PairState};
use super::prevalence::sec_of;
use super::stats::LogQuantile;
use super::{is_unicast_endpoint, AlertKind, DetectStats, Direction, NS_PER_SEC};
use crate::key::{addr_bytes, addr_ip, addr_to_ip, Addr};
use crate::lrumap::LruMap;
use crate::Ingested;
use burstwatch_wire::PacketMeta;

/// Subscriber state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct HostState {
    sec: i64,
    /// Upstream bytes of the open second (saturating).
    pub(crate) bin_up: u32,
    /// Of those, the bytes of pairs kept out of the baseline (see [`HostState::count_upstream`]).
    #[serde(default)]
    pub(crate) bin_held: u32,
    p50: Option<LogQuantile>,
    p95: Option<LogQuantile>,
    active_secs: u32,
    /// Highest one-second upstream byte count seen (saturating; bursts included): what the
    /// subscriber's uplink has shown it can carry.
    #[serde(default)]
    peak_up: u32,
}

impl HostState {
    /// Count upstream bytes. The baseline describes the subscriber's ordinary activity, so
    /// its own bursts must not raise the bar for its next ones: `held` bytes (of a pair in a
    /// burst or recently alerted, see [`PairState::held_from_baseline`]) are left out of it,
    /// and so is a closed second whose other bytes reach `burst_bytes` (the rate that starts
    /// a burst). The uplink peak counts every byte.
    /// `burst_bytes` is asked only when a second closes (it reads the baseline).
    #[inline]
    fn count_upstream(
        &mut self,
        ts: i64,
        bytes: u32,
        held: bool,
        burst_bytes: impl FnOnce(&Self) -> f64,
    ) {
        let sec = ts.div_euclid(NS_PER_SEC);
        if sec != self.sec {
            let threshold = burst_bytes(self);
            self.close_bin(threshold);
            self.sec = sec;
        }
        self.bin_up = self.bin_up.saturating_add(bytes);
        if held {
            self.bin_held = self.bin_held.saturating_add(bytes);
        }
    }

    fn close_bin(&mut self, burst_bytes: f64) {
        self.peak_up = self.peak_up.max(self.bin_up);
        let ordinary = self.bin_up.saturating_sub(self.bin_held);
        if ordinary > 0 && f64::from(ordinary) < burst_bytes {
            let x = f64::from(ordinary);
            self.p50.get_or_insert(LogQuantile::new(0.5)).update(x);
            self.p95.get_or_insert(LogQuantile::new(0.95)).update(x);
            self.active_secs = self.active_secs.saturating_add(1);
        }
        self.bin_up = 0;
        self.bin_held = 0;
    }

    /// The rate (bytes/s) a second needs to start a burst of this subscriber, and what set it
    /// (see [`DetectConfig::burst_entry`]).
    #[inline]
    pub(crate) fn burst_entry(&self, cfg: &DetectConfig) -> (f64, ThresholdBasis) {
        cfg.burst_entry(
            self.baseline_bytes(cfg.baseline_warmup_seconds),
            u64::from(self.peak_up),
        )
    }

    /// p95 of active-second upstream bytes, once warm.
    pub(crate) fn baseline_bytes(&self, warmup: u32) -> Option<f64> {
        if self.active_secs < warmup {
            return None;
        }
        self.p95.map(|q| q.value())
    }
}

/// Hash of a subscriber address as kept in endpoint prevalence sets (a fixed key: it must
/// not depend on the run, the shard or the machine).
pub(crate) fn host_hash(home: &Addr) -> u32 {
    use std::hash::Hasher as _;
    // Written to the state file: the algorithm and key are fixed, so a file written on one
    // machine or version is read the same on another.
    let mut h = siphasher::sip::SipHasher13::new_with_keys(HOST_HASH_KEY.0, HOST_HASH_KEY.1);
    h.write(home);
    (h.finish() >> 32) as u32
}

/// The fixed key of [`host_hash`] (part of the state file format: changing it is a new
/// `STATE_VERSION`).
const HOST_HASH_KEY: (u64, u64) = (0x6275_7273_7477_6174, 0x6368_2d68_6f73_7473);

/// The subscriber's side of a packet that a pair tracks.
struct Side {
    /// From the subscriber.
    up: bool,
    home: Addr,
    ext: Addr,
    /// The endpoint's port.
    ext_port: u16,
    /// The connection's cached pair slot, if it is still this pair's.
    cached: Option<u32>,
}

/// What a pair takes from one packet.
struct PairPacket {
    ts: i64,
    proto: u8,
    conn: Connection,
    ip_len: u32,
    payload_len: u32,
    flow_hash: u32,
}

/// Subscribers and their pairs. Feed packets of the subscribers this instance owns; collect
/// the [`Event`]s for the [`Scorer`](super::scorer::Scorer).
pub struct Subscribers {
    pub(crate) cfg: DetectConfig,
    pub(crate) hosts: LruMap<Addr, HostState>,
    pairs: LruMap<(Addr, Addr), PairState>,
    bursting: Vec<(u32, (Addr, Addr))>,
    /// Pairs whose open second reached the burst floor, by that second: a pair that goes
    /// silent right after a one-second burst gets no packet to close its second, so the sweep
    /// closes it once a whole second has passed. At most one entry per pair and second, and
    /// only for seconds of at least `burst_rate_floor_bps` upstream: bounded by the traffic.
    hot_bins: std::collections::VecDeque<(i64, u32, (Addr, Addr))>,
    now_ns: i64,
    last_sweep_sec: i64,
    stats: DetectStats,
    record_bursts: bool,
    /// Open exchanges of beacon candidates waiting for their silence.
    idle: IdleQueue,
    /// Generation of `cfg.home_nets`, bumped when a new config changes them.
    home_epoch: u32,
}

impl Subscribers {
    /// Per-subscriber state with these settings; `hash_seed` keys the hash tables only.
    pub fn new(cfg: DetectConfig, hash_seed: u64) -> Self {
        let h = |k: u64| {
            RandomState::with_seeds(hash_seed ^ k, hash_seed.rotate_left(9) ^ k, 0x5151, k)
        };
        Self {
            hosts: LruMap::new(cfg.max_hosts, h(1)),
            pairs: LruMap::new(cfg.max_pairs, h(2)),
            cfg,
            bursting: Vec::new(),
            hot_bins: std::collections::VecDeque::new(),
            now_ns: i64::MIN,
            last_sweep_sec: i64::MIN,
            stats: DetectStats::default(),
            record_bursts: false,
            idle: IdleQueue::default(),
            home_epoch: 0,
        }
    }

    /// Replace thresholds; learned state is kept.
    pub fn set_config(&mut self, cfg: DetectConfig) {
        self.hosts.set_cap(cfg.max_hosts);
        self.pairs.set_cap(cfg.max_pairs);
        if cfg.home_nets != self.cfg.home_nets {
            // Pairs keep their keys, but none of them vouches for a packet's direction until
            // the new home networks classify it again.
            self.home_epoch = self.home_epoch.wrapping_add(1) % (u32::MAX - 1);
        }
        self.cfg = cfg;
    }

    /// Also report bursts stopped by the per-subscriber gates (for forensic burst logs).
    pub fn record_bursts(&mut self, on: bool) {
        self.record_bursts = on;
    }

    /// Counters of this half (packets, bursts, hosts, pairs and their evictions).
    pub fn stats(&self) -> DetectStats {
        let mut s = self.stats.clone();
        s.hosts = self.hosts.len();
        s.pairs = self.pairs.len();
        s.evicted = [self.hosts.evicted, self.pairs.evicted, 0, 0];
        s.beacon_idle_dropped = self.idle.dropped;
        s
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

    /// Count one packet that the flow table has just counted as `flow` (the ports it was
    /// counted under, its flow hash). `pair_slot` is the word the flow table keeps with that
    /// flow for this side (see [`Subscribers::count_packet`]).
    #[inline]
    pub fn count(
        &mut self,
        ts: i64,
        meta: &PacketMeta,
        flow: &Ingested,
        pair_slot: &mut u32,
        out: &mut Vec<Event>,
    ) {
        self.count_packet(
            ts,
            meta.src,
            meta.dst,
            flow.sport,
            flow.dport,
            meta.proto,
            meta.icmp,
            meta.ip_len,
            meta.payload_len,
            flow.flow_hash,
            pair_slot,
            out,
        );
    }

    /// Count one packet: `ip_len` L3 bytes (`payload_len` of them transport payload) from
    /// `src:sport` to `dst:dport`, protocol `proto`
    /// (ICMP/ICMPv6: type and code in `icmp`); `flow_hash` identifies its connection (for counting the flows of a burst). `pair_hint`
    /// caches the pair's slot per connection (`u32::MAX` to start): a valid hint skips the
    /// home-prefix scan and two hash lookups; a stale one is detected (the slot's key is
    /// compared) and replaced. The result is the same either way.
    #[allow(clippy::too_many_arguments)] // the per-packet facts, passed flat to stay allocation-free
    #[inline]
    pub fn count_packet(
        &mut self,
        ts: i64,
        src: IpAddr,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        proto: u8,
        icmp: Option<[u8; 2]>,
        ip_len: u32,
        payload_len: u32,
        flow_hash: u32,
        pair_hint: &mut u32,
        out: &mut Vec<Event>,
    ) {
        self.advance_to(ts, out);
        let (s, d) = (addr_bytes(src), addr_bytes(dst));
        let Some(side) = self.classify(&s, &d, sport, dport, ip_len, *pair_hint) else {
            return;
        };
        let v4 = src.is_ipv4();
        let (hidx, pidx) = self.locate(&side, ts, ip_len, v4, proto, pair_hint, out);
        let pkt = PairPacket {
            ts,
            proto,
            conn: Connection {
                proto,
                from_subscriber: side.up,
                ports: match proto {
                    1 | 58 => icmp.map(|[t, c]| (u16::from(t), u16::from(c))),
                    p if burstwatch_wire::has_ports(p) => Some((sport, dport)),
                    _ => None,
                },
            },
            ip_len,
            payload_len,
            flow_hash,
        };
        self.add_to_pair(&side, hidx, pidx, v4, &pkt, out);
    }

    /// Which side of the packet is the subscriber, counted by direction; `None` for internal,
    /// transit and non-unicast traffic, which no pair tracks. A valid `hint` names this
    /// connection's pair, whose key (home, endpoint) already says which side is the
    /// subscriber: no prefix scan. It vouches only if the home networks have not changed since
    /// the pair's key last matched a classified packet.
    // The three steps of `count_packet` stay in its body: one call site each, per packet.
    #[inline(always)]
    fn classify(
        &mut self,
        s: &Addr,
        d: &Addr,
        sport: u16,
        dport: u16,
        ip_len: u32,
        hint: u32,
    ) -> Option<Side> {
        let hinted = match self.pairs.key_at(hint) {
            Some(k) if self.pairs.get(hint).home_epoch == self.home_epoch => {
                if k.0 == *s && k.1 == *d {
                    Some(Direction::Up)
                } else if k.0 == *d && k.1 == *s {
                    Some(Direction::Down)
                } else {
                    None
                }
            }
            _ => None,
        };
        let direction = hinted.unwrap_or_else(|| self.direction(s, d));
        let (up, home, ext, ext_port) = match direction {
            Direction::Up => {
                self.stats.packets_up += 1;
                self.stats.bytes_up += u64::from(ip_len);
                (true, *s, *d, dport)
            }
            Direction::Down => {
                self.stats.packets_down += 1;
                self.stats.bytes_down += u64::from(ip_len);
                (false, *d, *s, sport)
            }
            Direction::Internal => {
                self.stats.packets_internal += 1;
                self.stats.bytes_internal += u64::from(ip_len);
                return None;
            }
            Direction::Transit => {
                self.stats.packets_transit += 1;
                self.stats.bytes_transit += u64::from(ip_len);
                return None;
            }
        };
        // The cached pair slot, if still this pair's.
        let cached = if hinted.is_some() {
            Some(hint)
        } else {
            (self.pairs.key_at(hint) == Some(&(home, ext))).then_some(hint)
        };
        // A known pair has a unicast endpoint (no other kind ever gets a pair).
        if cached.is_none() && !is_unicast_endpoint(&ext) {
            // Broadcast, multicast, link-local and the like are not endpoints anyone "talks to".
            self.stats.packets_not_unicast += 1;
            return None;
        }
        Some(Side {
            up,
            home,
            ext,
            ext_port,
            cached,
        })
    }

    /// The subscriber's and the pair's slots (created if new; a pair evicted to make room
    /// finishes its burst), the subscriber's baseline taught by an upstream packet, and the
    /// scorer told of the contact (a new pair, or the first packet of a second).
    #[allow(clippy::too_many_arguments)] // the packet's facts the slots need, flat
    #[inline(always)]
    fn locate(
        &mut self,
        side: &Side,
        ts: i64,
        ip_len: u32,
        v4: bool,
        proto: u8,
        pair_hint: &mut u32,
        out: &mut Vec<Event>,
    ) -> (u32, u32) {
        let (home, ext) = (side.home, side.ext);
        let cached_host = side.cached.and_then(|p| {
            let h = self.pairs.get(p).host_hint;
            (self.hosts.key_at(h) == Some(&home)).then_some(h)
        });
        let hidx = match cached_host {
            Some(h) => {
                self.hosts.touch(h);
                h
            }
            None => self.hosts.upsert(home, HostState::default, |_, _| {}).0,
        };
        // Pair state (a new pair registers the subscriber with the endpoint).
        let mut evicted: Option<((Addr, Addr), PairState)> = None;
        let (pidx, new_pair) = match (side.cached, cached_host) {
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
        let pair = self.pairs.get_mut(pidx);
        pair.host_hint = hidx;
        pair.home_epoch = self.home_epoch;
        if side.up {
            // After the pair (whether its bytes teach the baseline), before its bin closes
            // (which reads the baseline).
            let cfg = &self.cfg;
            let held = pair.held_from_baseline(ts, cfg.burst_max_ns, cfg.lookback_ns);
            self.hosts
                .get_mut(hidx)
                .count_upstream(ts, ip_len, held, |h| h.burst_entry(cfg).0);
        }
        if let Some((k, mut v)) = evicted {
            if let Some(f) = v.finish_burst(self.cfg.burst_max_ns) {
                self.on_burst(k, v4, f, &v, out);
            }
        }
        if new_pair || self.pairs.get(pidx).last_ns < ts - NS_PER_SEC {
            let port_slot = if new_pair {
                event::port_slot(proto, side.ext_port)
            } else {
                None
            };
            out.push(Event(EventKind::Touch {
                ext,
                home,
                host: host_hash(&home),
                ts,
                port_slot,
            }));
        }
        (hidx, pidx)
    }

    /// The packet into its pair: the pair's open second closed first if this packet starts a
    /// new one (a burst may end there), then its bytes, its connection and its exchange; a
    /// closed exchange may make a beacon.
    #[inline(always)]
    fn add_to_pair(
        &mut self,
        side: &Side,
        hidx: u32,
        pidx: u32,
        v4: bool,
        pkt: &PairPacket,
        out: &mut Vec<Event>,
    ) {
        let (home, ext, ts) = (side.home, side.ext, pkt.ts);
        let (cont, quiet, max_ns, gap) = (
            self.cfg.burst_continue_ratio,
            self.cfg.burst_quiet_ns / NS_PER_SEC,
            self.cfg.burst_max_ns,
            self.cfg.beacon_event_gap_ns,
        );
        let had_burst = self.pairs.get(pidx).burst.is_some();
        // The subscriber's baseline only matters when the pair's open bin closes (a new second).
        let now_sec = ts.div_euclid(NS_PER_SEC);
        let finished = if self.pairs.get(pidx).bin_closes_before(now_sec) {
            let host = self.hosts.get(hidx);
            let baseline = host.baseline_bytes(self.cfg.baseline_warmup_seconds);
            let entry = host.burst_entry(&self.cfg);
            self.pairs
                .get_mut(pidx)
                .close_bin_before(now_sec, entry, baseline, cont, quiet, max_ns)
        } else {
            None
        };
        let pair = self.pairs.get_mut(pidx);
        let exchange = super::exchange::carries_exchange(pkt.proto, pkt.payload_len);
        let bin_up_before = pair.open_bin_up();
        let open_before = pair.ex.open_start();
        let event_closed = pair.add(
            ts,
            side.up,
            pkt.ip_len,
            pkt.flow_hash,
            pkt.conn,
            side.ext_port,
            exchange,
            gap,
        );
        // A new exchange of a pair that could already be a beacon waits for its silence.
        let opened = pair.ex.open_start();
        if opened.is_some()
            && opened != open_before
            && pair.ex.closed.saturating_add(1) >= self.cfg.beacon_min_events.min(6)
        {
            if let Some(start) = opened {
                self.idle.push(ts, (home, ext), start);
            }
        }
        let now_bursting = pair.burst.is_some();
        // The open second just reached the floor: if the pair falls silent, the sweep closes it.
        let floor = self.cfg.burst_rate_floor_bps / 8.0;
        if side.up
            && !now_bursting
            && (bin_up_before as f64) < floor
            && pair.open_bin_up() as f64 >= floor
        {
            if let Some(sec) = pair.open_sec() {
                self.hot_bins.push_back((sec, pidx, (home, ext)));
            }
        }
        if let Some(f) = finished {
            let snapshot = self.pairs.get(pidx).clone();
            self.on_burst((home, ext), v4, f, &snapshot, out);
        }
        if now_bursting && (!had_burst || !self.pairs.get(pidx).in_bursting) {
            let p = self.pairs.get_mut(pidx);
            if !p.in_bursting {
                p.in_bursting = true;
                self.bursting.push((pidx, (home, ext)));
            }
        }
        if event_closed {
            self.check_beacon(pidx, (home, ext), v4, ts, out);
        }
    }

    /// Move packet time forward: at a new second, end quiet bursts, tell the scorer (a tick)
    /// and drop idle pairs.
    #[inline]
    pub fn advance_to(&mut self, ts: i64, out: &mut Vec<Event>) {
        if ts <= self.now_ns {
            return;
        }
        self.now_ns = ts;
        let sec = ts.div_euclid(NS_PER_SEC);
        if sec != self.last_sweep_sec {
            self.new_second(sec, ts, out);
        }
    }

    fn new_second(&mut self, sec: i64, ts: i64, out: &mut Vec<Event>) {
        self.last_sweep_sec = sec;
        // Seconds before the last whole one: a pair still sending has closed them itself.
        self.close_hot_bins(sec, sec.saturating_sub(1));
        self.sweep_bursts(sec, false, out);
        self.close_idle(ts, out);
        out.push(Event(EventKind::Tick(ts)));
        self.expire_idle();
    }

    /// End of input: finish every burst, close every open exchange (a beacon's last poll
    /// counts), then tell the scorer to emit everything.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        let sec = self.now_ns.div_euclid(NS_PER_SEC).saturating_add(1);
        self.close_hot_bins(sec, sec);
        self.sweep_bursts(sec, true, out);
        self.close_exchanges(out);
        out.push(Event(EventKind::Finish(self.now_ns)));
    }

    /// Close the queued open exchanges that have been silent for [`IDLE_CLOSE_NS`] and run the
    /// beacon analysis on their pairs (see [`super::idle`]).
    fn close_idle(&mut self, now: i64, out: &mut Vec<Event>) {
        while let Some(w) = self.idle.pop_due(now) {
            let Some(idx) = self.pairs.find(&w.key) else {
                continue;
            };
            let ex = &mut self.pairs.get_mut(idx).ex;
            if ex.open_start() != Some(w.start) {
                continue; // closed by the next exchange already
            }
            let quiet_since = ex.last_ns();
            if now.saturating_sub(quiet_since) < IDLE_CLOSE_NS {
                // Still talking: wait for its silence.
                self.idle.push(quiet_since, w.key, w.start);
                continue;
            }
            if ex.close() {
                let v4 = addr_to_ip(w.key.1).is_ipv4();
                self.check_beacon(idx, w.key, v4, now, out);
            }
        }
    }

    /// Close the open exchange of every pair that could be a beacon, run the beacon analysis
    /// on it, and count the pairs whose polls are regular but too few for a beacon.
    fn close_exchanges(&mut self, out: &mut Vec<Event>) {
        // With the open one, three exchanges at least give two intervals.
        let keys: Vec<(Addr, Addr)> = self
            .pairs
            .iter_lru()
            .filter(|(_, p)| p.ex.is_open() && p.ex.closed >= 2)
            .map(|(k, _)| *k)
            .collect();
        let now = self.now_ns;
        for key in keys {
            let Some(idx) = self.pairs.find(&key) else {
                continue;
            };
            if !self.pairs.get_mut(idx).ex.close() {
                continue;
            }
            let v4 = addr_to_ip(key.1).is_ipv4();
            if !self.check_beacon(idx, key, v4, now, out) {
                let pair = self.pairs.get(idx);
                let mut buf = [(0, 0); pair::EVENT_RING];
                let n = pair.ex.recent(&mut buf);
                if let Some(f) = beacon::analyze(&self.cfg, &buf[..n]) {
                    // At least half of what the period needs: fewer is no evidence at all.
                    if f.events < f.events_needed
                        && f.events * 2 >= f.events_needed
                        && f.regularity >= f.regularity_needed
                        && f.in_band >= beacon::IN_BAND
                        && pair.beacons == 0
                    {
                        self.stats.beacons_too_few = self.stats.beacons_too_few.saturating_add(1);
                        self.stats.beacons_too_few_most = self
                            .stats
                            .beacons_too_few_most
                            .max((f.events, f.events_needed));
                    }
                }
            }
        }
    }

    fn sweep_bursts(&mut self, now_sec: i64, all: bool, out: &mut Vec<Event>) {
        let quiet = self.cfg.burst_quiet_ns / NS_PER_SEC;
        let (cont, max_ns) = (self.cfg.burst_continue_ratio, self.cfg.burst_max_ns);
        let mut i = 0;
        while i < self.bursting.len() {
            let (idx, key) = self.bursting[i];
            let valid = self.pairs.find(&key) == Some(idx);
            if !valid {
                self.bursting.swap_remove(i);
                continue;
            }
            let host = self.hosts.find(&key.0).map(|h| self.hosts.get(h));
            let baseline = host.and_then(|h| h.baseline_bytes(self.cfg.baseline_warmup_seconds));
            let entry = host.map_or_else(
                || self.cfg.burst_entry(None, 0),
                |h| h.burst_entry(&self.cfg),
            );
            let pair = self.pairs.get_mut(idx);
            let mut done = pair.close_bin_before(now_sec, entry, baseline, cont, quiet, max_ns);
            if done.is_none() && (all || pair.burst_is_over(now_sec, quiet)) {
                done = pair.finish_burst(max_ns);
            }
            let still = pair.burst.is_some();
            if let Some(f) = done {
                let snapshot = self.pairs.get(idx).clone();
                let v4 = addr_to_ip(key.1).is_ipv4();
                self.on_burst(key, v4, f, &snapshot, out);
            }
            if still && !all {
                i += 1;
            } else {
                self.pairs.get_mut(idx).in_bursting = false;
                self.bursting.swap_remove(i);
            }
        }
    }

    /// Close the hot open seconds of pairs that fell silent, those of seconds before `before`,
    /// as their next packet would have at `now_sec`: a second at the entry rate starts a burst,
    /// which the sweep then follows like any other.
    fn close_hot_bins(&mut self, now_sec: i64, before: i64) {
        let quiet = self.cfg.burst_quiet_ns / NS_PER_SEC;
        let (cont, max_ns) = (self.cfg.burst_continue_ratio, self.cfg.burst_max_ns);
        while let Some(&(sec, idx, key)) = self.hot_bins.front() {
            if sec >= before {
                break;
            }
            self.hot_bins.pop_front();
            if self.pairs.find(&key) != Some(idx) {
                continue;
            }
            let pair = self.pairs.get(idx);
            if pair.open_sec() != Some(sec) || pair.burst.is_some() {
                continue; // closed by a later packet, or a burst the sweep follows
            }
            let host = self.hosts.find(&key.0).map(|h| self.hosts.get(h));
            let baseline = host.and_then(|h| h.baseline_bytes(self.cfg.baseline_warmup_seconds));
            let entry = host.map_or_else(
                || self.cfg.burst_entry(None, 0),
                |h| h.burst_entry(&self.cfg),
            );
            let pair = self.pairs.get_mut(idx);
            // No burst was in progress, so none can end here.
            let ended = pair.close_bin_before(now_sec, entry, baseline, cont, quiet, max_ns);
            debug_assert!(ended.is_none());
            if pair.burst.is_some() && !pair.in_bursting {
                pair.in_bursting = true;
                self.bursting.push((idx, key));
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
    }

    fn reject(
        &mut self,
        key: (Addr, Addr),
        v4: bool,
        f: &FinishedBurst,
        outcome: BurstOutcome,
        out: &mut Vec<Event>,
    ) {
        if self.record_bursts {
            let rec = BurstRecord::new(addr_ip(key.0, v4), addr_ip(key.1, v4), &f.acc, outcome);
            out.push(Event(EventKind::Burst(Box::new(rec))));
        }
    }

    fn on_burst(
        &mut self,
        key: (Addr, Addr),
        v4: bool,
        f: FinishedBurst,
        pair: &PairState,
        out: &mut Vec<Event>,
    ) {
        self.stats.bursts += 1;
        let acc = &f.acc;
        if f.too_long {
            self.stats.bursts_too_long += 1;
            self.reject(key, v4, &f, BurstOutcome::TooLong, out);
            return;
        }
        if acc.vol.up < self.cfg.burst_min_bytes {
            self.stats.bursts_too_small += 1;
            self.reject(key, v4, &f, BurstOutcome::TooSmall, out);
            return;
        }
        let total = (acc.vol.up + acc.vol.down).max(1) as f64;
        if (acc.vol.up as f64) / total < self.cfg.burst_min_upstream_ratio {
            self.stats.bursts_not_upstream += 1;
            self.reject(key, v4, &f, BurstOutcome::NotUpstream, out);
            return;
        }
        let start_sec = sec_of(acc.start_ns);
        let mut starts = pair.recent_burst_starts();
        starts.push(start_sec);
        let recurrence = super::score::recurrence(&starts);
        let occurrence = pair.bursts.saturating_add(1);
        if let Some(idx) = self.pairs.find(&key) {
            self.pairs.get_mut(idx).push_burst_start(start_sec);
        }
        out.push(Event(EventKind::Candidate(Box::new(Candidate {
            emit_at: acc.end_ns.saturating_add(self.cfg.alert_hold_ns),
            kind: AlertKind::Burst,
            home: key.0,
            ext: key.1,
            v4,
            detected_ns: self.now_ns.max(acc.end_ns),
            start_ns: acc.start_ns,
            end_ns: acc.end_ns,
            totals: (acc.vol.up, acc.vol.down, acc.vol.pk_up, acc.vol.pk_down),
            proto_port: acc.main_port(),
            baseline_bytes: acc.baseline_bytes,
            pair_first_seen_ns: pair.first_seen_ns,
            occurrence,
            recurrence,
            beacon: None,
            beacon_facts: None,
            connections: f.acc.connections,
            burst: Some(f),
        }))));
    }

    /// Run the beacon analysis on the pair's recent exchanges; push a candidate and return
    /// `true` when they make a beacon.
    fn check_beacon(
        &mut self,
        pidx: u32,
        key: (Addr, Addr),
        v4: bool,
        ts: i64,
        out: &mut Vec<Event>,
    ) -> bool {
        let cfg = &self.cfg;
        let pair = self.pairs.get(pidx);
        if pair.ex.closed < cfg.beacon_min_events.min(6)
            || (pair.last_beacon_ns != i64::MIN
                && ts.saturating_sub(pair.last_beacon_ns) < cfg.beacon_realert_ns)
        {
            return false;
        }
        let mut buf = [(0, 0); pair::EVENT_RING];
        let n = pair.ex.recent(&mut buf);
        let Some(facts) = beacon::analyze(cfg, &buf[..n]) else {
            return false;
        };
        if !facts.is_beacon(cfg) {
            return false;
        }
        let beacon_port = (pair.last_proto, pair.last_port);
        let beacon_conn = Connections::one(pair.last_conn);
        let start_ns = pair.first_seen_ns + i64::from(buf[0].0) * 10_000_000;
        let (first_seen, totals) = (
            pair.first_seen_ns,
            (
                pair.total.up,
                pair.total.down,
                pair.total.pk_up,
                pair.total.pk_down,
            ),
        );
        let hold = self.cfg.alert_hold_ns;
        let p = self.pairs.get_mut(pidx);
        p.last_beacon_ns = ts;
        p.beacons = p.beacons.saturating_add(1);
        let occurrence = p.beacons;
        out.push(Event(EventKind::Candidate(Box::new(Candidate {
            emit_at: ts.saturating_add(hold),
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
            beacon: Some((
                facts.regularity,
                facts.interval_s,
                facts.median_bytes,
                facts.events,
            )),
            beacon_facts: Some(facts),
            connections: beacon_conn,
            pair_first_seen_ns: first_seen,
            occurrence,
            recurrence: 0.0,
            baseline_bytes: None,
        }))));
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: failures should panic
    use super::*;
    use crate::net::PrefixSet;

    fn packet(l: &mut Subscribers, ts: i64, src: &str, dst: &str, hint: &mut u32) {
        let mut out = Vec::new();
        let (s, d) = (src.parse().unwrap(), dst.parse().unwrap());
        l.count_packet(
            ts, s, d, 40_000, 443, 6, None, 1_000, 960, 7, hint, &mut out,
        );
    }

    #[test]
    fn a_pair_hint_says_the_direction_only_under_the_home_networks_that_made_it() {
        let mut l = Subscribers::new(DetectConfig::default(), 1);
        let mut hint = u32::MAX;
        // 10.0.0.1 is home under the defaults: upstream, then downstream, through the hint.
        packet(&mut l, NS_PER_SEC, "10.0.0.1", "198.18.0.1", &mut hint);
        assert_ne!(hint, u32::MAX);
        packet(&mut l, 2 * NS_PER_SEC, "198.18.0.1", "10.0.0.1", &mut hint);
        packet(&mut l, 3 * NS_PER_SEC, "10.0.0.1", "198.18.0.1", &mut hint);
        let s = l.stats();
        assert_eq!((s.packets_up, s.packets_down), (2, 1));

        // Now only 198.18.0.0/15 is home: the same hint must not keep calling 10.0.0.1 home.
        let cfg = DetectConfig {
            home_nets: PrefixSet::new(vec!["198.18.0.0/15".parse().unwrap()]),
            ..DetectConfig::default()
        };
        l.set_config(cfg);
        packet(&mut l, 4 * NS_PER_SEC, "10.0.0.1", "198.18.0.1", &mut hint);
        let s = l.stats();
        assert_eq!((s.packets_up, s.packets_down), (2, 2));
        // The new pair (198.18.0.1, 10.0.0.1) vouches from then on.
        packet(&mut l, 5 * NS_PER_SEC, "198.18.0.1", "10.0.0.1", &mut hint);
        packet(&mut l, 6 * NS_PER_SEC, "10.0.0.1", "198.18.0.1", &mut hint);
        let s = l.stats();
        assert_eq!((s.packets_up, s.packets_down), (3, 3));
        assert_eq!(s.pairs, 2);
    }

    #[test]
    fn held_bytes_count_in_the_uplink_peak_but_not_in_the_baseline() {
        // 40 s of 10 kB ordinary and 100 kB of a held pair per second, entry 125 kB/s.
        let run = |held: bool| {
            let mut h = HostState::default();
            for sec in 1..=41 {
                h.count_upstream(sec * NS_PER_SEC, 10_000, false, |_| 125_000.0);
                h.count_upstream(sec * NS_PER_SEC + NS_PER_SEC / 2, 100_000, held, |_| {
                    125_000.0
                });
            }
            h
        };
        let h = run(true);
        let b = h.baseline_bytes(30).unwrap();
        assert!((5_000.0..25_000.0).contains(&b), "{b}");
        assert_eq!(h.peak_up, 110_000);
        // Not held, the same bytes are ordinary.
        let b = run(false).baseline_bytes(30).unwrap();
        assert!(b > 60_000.0, "{b}");
        // A second held whole is no active second.
        let mut h = HostState::default();
        for sec in 1..=41 {
            h.count_upstream(sec * NS_PER_SEC, 50_000, true, |_| 125_000.0);
        }
        assert_eq!((h.active_secs, h.baseline_bytes(0)), (0, None));
    }

    #[test]
    fn subscriber_hash_is_fixed_across_machines_and_versions() {
        // Golden values: these hashes are written to state files; a change here makes old
        // files unreadable and needs a new STATE_VERSION.
        let v4 = crate::key::addr_bytes("10.0.0.1".parse().unwrap());
        let v6 = crate::key::addr_bytes("2001:db8::1".parse().unwrap());
        assert_eq!(host_hash(&v4), GOLDEN_V4);
        assert_eq!(host_hash(&v6), GOLDEN_V6);
    }
    const GOLDEN_V4: u32 = 3_379_046_433;
    const GOLDEN_V6: u32 = 2_714_305_622;
}
