//! One memory budget for the process, split into the caps of the engine's containers.
//!
//! Every capped container (the flow table; the detector's subscribers, (subscriber, endpoint)
//! pairs and endpoints) keeps its entries in a slab with a hash index of slab slots and a free
//! list. Slots and free list are reserved for its cap when it is made; the index grows with the
//! entries up to the size of a reservation for twice the cap (where hashbrown always cleans the
//! tombstones of evicted entries in place instead of doubling the table). What it can cost is a
//! function of its cap alone ([`flow_table_bytes`], [`hosts_bytes`], [`pairs_bytes`],
//! [`endpoints_bytes`]): the entry size, 4 bytes of free list, and that largest index with the
//! half-size one it held while doubling to it. `tests/memory.rs` fills each container to
//! its cap under a counting allocator and checks these figures against what was allocated.
//!
//! [`plan`] takes the budget, the number of workers (flow tables, subscribers and pairs are per
//! worker; endpoints live once, in the scorer) and any caps set explicitly, takes out what the
//! process needs besides the containers ([`PROCESS_BYTES`], [`WORKER_BYTES`], the fragment
//! maps and what the shell adds, e.g. capture buffers), and gives the rest to the containers in
//! the proportion 4 flows : 1 subscriber : 2 pairs : 2 endpoints (the total of each over the
//! workers), as many as fit.
//!
//! ```
//! use burstwatch_engine::memory::{plan, CapOverrides};
//!
//! let p = plan(512 << 20, 2, 65_536, 0, CapOverrides::default()).unwrap();
//! assert!(p.estimated_bytes() <= 512 << 20);
//! assert_eq!(p.caps.max_flows, 2 * p.caps.max_pairs); // per worker: 4 : 2
//! ```

use std::mem::size_of;

use crate::detect::{pair::PairState, prevalence::EndpointState, subscribers::HostState};
use crate::frag::FragMap;
use crate::key::Addr;
use crate::lrumap::LruMap;
use crate::FlowTable;

/// The budget when none is set, in MiB.
pub const DEFAULT_BUDGET_MIB: u64 = 3072;

/// Bytes the process uses whatever the caps: code and libraries, allocator arenas, the read
/// buffers and batches between the reader and the engine, output buffers, the scorer's port
/// table (512 KiB). Measured: `analyze` peaks at 7 MiB on a tiny capture with the smallest
/// tables, and at about 10 MiB besides its tables under a flood.
pub const PROCESS_BYTES: u64 = 16 << 20;

/// Bytes per engine worker thread (with two or more): its stack, the rounds of packets in
/// flight and its event lists.
pub const WORKER_BYTES: u64 = 4 << 20;

/// Entries per unit of the split: flows, subscribers, pairs, endpoints (totals over workers).
const SHARES: [u64; 4] = [4, 1, 2, 2];

/// Fewest units of the split a budget must leave room for (4096 flows, 1024 subscribers, ...).
const MIN_UNITS: u64 = 1024;

/// Caps set explicitly (config keys); each replaces its container's share of the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapOverrides {
    /// Flows per worker.
    pub max_flows: Option<usize>,
    /// Subscribers per worker.
    pub max_hosts: Option<usize>,
    /// Pairs per worker.
    pub max_pairs: Option<usize>,
    /// Endpoints (one table for the process).
    pub max_endpoints: Option<usize>,
}

/// The caps of the containers: flows, subscribers and pairs per worker, endpoints in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Open flows per worker.
    pub max_flows: usize,
    /// Subscribers per worker.
    pub max_hosts: usize,
    /// (Subscriber, endpoint) pairs per worker.
    pub max_pairs: usize,
    /// Endpoints.
    pub max_endpoints: usize,
}

