//! Memory per entry, measured with a counting allocator: each capped container, filled to its
//! cap and beyond (so that it evicts), never holds more heap than the cost the memory budget
//! is split by (`burstwatch_engine::memory`), and that cost is not far above what it holds.
#![allow(clippy::unwrap_used)] // test: a failed unwrap is a failed test

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use burstwatch_engine::memory;
use burstwatch_engine::{DetectConfig, Detector, FlowConfig, FlowTable};
use burstwatch_wire::PacketMeta;

/// Counts live heap bytes of this test process, and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator and only adds bookkeeping.
#[allow(unsafe_code)] // a global allocator is the only way to measure heap use exactly
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The allocator counts the whole process: one measuring test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Peak heap bytes above the start while `f` runs (whatever it returns is dropped after).
fn peak_of<T>(f: impl FnOnce() -> T) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let kept = f();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    drop(kept);
    peak
}

/// Small allocations besides the tables: event lists, a record or two in flight.
const SLACK: usize = 64 << 10;

fn udp(src: IpAddr, dst: IpAddr, sport: u16) -> PacketMeta {
    PacketMeta {
        src,
        dst,
        proto: 17,
        sport,
        dport: 443,
        ip_len: 1200,
        payload_len: 1172,
        ..PacketMeta::default()
    }
}

fn ext(i: u32) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        0,
        0,
        0,
        0,
        (i >> 16) as u16,
        i as u16,
    ))
}

fn home(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))
}

fn check(name: &str, cap: usize, measured: usize, cost: u64, others: u64) {
    let cost = cost as usize;
    eprintln!(
        "{name}: cap {cap}: peak {measured} heap bytes, cost {cost} + {others} others \
         ({:.1} bytes per entry measured, {:.1} counted)",
        measured.saturating_sub(others as usize) as f64 / cap as f64,
        cost as f64 / cap as f64,
    );
    assert!(
        measured <= cost + others as usize + SLACK,
        "{name}: {measured} bytes measured, more than the {cost} (+ {others}) counted"
    );
    assert!(
        (measured as f64) >= 0.9 * (cost + others as usize) as f64,
        "{name}: {measured} bytes measured, far below the {cost} (+ {others}) counted"
    );
}

#[test]
fn one_million_flows_fit_in_200_bytes_each() {
    const N: u32 = 1_000_000;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let before = LIVE.load(Ordering::Relaxed);
    let cfg = FlowConfig {
        max_flows: N as usize,
        ..FlowConfig::default()
    };
    let mut table = FlowTable::new(cfg, 11);
    let mut meta = udp(home(0), ext(0), 0);
    for i in 0..N {
        meta.src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i >> 8)));
        meta.dst = IpAddr::V4(Ipv4Addr::from(0xc612_0000 | (i & 0xff)));
        meta.sport = (i % 50_000) as u16 + 10_000;
        table.ingest(1_000_000_000 + i64::from(i), &meta);
    }
    assert_eq!(table.len(), N as usize);
    assert!(table.pop_record().is_none());
    let used = LIVE.load(Ordering::Relaxed) - before;
    let per_flow = used as f64 / f64::from(N);
    eprintln!(
        "{N} flows: {used} heap bytes, {per_flow:.1} bytes per flow (slab entry {} bytes)",
        FlowTable::slab_entry_bytes()
    );
    assert!(per_flow <= 200.0, "{per_flow:.1} bytes per flow");
}

/// Every container, one after the other (the allocator counts the whole process, so they
/// must not run at once): filled to twice its cap, the others kept at a small cap.
#[test]
fn each_container_stays_within_the_cost_the_budget_counts() {
    const N: u32 = 200_000;
    const SMALL: usize = 16;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = N as usize;

    // Flows: a fresh source port per packet, twice the cap (half of them evicted).
    let peak = peak_of(|| {
        let cfg = FlowConfig {
            max_flows: n,
            ..FlowConfig::default()
        };
        let mut table = FlowTable::new(cfg, 3);
        for i in 0..2 * N {
            let meta = udp(home(1), ext(i), (i % 60_000) as u16);
            table.ingest(1_000_000_000 + i64::from(i) * 1000, &meta);
            while table.pop_record().is_some() {}
        }
        assert_eq!(table.len(), n);
        table
    });
    let frags = memory::fragments_bytes(FlowConfig::default().max_fragments);
    check("flows", n, peak, memory::flow_table_bytes(n), frags);

    let detector = |hosts: usize, pairs: usize, endpoints: usize| {
        Detector::new(
            DetectConfig {
                max_hosts: hosts,
                max_pairs: pairs,
                max_endpoints: endpoints,
                ..DetectConfig::default()
            },
            5,
        )
    };
    // The scorer's port-usage table: 2 x 65536 counters.
    let ports = 2 * 65_536 * 4;
    let small = |h: bool, p: bool, e: bool| {
        let mut b = ports;
        if h {
            b += memory::hosts_bytes(SMALL);
        }
        if p {
            b += memory::pairs_bytes(SMALL);
        }
        if e {
            b += memory::endpoints_bytes(SMALL);
        }
        b
    };
    let feed = |d: &mut Detector, src: IpAddr, dst: IpAddr, i: u32| {
        d.ingest(
            1_000_000_000 + i64::from(i) * 1000,
            src,
            dst,
            40_000,
            443,
            6,
            1200,
            i,
        );
        while d.pop_alert().is_some() {}
    };

    // Pairs: one subscriber, endpoints never seen before.
    let peak = peak_of(|| {
        let mut d = detector(SMALL, n, SMALL);
        for i in 0..2 * N {
            feed(&mut d, home(1), ext(i), i);
        }
        assert_eq!(d.stats().pairs, n);
        d
    });
    check(
        "pairs",
        n,
        peak,
        memory::pairs_bytes(n),
        small(true, false, true),
    );

    // Subscribers: as many as the cap twice over, each to the same endpoint.
    let peak = peak_of(|| {
        let mut d = detector(n, SMALL, SMALL);
        for i in 0..2 * N {
            feed(&mut d, home(i), ext(0), i);
        }
        assert_eq!(d.stats().hosts, n);
        d
    });
    check(
        "hosts",
        n,
        peak,
        memory::hosts_bytes(n),
        small(false, true, true),
    );

    // Endpoints: one subscriber, endpoints never seen before (pairs kept small).
    let peak = peak_of(|| {
        let mut d = detector(SMALL, SMALL, n);
        for i in 0..2 * N {
            feed(&mut d, home(1), ext(i), i);
        }
        assert_eq!(d.stats().endpoints, n);
        d
    });
    check(
        "endpoints",
        n,
        peak,
        memory::endpoints_bytes(n),
        small(true, true, false),
    );
    eprintln!(
        "slab entry sizes (flows, hosts, pairs, endpoints): {:?}",
        memory::entry_sizes()
    );
}
