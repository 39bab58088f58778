//! The per-subscriber half of the detector: baselines, pairs and their bursts and beacons.
//!
//! Everything here depends on one subscriber's own packets only, so subscribers can be split
//! across shards by a hash of the home address. What needs the whole population (endpoint
//! prevalence, port usage, the hold and the score) goes out as [`Event`]s.

use std::net::IpAddr;

use ahash::RandomState;

use super::alert::Connection;
use super::config::DetectConfig;
use super::event::{self, Event, EventKind};
use super::idle::IdleQueue;
use super::pair::PairState;
use super::{is_unicast_endpoint, DetectStats, Direction, NS_PER_SEC};
use crate::key::{addr_bytes, Addr};
use crate::lrumap::LruMap;
use crate::Ingested;
use burstwatch_wire::proto::{ICMP, ICMPV6};
use burstwatch_wire::PacketMeta;

mod events;
mod host;
mod sweep;

pub(crate) use host::{host_hash, HostState};

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
    sampling: u32,
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
            meta.sampling,
            pair_slot,
            out,
        );
    }

    /// Count one packet: `ip_len` L3 bytes (`payload_len` of them transport payload) from
    /// `src:sport` to `dst:dport`, protocol `proto`
    /// (ICMP/ICMPv6: type and code in `icmp`); `flow_hash` identifies its connection (for
    /// counting the flows of a burst); `sampling` is the 1-in-N sampling its bytes were
    /// estimated at (0 or 1: a captured packet). `pair_hint`
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
        sampling: u32,
        pair_hint: &mut u32,
        out: &mut Vec<Event>,
    ) {
        self.advance_to(ts, out);
        let (s, d) = (addr_bytes(src), addr_bytes(dst));
        let Some(side) = self.classify(&s, &d, sport, dport, ip_len, *pair_hint) else {
            return;
        };
        let v4 = src.is_ipv4();
        let (hidx, pidx) = self.locate(&side, ts, sampling, v4, proto, pair_hint, out);
        let pkt = PairPacket {
            ts,
            proto,
            conn: Connection {
                proto,
                from_subscriber: side.up,
                ports: match proto {
                    ICMP | ICMPV6 => icmp.map(|[t, c]| (u16::from(t), u16::from(c))),
                    p if burstwatch_wire::has_ports(p) => Some((sport, dport)),
                    _ => None,
                },
            },
            ip_len,
            payload_len,
            flow_hash,
            sampling,
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
    /// finishes its burst), the subscriber's second rolled to the packet's, and the
    /// scorer told of the contact (a new pair, after a second of silence, or for sampled input
    /// each of the pair's first three seconds).
    #[allow(clippy::too_many_arguments)] // the packet's facts the slots need, flat
    #[inline(always)]
    fn locate(
        &mut self,
        side: &Side,
        ts: i64,
        sampling: u32,
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
        // Before the pair's bin closes (which reads the baseline), in either direction; the
        // upstream bytes are added once it has closed (see `add_to_pair`).
        let cfg = &self.cfg;
        self.hosts
            .get_mut(hidx)
            .roll(ts.div_euclid(NS_PER_SEC), |h| h.burst_entry(cfg).0);
        if let Some((k, mut v)) = evicted {
            if let Some(f) = v.finish_burst(self.cfg.burst_max_ns) {
                self.on_burst(k, v4, f, &v, out);
            }
        }
        // Sampled input: each of the pair's first three sampled seconds is a contact too, so
        // that prevalence can tell subscribers seen once from those seen again.
        let pair = self.pairs.get_mut(pidx);
        let sampled = sampling > 1;
        let recount = sampled
            && pair.open_sec() != Some(ts.div_euclid(NS_PER_SEC))
            && pair.note_sampled_sec();
        if new_pair || pair.last_ns < ts - NS_PER_SEC || recount {
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
                samples: u8::from(sampled),
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
        self.pairs.get_mut(pidx).note_sampling(pkt.sampling);
        let had_burst = self.pairs.get(pidx).burst.is_some();
        // The pair's open bin closes at a new second, judged against what it took when it
        // opened (see `PairState::set_bin_thresholds`).
        let now_sec = ts.div_euclid(NS_PER_SEC);
        let pair = self.pairs.get_mut(pidx);
        let finished = if pair.bin_closes_before(now_sec) {
            let (entry, baseline) = pair.bin_thresholds();
            pair.close_bin_before(now_sec, entry, baseline, cont, quiet, max_ns)
        } else {
            None
        };
        let pair = self.pairs.get_mut(pidx);
        if side.up {
            // Whether its bytes teach the baseline, asked once the pair's last second has
            // closed: a burst that second started holds every byte of this one out, whichever
            // of the pair's packets of it came first.
            let cfg = &self.cfg;
            let held = pair.held_from_baseline(ts, cfg.burst_max_ns, cfg.lookback_ns);
            self.hosts.get_mut(hidx).add_upstream(pkt.ip_len, held);
        }
        let pair = self.pairs.get_mut(pidx);
        // Exchanges feed only the beacon analysis, which flow export's samples never get
        // (they carry a sampling rate; captured packets do not).
        let exchange =
            pkt.sampling == 0 && super::exchange::carries_exchange(pkt.proto, pkt.payload_len);
        let bin_up_before = pair.open_bin_up();
        let opens = pair.open_sec().is_none();
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
        if opens {
            // The subscriber was rolled to this packet's second (`locate`): its baseline and
            // peak hold every second before this one.
            let host = self.hosts.get(hidx);
            pair.set_bin_thresholds(
                host.burst_entry(&self.cfg),
                host.baseline_bytes(self.cfg.baseline_warmup_seconds),
            );
        }
        // A new exchange of a pair that could already be a beacon waits for its silence (not
        // where beacons are not scored: flow export, or scoring off).
        let scored = !self.cfg.beacons_off() && !pair.from_export();
        let opened = pair.ex.open_start();
        if opened.is_some()
            && opened != open_before
            && scored
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
        if event_closed && scored {
            self.check_beacon(pidx, (home, ext), v4, ts, out);
        }
    }
}

#[cfg(test)]
mod tests;
