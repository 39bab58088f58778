//! The bidirectional flow table.
//!
//! Flows (`flow.rs`) live in a [`Slab`] (slots reused, a hash index of slot numbers, the key
//! stored once in the flow). Each flow sits in one of five intrusive lists ordered by last-seen
//! time: open TCP, UDP, ICMP, other protocols, and closing
//! TCP (FIN both ways or RST). The list heads are the flows idle the longest, so idle expiry and
//! least-recently-seen eviction are O(1) per flow. Nothing here reads the clock: "now" is the
//! newest packet timestamp seen.

use ahash::RandomState;
use burstwatch_wire::proto::{ICMP, ICMPV6, TCP, UDP};
use burstwatch_wire::{Frag, PacketMeta};
use foldhash::fast::FixedState;
use std::collections::VecDeque;

use crate::config::FlowConfig;
use crate::frag::{FragKey, FragMap};
use crate::key::{addr_bytes, FlowKey};
use crate::lru::{Links, List, NIL};
use crate::record::{DirStats, EndReason, FlowContext, FlowRecord};
use crate::slab::Slab;

mod flow;
mod stats;

use flow::{
    context_of, note_reverse_tunnels, to_record, Flow, FIN_HI, FIN_LO, ICMP_KNOWN, RST_SEEN,
};
pub use stats::FlowStats;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// List ids.
const L_TCP: usize = 0;
const L_UDP: usize = 1;
const L_ICMP: usize = 2;
const L_OTHER: usize = 3;
const L_CLOSING: usize = 4;
const N_LISTS: usize = 5;
/// Marks a free slab slot.
const L_FREE: u8 = u8::MAX;
/// Marks the slot of an ended flow whose record has not been handed out yet.
const L_PENDING: u8 = u8::MAX - 1;

/// What [`FlowTable::ingest`] tells the caller about the packet it counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// Source port the packet was counted under.
    pub sport: u16,
    /// Destination port the packet was counted under.
    pub dport: u16,
    /// Identifies the flow within this table's run (keyed hash; not stable across runs).
    pub flow_hash: u32,
    /// Slab slot of the flow (valid until the next call), for [`FlowTable::pair_slot_mut`].
    pub slot: u32,
}

/// The flow table: ingest packets in (roughly) time order, pull finished [`FlowRecord`]s.
///
/// ```
/// use burstwatch_engine::{FlowConfig, FlowTable};
/// use burstwatch_wire::PacketMeta;
///
/// let mut table = FlowTable::new(FlowConfig::default(), 42);
/// let mut meta = PacketMeta::default();
/// meta.src = "10.0.0.1".parse().unwrap();
/// meta.dst = "192.0.2.1".parse().unwrap();
/// meta.proto = 17;
/// meta.sport = 5000;
/// meta.dport = 53;
/// meta.ip_len = 60;
/// table.ingest(1_000_000_000, &meta);
/// table.finish();
/// let rec = table.pop_record().unwrap();
/// assert_eq!((rec.fwd.packets, rec.fwd.bytes, rec.end_reason.as_str()), (1, 60, "end_of_input"));
/// ```
pub struct FlowTable {
    cfg: FlowConfig,
    slab: Slab<Flow, FixedState>,
    lists: [List; N_LISTS],
    timeouts: [i64; N_LISTS],
    frags: FragMap,
    now_ns: i64,
    /// No list head can expire before this packet time: the heads are checked only from then
    /// on (a lower bound, lowered whenever a head may have changed).
    next_check_ns: i64,
    started: bool,
    /// Records made ahead of `pending` (active-timeout restarts; an ended flow whose slot was
    /// needed): handed out first.
    out: VecDeque<FlowRecord>,
    /// Ended flows, oldest first, whose records are made when they are popped: their slots
    /// stay taken until then, so a mass expiry or the end of input holds no more than the
    /// table (no queue of records as long as the table).
    pending: VecDeque<(u32, EndReason)>,
    stats: FlowStats,
}