impl Default for Caps {
    /// The caps of the default budget for one worker and the default fragment cap.
    fn default() -> Self {
        match plan(
            DEFAULT_BUDGET_MIB << 20,
            1,
            DEFAULT_FRAGMENTS,
            0,
            CapOverrides::default(),
        ) {
            Ok(p) => p.caps,
            // Unreachable: the default budget is far above the minimum.
            Err(_) => Caps {
                max_flows: 4096,
                max_hosts: 1024,
                max_pairs: 2048,
                max_endpoints: 2048,
            },
        }
    }
}

/// `FlowConfig::default().max_fragments`.
pub(crate) const DEFAULT_FRAGMENTS: usize = 16_384;

/// A budget split into caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The caps.
    pub caps: Caps,
    /// Workers the caps are for.
    pub workers: usize,
    /// The budget, bytes.
    pub budget_bytes: u64,
    /// What the process needs besides the containers, bytes.
    pub fixed_bytes: u64,
    /// The containers, full, bytes.
    pub container_bytes: u64,
}

impl Plan {
    /// Fixed part plus the containers at their caps: at most the budget.
    pub fn estimated_bytes(&self) -> u64 {
        self.fixed_bytes + self.container_bytes
    }
}

/// A budget that cannot be met.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    /// The budget leaves (almost) nothing for the containers.
    #[error(
        "a memory budget of {budget_mib} MiB is too small: {workers} worker(s) need at least \
         {need_mib} MiB ({fixed_mib} MiB besides the flow and detector tables)"
    )]
    TooSmall {
        /// The budget.
        budget_mib: u64,
        /// Workers.
        workers: usize,
        /// The fixed part.
        fixed_mib: u64,
        /// The smallest budget that works.
        need_mib: u64,
    },
    /// The caps set explicitly need more than the budget.
    #[error(
        "the caps set explicitly (max_flows, max_hosts, max_pairs, max_endpoints) need about \
         {need_mib} MiB with {workers} worker(s), more than the memory budget of {budget_mib} \
         MiB: raise memory_budget_mib or lower the caps"
    )]
    Overrides {
        /// The budget.
        budget_mib: u64,
        /// Workers.
        workers: usize,
        /// What the caps need (with the fixed part and the smallest shares of the others).
        need_mib: u64,
    },
}

/// Buckets hashbrown allocates for `capacity` items (an upper bound for small tables).
fn buckets(capacity: usize) -> usize {
    if capacity < 15 {
        16
    } else {
        (capacity.saturating_mul(8) / 7).next_power_of_two()
    }
}

/// Items the index of a container with `cap` entries is reserved for.
pub(crate) fn index_capacity(cap: usize) -> usize {
    cap.max(1).saturating_mul(2)
}

/// Bytes of a hashbrown index reserved for `cap` entries (see [`index_capacity`]) with slots
/// of `slot` bytes: the slots, one control byte per bucket and one group of padding.
pub(crate) fn index_bytes(cap: usize, slot: usize) -> usize {
    table_bytes(buckets(index_capacity(cap)), slot)
}

/// Bytes of the hashbrown index of a slab with at most `cap` entries and slots of `slot` bytes:
/// the index grows as entries arrive (see [`crate::slab`]) to, at its largest, the size of a
/// reservation for [`index_capacity`] items, and holds the half-size array it moves out of
/// while it doubles to that size.
pub(crate) fn grown_index_bytes(cap: usize, slot: usize) -> usize {
    let b = buckets(index_capacity(cap));
    table_bytes(b, slot) + if b > 16 { table_bytes(b / 2, slot) } else { 0 }
}

fn table_bytes(b: usize, slot: usize) -> usize {
    (b * slot).next_multiple_of(16) + b + 16
}

/// Heap bytes of a flow table with this cap, full (flows without VLAN/MPLS/tunnel context;
/// each such context adds [`FlowTable::context_bytes`]).
pub fn flow_table_bytes(cap: usize) -> u64 {
    FlowTable::bytes_for(cap) as u64
}

/// Heap bytes of a subscriber table with this cap, full.
pub fn hosts_bytes(cap: usize) -> u64 {
    LruMap::<Addr, HostState>::bytes_for(cap) as u64
}

