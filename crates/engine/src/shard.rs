//! Host sharding: several engines, one result.
//!
//! A [`Router`] sends each packet to the shard of its home host (a symmetric hash, so both
//! directions of a subscriber's traffic meet the same shard; packets with no or two home
//! sides hash both addresses symmetrically) and numbers what it sends. Each [`Shard`] runs a
//! flow table and the per-subscriber half of the detector ([`Subscribers`]) on its packets. The
//! population-wide half ([`Scorer`]) takes the shards' events merged back into packet order by
//! [`merge_into`], so endpoint prevalence, port usage and every alert are exactly those of a
//! single [`Engine`](crate::Engine) on the same stream, whatever the number of shards (as long
//! as no cap evicts: caps are per shard).
//!
//! Packet time reaches every shard: when the stream enters a new second the router hands out
//! a tick, and the shell gives it to all shards in its place in the sequence. Shells run
//! shards on threads and exchange batches of items; nothing here locks or reads the clock.
//!
//! ```
//! use burstwatch_engine::shard::{merge_into, Router, Shard, Tagged};
//! use burstwatch_engine::{DetectConfig, FlowConfig, Scorer};
//! use burstwatch_wire::PacketMeta;
//!
//! let cfg = DetectConfig::default();
//! let mut router = Router::new(2, cfg.home_nets.clone());
//! let mut shards: Vec<Shard> = (0..2)
//!     .map(|i| Shard::new(i, FlowConfig::default(), cfg.clone(), 7))
//!     .collect();
//! let mut scorer = Scorer::new(cfg, 7);
//! let meta = PacketMeta { proto: 17, ip_len: 100, ..PacketMeta::default() };
//! let r = router.route(1_000_000_000, &meta);
//! if let Some(ts) = r.tick {
//!     for s in shards.iter_mut() {
//!         s.tick(r.seq, ts);
//!     }
//! }
//! shards[r.shard].packet(r.seq, 1_000_000_000, r.now, &meta);
//! let fin = router.finish();
//! for s in shards.iter_mut() {
//!     s.finish(fin.seq, fin.now);
//! }
//! let mut parts: Vec<Vec<Tagged>> = shards.iter_mut().map(|s| s.take_events()).collect();
//! merge_into(&mut parts, &mut scorer);
//! assert_eq!(shards.iter_mut().filter_map(|s| s.pop_record()).count(), 1);
//! assert!(scorer.pop_alert().is_none());
//! ```

use std::net::IpAddr;

use burstwatch_wire::PacketMeta;

use crate::detect::{Event, Scorer, Subscribers};
use crate::key::{addr_bytes, Addr};
use crate::net::PrefixSet;
use crate::{DetectConfig, FlowConfig, FlowRecord, FlowTable, NS_PER_SEC};

/// Where a packet goes, and what goes before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// The shard that owns the packet's home host.
    pub shard: usize,
    /// Sequence number of the packet (and of its tick, if any).
    pub seq: u64,
    /// A new second of packet time starts here: give every shard this tick (at `seq`)
    /// before the packet.
    pub tick: Option<i64>,
    /// Packet time of the stream so far (the newest timestamp, ns).
    pub now: i64,
}

/// The end of the stream, for every shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finish {
    /// Sequence number after every packet.
    pub seq: u64,
    /// Packet time of the stream (ns).
    pub now: i64,
}

/// Numbers packets, picks their shard and marks new seconds.
#[derive(Debug, Clone)]
pub struct Router {
    shards: usize,
    home: PrefixSet,
    seq: u64,
    now: i64,
    last_sec: i64,
}

impl Router {
    /// A router over `shards` shards (at least one) with these home networks.
    pub fn new(shards: usize, home: PrefixSet) -> Self {
        Self {
            shards: shards.max(1),
            home,
            seq: 0,
            now: i64::MIN,
            last_sec: i64::MIN,
        }
    }

    /// Route one packet.
    #[inline]
    pub fn route(&mut self, ts: i64, meta: &PacketMeta) -> Routed {
        self.seq += 1;
        let tick = self.new_second(ts);
        Routed {
            shard: self.shard_of(&addr_bytes(meta.src), &addr_bytes(meta.dst)),
            seq: self.seq,
            tick,
            now: self.now,
        }
    }

    /// Packet time with no packet (an idle link): a tick for every shard when it enters a
    /// new second.
    pub fn advance(&mut self, ts: i64) -> Option<(u64, i64)> {
        let tick = self.new_second(ts)?;
        self.seq += 1;
        Some((self.seq, tick))
    }

    /// Moves packet time forward to `ts`; `Some(ts)` when that enters a new second.
    #[inline]
    fn new_second(&mut self, ts: i64) -> Option<i64> {
        if ts <= self.now {
            return None;
        }
        self.now = ts;
        let sec = ts.div_euclid(NS_PER_SEC);
        if sec == self.last_sec {
            return None;
        }
        self.last_sec = sec;
        Some(ts)
    }

    /// The end of the stream.
    pub fn finish(&mut self) -> Finish {
        self.seq += 1;
        Finish {
            seq: self.seq,
            now: self.now,
        }
    }

    /// Replace the home networks (a config reload).
    pub fn set_home(&mut self, home: PrefixSet) {
        self.home = home;
    }

    /// The shard of a home host (e.g. to restore learned baselines).
    pub fn shard_of_host(&self, ip: IpAddr) -> usize {
        self.pick(mix(&addr_bytes(ip)))
    }