impl FlowTable {
    /// A new, empty table. `hash_seed` keys the flow hash (pick it at random in a deployment so
    /// hostile traffic cannot aim for collisions; fixed in tests).
    pub fn new(cfg: FlowConfig, hash_seed: u64) -> Self {
        let hasher = RandomState::with_seeds(
            hash_seed,
            hash_seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15,
            hash_seed.rotate_left(31) ^ 0xc2b2_ae3d_27d4_eb4f,
            hash_seed.rotate_left(47) ^ 0x1656_67b1_9e37_79f9,
        );
        let frags = FragMap::new(cfg.max_fragments, cfg.fragment_timeout_ns, hasher);
        // foldhash for the per-packet key: fewer instructions per packet than ahash's portable
        // path (see the flows benchmark).
        let hasher = FixedState::with_seed(hash_seed);
        let timeouts = [
            cfg.tcp_idle_ns,
            cfg.udp_idle_ns,
            cfg.icmp_idle_ns,
            cfg.other_idle_ns,
            cfg.tcp_close_grace_ns,
        ];
        let mut table = Self {
            cfg,
            slab: Slab::new(hasher),
            lists: [List::default(); N_LISTS],
            timeouts,
            frags,
            now_ns: i64::MIN,
            next_check_ns: i64::MIN,
            started: false,
            out: VecDeque::new(),
            pending: VecDeque::new(),
            stats: FlowStats::default(),
        };
        table.reserve();
        table
    }

    /// Reserve slab (slots and free list; the index grows with the flows, see [`crate::slab`])
    /// and the queue of ended flows for the cap (see [`crate::memory`]).
    fn reserve(&mut self) {
        let cap = self.cfg.max_flows.max(1);
        self.slab.reserve(cap);
        let _ = self
            .pending
            .try_reserve_exact(cap.saturating_sub(self.pending.len()));
    }

    /// Heap bytes of a full table with this cap: slab entries, index, free list and queue of
    /// ended flows (flows with a VLAN/MPLS/tunnel context add [`FlowTable::context_bytes`]
    /// each).
    pub fn bytes_for(cap: usize) -> usize {
        Slab::<Flow, FixedState>::bytes_for(cap)
            + cap.max(1) * std::mem::size_of::<(u32, EndReason)>()
    }

    /// Heap bytes of the boxed context of one flow with one VLAN tag and no tunnel, as the
    /// allocator lays it out (the box and the tag list, each rounded up to 16 bytes with an
    /// 8-byte header).
    pub const fn context_bytes() -> usize {
        let b = std::mem::size_of::<FlowContext>() + 8;
        b.div_ceil(16) * 16 + 32
    }

    /// The configuration in force.
    pub fn config(&self) -> &FlowConfig {
        &self.cfg
    }

    /// Replace timeouts and caps (e.g. on a config reload). A lower cap takes effect as new
    /// flows arrive; open flows are kept.
    pub fn set_config(&mut self, cfg: FlowConfig) {
        self.timeouts = [
            cfg.tcp_idle_ns,
            cfg.udp_idle_ns,
            cfg.icmp_idle_ns,
            cfg.other_idle_ns,
            cfg.tcp_close_grace_ns,
        ];
        self.next_check_ns = i64::MIN;
        self.cfg = cfg;
        self.reserve();
    }

    /// Counters so far.
    pub fn stats(&self) -> FlowStats {
        let mut s = self.stats.clone();
        s.active = self.slab.len();
        s.fragment_map_evictions = self.frags.evicted;
        s
    }

    /// Newest packet time seen (ns since the epoch), if any packet was seen.
    pub fn now_ns(&self) -> Option<i64> {
        self.started.then_some(self.now_ns)
    }

    /// Flows currently open.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether no flow is open.
    pub fn is_empty(&self) -> bool {
        self.slab.len() == 0
    }

    /// Heap bytes held by the table's flow storage (slab, index, free list), for the
    /// memory-per-flow figure. Contexts of tunnelled/VLAN flows are counted at their boxed size.
    pub fn heap_bytes(&self) -> usize {
        let pending = self.pending.capacity() * std::mem::size_of::<(u32, EndReason)>();
        let ctx = self
            .slab
            .slots()
            .iter()
            .filter(|f| f.list != L_FREE && f.context.is_some())
            .count()
            * std::mem::size_of::<FlowContext>();
        self.slab.heap_bytes() + pending + ctx
    }

