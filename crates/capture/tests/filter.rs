//! BPF filters against counts from `tcpdump -r FILE 'EXPR' | wc -l` (tcpdump 4.99.3 / libpcap
//! 1.10), hard-coded because tcpdump is not present everywhere the tests run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failures should panic

mod common;

use burstwatch_capture::{BpfFilter, CaptureFile};
use common::corpus;

fn matches(rel: &str, expr: &str) -> (u64, u64, u64) {
    let mut filter = BpfFilter::new(expr).unwrap();
    let mut f = CaptureFile::open(&corpus().join(rel)).unwrap();
    let (mut all, mut hits) = (0, 0);
    while let Some(p) = f.next_packet().unwrap() {
        all += 1;
        hits += u64::from(filter.matches(&p));
    }
    (all, hits, filter.unsupported())
}

#[test]
fn counts_match_tcpdump() {
    let cases = [
        (
            "pcapng/rusticata/wireshark_samples-test.pcapng",
            "tcp port 80",
            5898,
            5,
        ),
        (
            "pcapng/rusticata/wireshark_samples-test.pcapng",
            "udp",
            5898,
            3921,
        ),
        ("traffic/http__bro.org.pcap", "tcp port 80", 751, 751),
        ("traffic/http__bro.org.pcap", "udp", 751, 0),
        (
            "traffic/http__bro.org.pcap",
            "tcp[tcpflags] & tcp-syn != 0",
            751,
            26,
        ),
        ("encap/http-vlan-0.pcap", "vlan and tcp", 14, 14),
        ("traffic/pinterest.pcap", "tcp port 443", 911, 911),
        // Linux cooked capture: compiled for its own link type.
        ("linktypes/KakaoTalk_chat.pcap", "tcp port 80", 347, 36),
        ("linktypes/KakaoTalk_chat.pcap", "udp", 347, 36),
    ];
    for (rel, expr, all, want) in cases {
        assert_eq!(matches(rel, expr), (all, want, 0), "{rel} {expr:?}");
    }
}

#[test]
fn link_types_libpcap_cannot_filter_are_counted() {
    // tcpdump: "Linux vsock link-layer type filtering not implemented".
    assert_eq!(
        matches("robustness/tcpdump/vsock-1.pcapng", "udp"),
        (10, 0, 10)
    );
}

#[test]
fn bad_expression_is_refused_with_libpcap_message() {
    let e = BpfFilter::new("tcp port eighty").unwrap_err();
    assert!(e.to_string().contains("tcp port eighty"), "{e}");
    assert!(!e.message.is_empty());
    assert!(BpfFilter::new("tcp and and").is_err());
}
