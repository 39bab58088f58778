//! Fuzz the flow-export collector: the first byte picks the entry point (even: a datagram to
//! `Collector::push`, its protocol detected from its own first bytes; odd: a captured frame to
//! `udp_datagram`, link type from the second byte), the rest is the input. With the selector's
//! bit 1 set, a datagram's collector first restores a saved template from the input (its
//! length in the next byte, then its encoding) under every kind, id 256 and domain 0 of the
//! exporter: damaged or hostile saved templates met by data. With bit 2 set, the input is
//! two datagrams, so that data without templates meets IPFIX layouts confirmed by the first.
#![no_main]

use std::net::SocketAddr;

use burstwatch_flowexport::{udp_datagram, Collector, Config, SavedTemplate, TemplateStash};
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
    let stash = TemplateStash::new();
    let rest = if selector & 2 != 0 {
        let Some((&n, more)) = rest.split_first() else {
            return;
        };
        let (wire, datagram) = more.split_at(usize::from(n).min(more.len()));
        let hex: String = wire.iter().map(|b| format!("{b:02x}")).collect();
        let saved = [
            ("ipfix", "ipfix_data"),
            ("ipfix", "ipfix_options"),
            ("ipfix", "ipfix_v9_data"),
            ("ipfix", "ipfix_v9_options"),
            ("v9", "v9_data"),
            ("v9", "v9_options"),
        ]
        .map(|(scope, kind)| SavedTemplate {
            scope: format!("{scope}:192.0.2.1:2055/0"),
            kind: kind.into(),
            id: 256,
            wire: hex.clone(),
        });
        stash.restore(saved.to_vec());
        datagram
    } else {
        rest
    };
    let Ok(mut c) = Collector::with_templates(cfg, stash) else {
        return;
    };
    let from = SocketAddr::from(([192, 0, 2, 1], 2055));
    // With bit 2 of the selector, the input is two datagrams (the first one's length in the
    // next two bytes): the second, sent twice, meets the templates the first defined and,
    // without templates of its own, the IPFIX layouts the first confirmed. Otherwise the
    // input is one datagram, sent twice: the second pass meets the templates of the first.
    let (first, second) = match rest {
        [hi, lo, more @ ..] if selector & 4 != 0 => {
            more.split_at(usize::from(u16::from_be_bytes([*hi, *lo])).min(more.len()))
        }
        _ => (rest, rest),
    };
    c.push(1_000_000_000_000, from, first);
    c.push(1_001_000_000_000, from, second);
    c.push(1_002_000_000_000, from, second);
    assert!(c.held_bins() <= 4096);
    c.finish();
    while c.pop().is_some() {}
});