    /// Size of one slab entry in bytes.
    pub const fn slab_entry_bytes() -> usize {
        std::mem::size_of::<Flow>()
    }

    /// Next finished record, if any. Call after each [`Self::ingest`] / [`Self::advance_to`].
    #[inline]
    pub fn pop_record(&mut self) -> Option<FlowRecord> {
        if let Some(r) = self.out.pop_front() {
            return Some(r);
        }
        self.make_pending_record()
    }

    /// The record of the oldest ended flow, freeing its slot.
    fn make_pending_record(&mut self) -> Option<FlowRecord> {
        let (idx, reason) = self.pending.pop_front()?;
        let flow = self.slab.get_mut(idx);
        let ctx = flow.context.take();
        let rec = to_record(flow, reason, ctx);
        flow.list = L_FREE;
        self.slab.release(idx);
        Some(rec)
    }

    /// Whether a finished flow record is waiting for [`FlowTable::pop_record`].
    #[inline]
    pub fn has_records(&self) -> bool {
        !self.out.is_empty() || !self.pending.is_empty()
    }

    /// Move packet time forward to `ts_ns` and expire what timed out. Never moves backwards.
    #[inline]
    pub fn advance_to(&mut self, ts_ns: i64) {
        if !self.started {
            self.started = true;
            self.now_ns = ts_ns;
            return;
        }
        if ts_ns <= self.now_ns {
            return;
        }
        self.now_ns = ts_ns;
        if ts_ns >= self.next_check_ns {
            self.expire_lists();
        }
        self.frags.expire(self.now_ns);
    }

    /// Export the flows at the heads of the lists that timed out by now.
    fn expire_lists(&mut self) {
        let mut next = i64::MAX;
        for list in 0..N_LISTS {
            let timeout = self.timeouts[list];
            loop {
                let head = self.lists[list].head;
                if head == NIL {
                    break;
                }
                let flow = self.slab.get(head);
                if self.now_ns.saturating_sub(flow.last_ns()) <= timeout {
                    next = next.min(expiry(flow.last_ns(), timeout));
                    break;
                }
                let reason = if list == L_CLOSING {
                    if flow.close & RST_SEEN != 0 {
                        EndReason::Rst
                    } else {
                        EndReason::Fin
                    }
                } else {
                    EndReason::Idle
                };
                self.export(head, reason);
            }
        }
        self.next_check_ns = next;
    }

    /// A packet at `ts_ns`: time moves on (expiring what timed out) and it is counted, out of
    /// order too if it is older than the newest.
    #[inline]
    fn arrive(&mut self, ts_ns: i64, meta: &PacketMeta) {
        if self.started && ts_ns < self.now_ns {
            self.stats.out_of_order += 1;
        }
        self.advance_to(ts_ns);
        self.stats.packets += 1;
        self.stats.bytes += u64::from(meta.ip_len);
    }

    /// Let a synthetic packet of flow export by without a flow (see
    /// [`FlowConfig::export_flows`]): time moves on and it is counted, and it gets the ports
    /// and flow hash a flow would have given it, with no slot.
    fn pass_by(&mut self, ts_ns: i64, meta: &PacketMeta) -> Ingested {
        self.arrive(ts_ns, meta);
        self.stats.passed_by += 1;
        let (key, _) = FlowKey::from_packet(meta, meta.sport, meta.dport);
        let hash = self.slab.hash(key);
        Ingested {
            sport: meta.sport,
            dport: meta.dport,
            flow_hash: (hash >> 32) as u32,
            slot: u32::MAX,
        }
    }

