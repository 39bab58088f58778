//! Memory per active flow, measured with a counting allocator: at most 200 bytes per flow with
//! one million open flows.
#![allow(clippy::unwrap_used)] // test: a failed unwrap is a failed test

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use burstwatch_engine::{FlowConfig, FlowTable};
use burstwatch_wire::PacketMeta;

/// Counts live heap bytes of this test process.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator and only adds bookkeeping.
#[allow(unsafe_code)] // a global allocator is the only way to measure heap use exactly
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
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

#[test]
fn one_million_flows_fit_in_200_bytes_each() {
    const N: u32 = 1_000_000;
    let before = LIVE.load(Ordering::Relaxed);
    let mut table = FlowTable::new(FlowConfig::default(), 11);
    let mut meta = PacketMeta {
        proto: 17,
        dport: 443,
        ip_len: 1200,
        payload_len: 1172,
        ..PacketMeta::default()
    };
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