/// Heap bytes of a pair table with this cap, full (pairs without a burst in progress; each
/// burst in progress adds a [`crate::detect::pair::BurstAcc`] box).
pub fn pairs_bytes(cap: usize) -> u64 {
    LruMap::<(Addr, Addr), PairState>::bytes_for(cap) as u64
}

/// Heap bytes of an endpoint table with this cap, full, with its table of endpoint prefixes
/// (half as many entries) and of autonomous systems (a sixteenth, at most 65,536).
pub fn endpoints_bytes(cap: usize) -> u64 {
    (LruMap::<Addr, EndpointState>::bytes_for(cap)
        + LruMap::<Addr, EndpointState>::bytes_for(crate::detect::scorer::prefix_cap(cap))
        + LruMap::<u32, EndpointState>::bytes_for(crate::detect::scorer::asn_cap(cap))) as u64
}

/// Heap bytes of a fragment map with this cap, full, with its order queue.
pub fn fragments_bytes(cap: usize) -> u64 {
    FragMap::bytes_for(cap) as u64
}

/// Size of one slab entry of each container, bytes: flows, subscribers, pairs, endpoints
/// (for the documentation; the costs above add the index and the free list).
pub fn entry_sizes() -> [usize; 4] {
    [
        FlowTable::slab_entry_bytes(),
        size_of::<crate::lrumap::Entry<Addr, HostState>>(),
        size_of::<crate::lrumap::Entry<(Addr, Addr), PairState>>(),
        size_of::<crate::lrumap::Entry<Addr, EndpointState>>(),
    ]
}

/// What the process needs besides the containers.
pub fn fixed_bytes(workers: usize, max_fragments: usize, extra_bytes: u64) -> u64 {
    let w = workers.max(1) as u64;
    let threads = if workers > 1 { w } else { 0 };
    PROCESS_BYTES + threads * WORKER_BYTES + w * fragments_bytes(max_fragments) + extra_bytes
}

/// Split `budget_bytes` into caps for `workers` workers, each with a fragment map of
/// `max_fragments`; `extra_bytes` is what the shell needs on top (capture buffers, queues).
/// Caps in `over` are kept as they are and the rest of the budget is shared by the others.
pub fn plan(
    budget_bytes: u64,
    workers: usize,
    max_fragments: usize,
    extra_bytes: u64,
    over: CapOverrides,
) -> Result<Plan, BudgetError> {
    let w = workers.max(1);
    let fixed = fixed_bytes(w, max_fragments, extra_bytes);
    let caps_for = |k: u64| plan_caps(k, w, over);
    let cost = |c: &Caps| {
        (w as u64)
            .saturating_mul(
                flow_table_bytes(c.max_flows)
                    .saturating_add(hosts_bytes(c.max_hosts))
                    .saturating_add(pairs_bytes(c.max_pairs)),
            )
            .saturating_add(endpoints_bytes(c.max_endpoints))
    };
    let mib = |b: u64| b.div_ceil(1 << 20);
    let fits = |k: u64| fixed.saturating_add(cost(&caps_for(k))) <= budget_bytes;
    if !fits(MIN_UNITS) {
        let need = fixed.saturating_add(cost(&caps_for(MIN_UNITS)));
        let any_over = over.max_flows.is_some()
            || over.max_hosts.is_some()
            || over.max_pairs.is_some()
            || over.max_endpoints.is_some();
        let need_bare =
            fixed.saturating_add(cost(&plan_caps(MIN_UNITS, w, CapOverrides::default())));
        return Err(if any_over && need_bare <= budget_bytes {
            BudgetError::Overrides {
                budget_mib: budget_bytes >> 20,
                workers: w,
                need_mib: mib(need),
            }
        } else {
            BudgetError::TooSmall {
                budget_mib: budget_bytes >> 20,
                workers: w,
                fixed_mib: mib(fixed),
                need_mib: mib(need),
            }
        });
    }
    // The largest number of units that fits (cost only grows with it).
    let (mut lo, mut hi) = (MIN_UNITS, budget_bytes / 64 + MIN_UNITS);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let caps = caps_for(lo);
    Ok(Plan {
        caps,
        workers: w,
        budget_bytes,
        fixed_bytes: fixed,
        container_bytes: cost(&caps),
    })
}

