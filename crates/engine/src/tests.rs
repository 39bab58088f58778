//! Scenario tests of the flow table on a virtual clock.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use burstwatch_wire::{Frag, PacketMeta};

use crate::{EndReason, FlowConfig, FlowRecord, FlowTable, NS_PER_SEC};

const S: i64 = NS_PER_SEC;

fn pkt(src: &str, sport: u16, dst: &str, dport: u16, proto: u8, flags: u8, len: u32) -> PacketMeta {
    PacketMeta {
        src: src.parse::<IpAddr>().unwrap(),
        dst: dst.parse::<IpAddr>().unwrap(),
        proto,
        sport,
        dport,
        ip_len: len,
        payload_len: len.saturating_sub(40),
        tcp_flags: flags,
        ..PacketMeta::default()
    }
}

fn drain(t: &mut FlowTable) -> Vec<FlowRecord> {
    std::iter::from_fn(|| t.pop_record()).collect()
}

fn table() -> FlowTable {
    FlowTable::new(FlowConfig::default(), 7)
}

#[test]
fn handshake_and_fin_close_with_grace() {
    let mut t = table();
    let c = "10.0.0.2";
    let s = "192.0.2.10";
    t.ingest(S, &pkt(c, 40000, s, 443, 6, 0x02, 60));
    t.ingest(S + 1, &pkt(s, 443, c, 40000, 6, 0x12, 60));
    t.ingest(S + 2, &pkt(c, 40000, s, 443, 6, 0x10, 52));
    t.ingest(2 * S, &pkt(c, 40000, s, 443, 6, 0x11, 52));
    t.ingest(2 * S + 1, &pkt(s, 443, c, 40000, 6, 0x11, 52));
    // The last ACK arrives within the close grace and still joins the flow.
    t.ingest(3 * S, &pkt(c, 40000, s, 443, 6, 0x10, 52));
    assert!(drain(&mut t).is_empty());
    t.advance_to(9 * S);
    let recs = drain(&mut t);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.end_reason, EndReason::Fin);
    assert_eq!(r.src, c.parse::<IpAddr>().unwrap());
    assert_eq!((r.sport, r.dport), (40000, 443));
    assert_eq!((r.fwd.packets, r.rev.packets), (4, 2));
    assert_eq!((r.fwd.bytes, r.rev.bytes), (60 + 52 * 3, 112));
    assert_eq!(r.fwd.tcp_flags, 0x13);
    assert_eq!(r.first_ns(), S);
    assert_eq!(r.last_ns(), 3 * S);
}

#[test]
fn synack_seen_first_makes_its_receiver_the_initiator() {
    let mut t = table();
    t.ingest(S, &pkt("192.0.2.10", 443, "10.0.0.2", 40000, 6, 0x12, 60));
    t.ingest(
        S + 5,
        &pkt("10.0.0.2", 40000, "192.0.2.10", 443, 6, 0x10, 52),
    );
    t.finish();
    let r = t.pop_record().unwrap();
    assert_eq!(r.src, "10.0.0.2".parse::<IpAddr>().unwrap());
    assert_eq!(r.dport, 443);
    assert_eq!((r.fwd.packets, r.rev.packets), (1, 1));
    assert_eq!(r.end_reason, EndReason::EndOfInput);
}

#[test]
fn first_sender_is_initiator_for_udp() {
    let mut t = table();
    t.ingest(S, &pkt("198.51.100.1", 53, "10.1.1.1", 5353, 17, 0, 100));
    t.finish();
    let r = t.pop_record().unwrap();
    assert_eq!(r.src, "198.51.100.1".parse::<IpAddr>().unwrap());
    assert_eq!(r.sport, 53);
}

#[test]
fn rst_closes_after_grace() {
    let mut t = table();
    t.ingest(S, &pkt("10.0.0.2", 1, "192.0.2.1", 80, 6, 0x02, 60));
    t.ingest(S + 1, &pkt("192.0.2.1", 80, "10.0.0.2", 1, 6, 0x14, 40));
    t.advance_to(S + 5 * S);
    assert!(t.pop_record().is_none(), "still within the grace");
    t.advance_to(S + 5 * S + 2);
    assert_eq!(t.pop_record().unwrap().end_reason, EndReason::Rst);
}

#[test]
fn idle_timeouts_differ_per_protocol() {
    let mut t = table();
    t.ingest(0, &pkt("10.0.0.1", 1, "192.0.2.1", 2, 17, 0, 40));
    t.ingest(0, &pkt("10.0.0.1", 1, "192.0.2.1", 2, 6, 0x10, 40));
    t.ingest(0, &pkt("10.0.0.1", 0, "192.0.2.1", 0, 1, 0, 40));
    t.advance_to(61 * S);
    let mut got: Vec<u8> = drain(&mut t).iter().map(|r| r.proto).collect();
    got.sort();
    assert_eq!(got, [1, 17]);
    t.advance_to(301 * S);
    let r = drain(&mut t);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].proto, r[0].end_reason), (6, EndReason::Idle));
}

