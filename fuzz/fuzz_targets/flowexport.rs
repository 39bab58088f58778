//! Fuzz the flow-export collector: the first byte picks the entry point (even: a datagram to
//! `Collector::push`, its protocol detected from its own first bytes; odd: a captured frame to
//! `udp_datagram`, link type from the second byte), the rest is the input.
#![no_main]

use std::net::SocketAddr;

use burstwatch_flowexport::{udp_datagram, Collector, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector % 2 == 1 {
        if let Some((&link, frame)) = rest.split_first() {
            if let Some(d) = udp_datagram(u32::from(link), frame) {
                assert!(d.payload.len() <= frame.len());
            }
        }
        return;
    }
    let cfg = Config {
        max_bin_entries: 4096,
        ..Config::default()
    };
    let Ok(mut c) = Collector::new(cfg) else {
        return;
    };
    let from = SocketAddr::from(([192, 0, 2, 1], 2055));
    // Twice: the second pass meets whatever templates the first one defined.
    c.push(1_000_000_000_000, from, rest);
    c.push(1_001_000_000_000, from, rest);
    assert!(c.held_bins() <= 4096);
    c.finish();
    while c.pop().is_some() {}
});