    /// Count one decoded packet captured at `ts_ns`. Returns the ports the packet was counted
    /// under (later fragments get their first fragment's) and a hash identifying its flow. A
    /// synthetic packet of flow export (one with a sampling rate) passes by without a flow
    /// where nothing reads their records ([`FlowConfig::export_flows`] off): no slot then.
    pub fn ingest(&mut self, ts_ns: i64, meta: &PacketMeta) -> Ingested {
        if meta.sampling > 0 && !self.cfg.export_flows {
            return self.pass_by(ts_ns, meta);
        }
        self.arrive(ts_ns, meta);

        let (sport, dport, later) = match meta.frag {
            Frag::None => (meta.sport, meta.dport, false),
            Frag::First { id } => {
                let fk = frag_key(meta, id);
                self.frags.insert(fk, meta.sport, meta.dport, ts_ns);
                (meta.sport, meta.dport, false)
            }
            Frag::Later { id } => match self.frags.get(&frag_key(meta, id)) {
                Some((s, d)) => {
                    self.stats.fragments_attributed += 1;
                    (s, d, true)
                }
                None => {
                    self.stats.fragments_orphaned += 1;
                    (0, 0, true)
                }
            },
        };
        let (key, lo_to_hi) = FlowKey::from_packet(meta, sport, dport);
        let hash = self.slab.hash(key);
        let idx = match self.slab.find(hash, &key) {
            Some(idx) => {
                let first = self.slab.get(idx).first_ns();
                if ts_ns.saturating_sub(first) >= self.cfg.active_timeout_ns {
                    self.restart_active(idx);
                }
                idx
            }
            None => self.create(key, hash, lo_to_hi, meta),
        };
        self.update(idx, ts_ns, lo_to_hi, meta, later);
        Ingested {
            sport,
            dport,
            flow_hash: (hash >> 32) as u32,
            slot: idx,
        }
    }

    /// A 32-bit value kept with the flow in `slot` (from [`Ingested::slot`]) for the caller, e.g.
    /// a cache of where related state lives; `u32::MAX` for a new flow.
    #[inline]
    pub fn pair_slot_mut(&mut self, slot: u32) -> Option<&mut u32> {
        self.slab.try_get_mut(slot).map(|f| &mut f.pair_slot)
    }

    /// Export every open flow (reason `end_of_input`), oldest first, and reset "now". The
    /// records are made as they are popped.
    pub fn finish(&mut self) {
        let start = self.pending.len();
        for (i, flow) in self.slab.slots().iter().enumerate() {
            if usize::from(flow.list) < N_LISTS {
                self.pending.push_back((i as u32, EndReason::EndOfInput));
            }
        }
        let slab = self.slab.slots();
        self.pending.make_contiguous()[start..].sort_unstable_by_key(|&(i, _)| {
            let f = &slab[i as usize];
            (f.first_ns(), f.key)
        });
        for k in start..self.pending.len() {
            let idx = self.pending[k].0;
            self.end(idx, EndReason::EndOfInput);
        }
        let fk = self.frags.len();
        if fk > 0 {
            self.frags.expire(i64::MAX);
        }
    }

    fn create(&mut self, key: FlowKey, hash: u64, lo_to_hi: bool, meta: &PacketMeta) -> u32 {
        if self.slab.len() >= self.cfg.max_flows.max(1) {
            self.evict_one();
        }
        if !self.slab.has_free_slot() && self.slab.slots_used() >= self.cfg.max_flows.max(1) {
            // Every slot is taken, some by ended flows not yet popped: make the oldest one's
            // record now (it goes out before later ones) and take its slot.
            if let Some(rec) = self.make_pending_record() {
                self.out.push_back(rec);
            }
        }
        // A SYN-ACK seen first makes its receiver the initiator.
        let synack = meta.proto == TCP && meta.tcp_flags & (SYN | ACK) == (SYN | ACK);
        let init_is_lo = lo_to_hi != synack;
        let context = context_of(meta);
        let list = list_for(meta.proto);
        let flow = Flow {
            key,
            init_is_lo,
            list: list as u8,
            close: if meta.icmp.is_some() { ICMP_KNOWN } else { 0 },
            ctx_from_lo: lo_to_hi,
            icmp: meta.icmp.unwrap_or_default(),
            links: Links::default(),
            pair_slot: NIL,
            dirs: [DirStats::default(); 2],
            context,
        };
        let idx = self.slab.insert(hash, flow);
        self.lists[list].push_back(&mut self.slab, idx);
        self.note_head(list);
        self.stats.flows_created += 1;
        idx
    }