#[test]
fn active_timeout_cuts_long_flows_without_losing_packets() {
    let mut t = table();
    let mut total = 0;
    for i in 0..4000 {
        t.ingest(i * S, &pkt("10.0.0.1", 5, "192.0.2.1", 6, 17, 0, 100));
        total += 1;
    }
    t.finish();
    let recs = drain(&mut t);
    let reasons: Vec<_> = recs.iter().map(|r| r.end_reason).collect();
    assert_eq!(
        reasons,
        [EndReason::Active, EndReason::Active, EndReason::EndOfInput]
    );
    assert_eq!(recs.iter().map(|r| r.packets()).sum::<u64>(), total);
    assert_eq!(recs[0].packets(), 1800);
    assert_eq!(recs[1].first_ns(), 1800 * S);
}

#[test]
fn cap_evicts_least_recently_seen() {
    let cfg = FlowConfig {
        max_flows: 3,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::new(cfg, 1);
    for port in 1..=3u16 {
        t.ingest(
            i64::from(port),
            &pkt("10.0.0.1", port, "192.0.2.1", 80, 17, 0, 40),
        );
    }
    // Touch flow 1 so flow 2 becomes the least recently seen.
    t.ingest(10, &pkt("10.0.0.1", 1, "192.0.2.1", 80, 17, 0, 40));
    t.ingest(11, &pkt("10.0.0.1", 4, "192.0.2.1", 80, 17, 0, 40));
    let r = drain(&mut t);
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].sport, r[0].end_reason), (2, EndReason::Evicted));
    assert_eq!(t.len(), 3);
    assert_eq!(t.stats().ended[EndReason::Evicted.index()], 1);
}

#[test]
fn later_fragments_join_their_flow() {
    let mut t = table();
    let mut first = pkt("10.0.0.1", 5000, "192.0.2.1", 53, 17, 0, 1500);
    first.frag = Frag::First { id: 77 };
    let mut later = pkt("10.0.0.1", 0, "192.0.2.1", 0, 17, 0, 500);
    later.frag = Frag::Later { id: 77 };
    let mut orphan = later.clone();
    orphan.frag = Frag::Later { id: 78 };
    t.ingest(S, &first);
    t.ingest(S + 1, &later);
    t.ingest(S + 2, &orphan);
    t.finish();
    let recs = drain(&mut t);
    assert_eq!(recs.len(), 2);
    let main = recs.iter().find(|r| r.dport == 53).unwrap();
    assert_eq!(
        (main.fwd.packets, main.fwd.fragments, main.fwd.bytes),
        (2, 1, 2000)
    );
    let st = t.stats();
    assert_eq!((st.fragments_attributed, st.fragments_orphaned), (1, 1));
}