/// The caps for `k` units of the split over `w` workers, explicit caps kept.
fn plan_caps(k: u64, w: usize, over: CapOverrides) -> Caps {
    let per_worker = |total: u64| usize::try_from(total.div_ceil(w as u64)).unwrap_or(usize::MAX);
    Caps {
        max_flows: over.max_flows.unwrap_or_else(|| per_worker(SHARES[0] * k)),
        max_hosts: over.max_hosts.unwrap_or_else(|| per_worker(SHARES[1] * k)),
        max_pairs: over.max_pairs.unwrap_or_else(|| per_worker(SHARES[2] * k)),
        max_endpoints: over
            .max_endpoints
            .unwrap_or_else(|| usize::try_from(SHARES[3] * k).unwrap_or(usize::MAX)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: failures should panic
    use super::*;

    #[test]
    fn the_caps_of_a_budget_keep_the_estimate_within_it() {
        for budget_mib in [64_u64, 100, 512, 1024, 3072, 16_384] {
            for workers in [1, 2, 3, 8] {
                let budget = budget_mib << 20;
                let Ok(p) = plan(
                    budget,
                    workers,
                    DEFAULT_FRAGMENTS,
                    0,
                    CapOverrides::default(),
                ) else {
                    assert!(budget_mib < 100, "{budget_mib} MiB, {workers} workers");
                    continue;
                };
                assert!(p.estimated_bytes() <= budget, "{p:?}");
                // Nearly all of it is used: one more unit would not fit.
                let c = p.caps;
                assert!(
                    c.max_flows >= 4096 / workers && c.max_endpoints >= 2048,
                    "{p:?}"
                );
                assert!(
                    p.estimated_bytes() + 4 * flow_table_bytes(1).max(512) * 8 > budget / 2,
                    "{p:?}"
                );
            }
        }
    }

    #[test]
    fn explicit_caps_keep_their_value_and_the_others_share_the_rest() {
        let over = CapOverrides {
            max_flows: Some(100_000),
            ..CapOverrides::default()
        };
        let p = plan(1024 << 20, 2, 65_536, 0, over).unwrap();
        assert_eq!(p.caps.max_flows, 100_000);
        assert!(p.estimated_bytes() <= 1024 << 20);
        let free = plan(1024 << 20, 2, 65_536, 0, CapOverrides::default()).unwrap();
        assert!(p.caps.max_pairs > free.caps.max_pairs);

        let huge = CapOverrides {
            max_flows: Some(50_000_000),
            ..CapOverrides::default()
        };
        let e = plan(1024 << 20, 1, 65_536, 0, huge).unwrap_err();
        assert!(matches!(e, BudgetError::Overrides { .. }), "{e}");
        let e = plan(8 << 20, 1, 65_536, 0, CapOverrides::default()).unwrap_err();
        assert!(matches!(e, BudgetError::TooSmall { .. }), "{e}");
    }

    #[test]
    fn the_default_caps_are_those_of_the_default_budget() {
        let c = Caps::default();
        let p = plan(
            DEFAULT_BUDGET_MIB << 20,
            1,
            DEFAULT_FRAGMENTS,
            0,
            CapOverrides::default(),
        )
        .unwrap();
        assert_eq!(c, p.caps);
        assert_eq!(crate::FlowConfig::default().max_flows, c.max_flows);
        let d = crate::DetectConfig::default();
        assert_eq!(
            (d.max_hosts, d.max_pairs, d.max_endpoints),
            (c.max_hosts, c.max_pairs, c.max_endpoints)
        );
    }
}