    #[inline]
    fn shard_of(&self, src: &Addr, dst: &Addr) -> usize {
        if self.shards == 1 {
            return 0;
        }
        let h = match (self.home.contains_bytes(src), self.home.contains_bytes(dst)) {
            (true, false) => mix(src),
            (false, true) => mix(dst),
            // No home side or two: both addresses, in an order-free way.
            _ => mix(src).wrapping_add(mix(dst)),
        };
        self.pick(h)
    }

    #[inline]
    fn pick(&self, h: u64) -> usize {
        ((u128::from(h) * self.shards as u128) >> 64) as usize
    }
}

#[inline]
fn mix(a: &Addr) -> u64 {
    let x = u128::from_be_bytes(*a);
    let v = (x as u64) ^ ((x >> 64) as u64).rotate_left(29);
    let v = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (v ^ (v >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// An event with its place in the stream.
#[derive(Debug, Clone)]
pub struct Tagged {
    /// Sequence number << 2 | phase (0: a tick's sweep, 1: the tick, 2: the packet).
    order: u64,
    event: Event,
}

/// One shard: a flow table and the per-subscriber detector for the hosts it owns.
pub struct Shard {
    index: usize,
    flows: FlowTable,
    subscribers: Subscribers,
    buf: Vec<Event>,
    events: Vec<Tagged>,
    /// The pair slot of the last packet that had no flow entry.
    pass_by_hint: u32,
}

impl Shard {
    /// Shard number `index` with these settings (`hash_seed` keys hash tables only).
    pub fn new(index: usize, flow: FlowConfig, detect: DetectConfig, hash_seed: u64) -> Self {
        let seed = hash_seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Self {
            index,
            flows: FlowTable::new(flow, seed),
            subscribers: Subscribers::new(detect, seed),
            buf: Vec::with_capacity(16),
            events: Vec::new(),
            pass_by_hint: u32::MAX,
        }
    }

    /// Count one packet routed here.
    #[inline]
    pub fn packet(&mut self, seq: u64, ts: i64, now: i64, meta: &PacketMeta) {
        // The flow table and the subscriber half share nothing: the order of the two is free.
        self.subscribers.advance_to(now, &mut self.buf);
        let flow = self.flows.ingest(ts, meta);
        let pair_slot =
            crate::engine::pass_by_slot(&mut self.flows, flow.slot, &mut self.pass_by_hint);
        self.subscribers
            .count(ts, meta, &flow, pair_slot, &mut self.buf);
        self.tag(seq, 2);
    }

    /// A new second of packet time.
    pub fn tick(&mut self, seq: u64, ts: i64) {
        self.flows.advance_to(ts);
        self.subscribers.advance_to(ts, &mut self.buf);
        self.tag(seq, 0);
    }

    /// End of the stream: export every flow, finish every burst.
    pub fn finish(&mut self, seq: u64, now: i64) {
        self.flows.advance_to(now);
        self.flows.finish();
        self.subscribers.advance_to(now, &mut self.buf);
        self.subscribers.finish(&mut self.buf);
        self.tag(seq, 0);
    }

    /// Tag the buffered events: a tick or finish marker gets phase 1 (and only shard 0 keeps
    /// it, the scorer needs it once), what comes before it `phase`, what comes after it 2.
    #[inline]
    fn tag(&mut self, seq: u64, phase: u64) {
        if self.buf.is_empty() {
            return;
        }
        let mut phase = phase;
        for event in self.buf.drain(..) {
            let p = if event.is_tick() {
                if self.index != 0 {
                    phase = 2;
                    continue;
                }
                phase = 2;
                1
            } else {
                phase
            };
            self.events.push(Tagged {
                order: seq << 2 | p,
                event,
            });
        }
    }

    /// The events since the last call, in order, for [`merge_into`].
    pub fn take_events(&mut self) -> Vec<Tagged> {
        std::mem::take(&mut self.events)
    }

    /// Next finished flow record.
    #[inline]
    pub fn pop_record(&mut self) -> Option<FlowRecord> {
        self.flows.pop_record()
    }

    /// The flow table (counters).
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// The flow table, mutably (config reload).
    pub fn flows_mut(&mut self) -> &mut FlowTable {
        &mut self.flows
    }

    /// The per-subscriber detector (counters, learned baselines).
    pub fn subscribers(&self) -> &Subscribers {
        &self.subscribers
    }

    /// The per-subscriber detector, mutably (config reload, restore).
    pub fn subscribers_mut(&mut self) -> &mut Subscribers {
        &mut self.subscribers
    }
}

/// Feed the shards' events (each shard's list in its own order, as [`Shard::take_events`]
/// gave it) to the scorer in packet order. Leaves the lists empty.
pub fn merge_into(parts: &mut [Vec<Tagged>], scorer: &mut Scorer) {
    let total: usize = parts.iter().map(Vec::len).sum();
    if total == 0 {
        return;
    }
    if parts.len() == 1 {
        for t in parts[0].drain(..) {
            scorer.apply(t.event);
        }
        return;
    }
    // A k-way merge: k is small, so a linear scan of the heads beats a heap.
    let mut lists: Vec<_> = parts.iter_mut().map(|p| p.drain(..).peekable()).collect();
    loop {
        let mut best: Option<(u64, usize)> = None;
        for (i, list) in lists.iter_mut().enumerate() {
            if let Some(t) = list.peek() {
                if best.is_none_or(|(o, _)| t.order < o) {
                    best = Some((t.order, i));
                }
            }
        }
        let Some((_, i)) = best else { break };
        if let Some(t) = lists[i].next() {
            scorer.apply(t.event);
        }
    }
}