#[test]
fn every_packet_lands_in_exactly_one_record() {
    let mut t = FlowTable::new(
        FlowConfig {
            max_flows: 50,
            ..FlowConfig::default()
        },
        3,
    );
    let mut n = 0u64;
    for i in 0..10_000i64 {
        let port = (i * 7919 % 200) as u16;
        let flags = if i % 97 == 0 { 0x04 } else { 0x10 };
        t.ingest(
            i * S / 10,
            &pkt("10.0.0.1", port, "192.0.2.1", 443, 6, flags, 52),
        );
        n += 1;
    }
    t.finish();
    let recs = drain(&mut t);
    assert_eq!(recs.iter().map(|r| r.packets()).sum::<u64>(), n);
    assert!(t.is_empty());
    let st = t.stats();
    assert_eq!(st.ended.iter().sum::<u64>(), recs.len() as u64);
    assert_eq!(
        st.flows_created,
        recs.len() as u64 - st.ended[EndReason::Active.index()]
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn arb_packet() -> impl Strategy<Value = (i64, PacketMeta)> {
        (
            0i64..4_000,
            0u8..6,
            0u8..6,
            prop_oneof![Just(6u8), Just(17u8), Just(1u8), Just(132u8)],
            0u16..4,
            0u16..4,
            any::<u8>(),
            20u32..1500,
            0u8..4,
        )
            .prop_map(|(t, a, b, proto, sp, dp, flags, len, frag)| {
                let mut m = pkt(
                    &format!("10.0.0.{a}"),
                    sp,
                    &format!("192.0.2.{b}"),
                    dp,
                    proto,
                    flags,
                    len,
                );
                m.frag = match frag {
                    1 => Frag::First { id: u32::from(sp) },
                    2 => Frag::Later { id: u32::from(sp) },
                    _ => Frag::None,
                };
                (t * S / 10, m)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever arrives, in whatever time order: the table stays within its cap, and every
        /// packet and byte ends up in exactly one record.
        #[test]
        fn state_stays_within_caps_and_nothing_is_lost(
            mut pkts in proptest::collection::vec(arb_packet(), 1..400),
            cap in 1usize..20,
            frag_cap in 1usize..8,
            sorted in any::<bool>(),
        ) {
            if sorted {
                pkts.sort_by_key(|p| p.0);
            }
            let cfg = FlowConfig {
                max_flows: cap,
                max_fragments: frag_cap,
                udp_idle_ns: 10 * S,
                active_timeout_ns: 100 * S,
                ..FlowConfig::default()
            };
            let mut t = FlowTable::new(cfg, 9);
            let mut recs = Vec::new();
            for (ts, m) in &pkts {
                t.ingest(*ts, m);
                prop_assert!(t.len() <= cap);
                recs.extend(std::iter::from_fn(|| t.pop_record()));
            }
            t.finish();
            recs.extend(std::iter::from_fn(|| t.pop_record()));
            prop_assert!(t.is_empty());
            prop_assert_eq!(recs.iter().map(|r| r.packets()).sum::<u64>(), pkts.len() as u64);
            let bytes: u64 = pkts.iter().map(|(_, m)| u64::from(m.ip_len)).sum();
            prop_assert_eq!(recs.iter().map(|r| r.bytes()).sum::<u64>(), bytes);
            for r in &recs {
                prop_assert!(r.first_ns() <= r.last_ns());
                prop_assert!(r.packets() > 0);
            }
            let st = t.stats();
            prop_assert_eq!(st.ended.iter().sum::<u64>(), recs.len() as u64);
        }
    }
}

#[test]
fn records_carry_what_their_community_id_needs() {
    let mut t = table();
    let (a, b) = ("192.168.0.89", "192.168.0.1");
    // An echo request and its reply: one flow, the request's type and code.
    let echo = |src, dst, icmp| PacketMeta {
        icmp: Some(icmp),
        ..pkt(src, 0, dst, 0, 1, 0, 84)
    };
    t.ingest(S, &echo(a, b, [8, 0]));
    t.ingest(S + 1, &echo(b, a, [0, 0]));
    // TCP from the responder's side first (a SYN-ACK): the initiator is the other side.
    t.ingest(
        S + 2,
        &pkt("66.35.250.204", 80, "128.232.110.120", 34855, 6, 0x12, 60),
    );
    // An ICMP packet cut before its code: no ports to hash.
    t.ingest(S + 3, &pkt("10.1.12.1", 0, "10.1.12.2", 0, 1, 0, 21));
    t.finish();
    let recs = drain(&mut t);
    let ids: Vec<_> = recs
        .iter()
        .map(|r| (r.icmp, r.community_id(0, r.src, r.dst).unwrap()))
        .collect();
    // The specification's values for these flows.
    assert_eq!(
        ids,
        [
            (Some([8, 0]), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=".to_string()),
            (None, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=".to_string()),
            (
                None,
                crate::community_id::community_id(
                    0,
                    "10.1.12.1".parse().unwrap(),
                    "10.1.12.2".parse().unwrap(),
                    1,
                    None
                )
                .unwrap()
            ),
        ]
    );
}

/// Flow export's synthetic packets (with a sampling rate) pass the table by where no flow
/// records are read, with the ports and flow hash a flow gives them; captured packets still
/// make flows. Every caller (the engine and each shard) gets this from `ingest`.
#[test]
fn export_packets_pass_by_without_a_flow_where_no_records_are_read() {
    let sampled = PacketMeta {
        sampling: 100,
        ..pkt("10.0.0.2", 40000, "192.0.2.10", 443, 6, 0x18, 1500)
    };
    let captured = pkt("10.0.0.3", 40001, "192.0.2.10", 443, 17, 0, 200);
    let with = |export_flows| {
        FlowTable::new(
            FlowConfig {
                export_flows,
                ..FlowConfig::default()
            },
            7,
        )
    };
    let (mut on, mut off) = (with(true), with(false));
    let (a, b) = (on.ingest(S, &sampled), off.ingest(S, &sampled));
    assert_eq!(
        (a.sport, a.dport, a.flow_hash),
        (b.sport, b.dport, b.flow_hash)
    );
    assert_ne!(a.slot, u32::MAX);
    assert_eq!(b.slot, u32::MAX, "no flow, no slot");
    assert!(off.pair_slot_mut(b.slot).is_none());
    off.ingest(2 * S, &captured);
    on.ingest(2 * S, &captured);
    let (son, soff) = (on.stats(), off.stats());
    assert_eq!((son.flows_created, son.passed_by), (2, 0));
    assert_eq!((soff.flows_created, soff.passed_by), (1, 1));
    assert_eq!((soff.packets, soff.bytes), (son.packets, son.bytes));
    on.finish();
    off.finish();
    assert_eq!(drain(&mut on).len(), 2);
    let recs = drain(&mut off);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].packets(), 1);
}