    #[inline]
    fn update(&mut self, idx: u32, ts_ns: i64, lo_to_hi: bool, meta: &PacketMeta, later: bool) {
        let flow = self.slab.get_mut(idx);
        let dir = usize::from(!lo_to_hi);
        if meta.tunnel_count > 0 && flow.dirs[dir].packets == 0 && lo_to_hi != flow.ctx_from_lo {
            note_reverse_tunnels(flow, meta);
        }
        flow.dirs[dir].add(ts_ns, meta.ip_len, meta.payload_len, meta.tcp_flags, later);
        let mut list = flow.list as usize;
        if meta.proto == TCP {
            if meta.tcp_flags & FIN != 0 {
                flow.close |= if lo_to_hi { FIN_LO } else { FIN_HI };
            }
            if meta.tcp_flags & RST != 0 {
                flow.close |= RST_SEEN;
            }
            if flow.close & RST_SEEN != 0 || flow.close & (FIN_LO | FIN_HI) == (FIN_LO | FIN_HI) {
                list = L_CLOSING;
            }
        }
        let old = flow.list as usize;
        flow.list = list as u8;
        if old == list {
            let was_head = self.lists[list].head == idx;
            self.lists[list].move_to_back(&mut self.slab, idx);
            if was_head {
                self.note_head(list);
            }
        } else {
            self.lists[old].unlink(&mut self.slab, idx);
            self.lists[list].push_back(&mut self.slab, idx);
            self.note_head(old);
            self.note_head(list);
        }
    }

    /// A list's head may have changed: its expiry lowers the next check if it is earlier.
    #[inline]
    fn note_head(&mut self, list: usize) {
        let head = self.lists[list].head;
        if head != NIL {
            let t = expiry(self.slab.get(head).last_ns(), self.timeouts[list]);
            self.next_check_ns = self.next_check_ns.min(t);
        }
    }

    /// Export the flow at `idx` for the active timeout and start a fresh record in its place.
    fn restart_active(&mut self, idx: u32) {
        // Records go out in the order flows ended: the ended flows before this one first.
        while let Some(rec) = self.make_pending_record() {
            self.out.push_back(rec);
        }
        let flow = self.slab.get_mut(idx);
        let rec = to_record(flow, EndReason::Active, flow.context.clone());
        flow.dirs = [DirStats::default(); 2];
        self.stats.ended[EndReason::Active.index()] += 1;
        self.out.push_back(rec);
    }

    /// Evict the least recently seen flow among all list heads.
    fn evict_one(&mut self) {
        let mut best: Option<(i64, u32)> = None;
        for list in &self.lists {
            if list.head != NIL {
                let last = self.slab.get(list.head).last_ns();
                if best.is_none_or(|(b, _)| last < b) {
                    best = Some((last, list.head));
                }
            }
        }
        if let Some((_, idx)) = best {
            self.export(idx, EndReason::Evicted);
        }
    }

    /// End the flow at `idx`: its record is made when it is popped.
    fn export(&mut self, idx: u32, reason: EndReason) {
        if self.end(idx, reason) {
            self.pending.push_back((idx, reason));
        }
    }

    /// Take the flow at `idx` out of its list and the index and count it as ended (its slot
    /// stays taken until its record is made); `false` if it was not open.
    fn end(&mut self, idx: u32, reason: EndReason) -> bool {
        let list = self.slab.get(idx).list as usize;
        if list >= N_LISTS {
            return false;
        }
        self.lists[list].unlink(&mut self.slab, idx);
        self.note_head(list);
        self.slab.unindex(idx);
        self.slab.get_mut(idx).list = L_PENDING;
        self.stats.ended[reason.index()] += 1;
        true
    }
}

/// First packet time at which a flow last seen at `last_ns` has been idle longer than `timeout`.
#[inline]
fn expiry(last_ns: i64, timeout: i64) -> i64 {
    last_ns.saturating_add(timeout).saturating_add(1)
}

fn list_for(proto: u8) -> usize {
    match proto {
        TCP => L_TCP,
        UDP => L_UDP,
        ICMP | ICMPV6 => L_ICMP,
        _ => L_OTHER,
    }
}

fn frag_key(meta: &PacketMeta, id: u32) -> FragKey {
    FragKey {
        src: addr_bytes(meta.src),
        dst: addr_bytes(meta.dst),
        proto: meta.proto,
        id,
    }
}
