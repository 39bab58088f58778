//! Collector tests on literal datagrams and on datagrams of the simulator's encoders.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use burstwatch_sim::export::encode::{self, Header, PacketSample, Record};
use burstwatch_wire::PacketMeta;

use super::*;

const T0: i64 = 1_767_225_600 * NS_PER_SEC;

fn exporter() -> SocketAddr {
    "192.0.2.250:50000".parse().unwrap()
}

fn drain(c: &mut Collector) -> Vec<Bin> {
    c.finish();
    std::iter::from_fn(|| c.pop()).collect()
}

fn rec(src: IpAddr, dst: IpAddr, bytes: u64, start_s: i64, end_s: i64) -> Record {
    Record {
        src,
        dst,
        proto: 6,
        sport: 40000,
        dport: 443,
        bytes,
        packets: bytes / 1000,
        start_ns: T0 + start_s * NS_PER_SEC,
        end_ns: T0 + end_s * NS_PER_SEC,
    }
}

fn header(export_s: i64, sampling: u32) -> Header {
    Header {
        export_ns: T0 + export_s * NS_PER_SEC,
        boot_ns: T0 - 3_600 * NS_PER_SEC,
        sequence: 0,
        domain: 1,
        sampling,
    }
}

fn v4(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
}

fn ext() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1))
}

#[test]
fn kinds_are_told_apart() {
    assert_eq!(Kind::detect(&[0, 0, 0, 5, 0, 0, 0, 1]), Kind::Sflow);
    assert_eq!(Kind::detect(&[0, 5, 0, 1]), Kind::NetflowV5);
    assert_eq!(Kind::detect(&[0, 9, 0, 1]), Kind::NetflowV9);
    assert_eq!(Kind::detect(&[0, 10, 0, 16]), Kind::Ipfix);
    assert_eq!(Kind::detect(&[0, 6]), Kind::Unknown);
    assert_eq!(Kind::detect(&[]), Kind::Unknown);
}

/// A NetFlow v5 datagram written out byte by byte: one record of 3000 bytes, 3 packets,
/// from uptime 100 000 ms to 104 000 ms, exported at uptime 110 000 ms, 1:100 sampling
/// (mode bits 01 in the top of the interval field: 0x4064).
#[test]
fn netflow5_literal_record_is_prorated_and_scaled() {
    #[rustfmt::skip]
    let dgram: [u8; 72] = [
        0, 5, 0, 1,                 // version 5, 1 record
        0, 1, 0xad, 0xb0,           // sysUptime 110 000 ms
        0x69, 0x55, 0xb8, 0x00,     // unix secs 1 767 225 344
        0, 0, 0, 0,                 // unix nsecs
        0, 0, 0, 0,                 // sequence
        0, 0, 0x40, 0x64,           // engine type/id, sampling mode 1, interval 100
        10, 0, 0, 1,  198, 19, 0, 1,  0, 0, 0, 0,   // src, dst, next hop
        0, 1, 0, 2,                 // input, output
        0, 0, 0, 3,  0, 0, 0x0b, 0xb8,              // 3 packets, 3000 bytes
        0, 1, 0x86, 0xa0,  0, 1, 0x96, 0x40,        // first 100 000, last 104 000
        0x9c, 0x40, 0x01, 0xbb,     // ports 40000 → 443
        0, 0x18, 6, 0,              // pad, flags, proto TCP, tos
        0, 0, 0, 0,  0, 0, 0, 0,    // AS numbers, masks, pad
    ];
    let mut c = Collector::new(Config::default()).unwrap();
    assert_eq!(c.push(T0, exporter(), &dgram), Kind::NetflowV5);
    let bins = drain(&mut c);
    // 10 s to 6 s before arrival: 4 s of span, 300 000 bytes after 1:100.
    assert_eq!(bins.first().unwrap().second, T0 / NS_PER_SEC - 10);
    // The span ends exactly at the start of second -6, which gets nothing.
    assert_eq!(bins.last().unwrap().second, T0 / NS_PER_SEC - 7);
    assert_eq!(bins.iter().map(|b| b.volume.bytes).sum::<u64>(), 300_000);
    assert_eq!(bins.iter().map(|b| b.volume.packets).sum::<u64>(), 300);
    assert!(bins
        .iter()
        .all(|b| b.volume.rate == 100 && b.key.dport == 443));
    let t = c.total();
    assert_eq!((t.netflow5, t.records, t.last_rate), (1, 1, 100));
}

#[test]
fn configured_rate_wins_and_zero_is_refused() {
    let mut cfg = Config::default();
    cfg.exporter_rates.insert(exporter().ip(), 7);
    let mut c = Collector::new(cfg).unwrap();
    let mut d = Vec::new();
    encode::netflow5(&header(10, 100), &[rec(v4(1), ext(), 1000, 0, 0)], &mut d);
    c.push(T0 + 10 * NS_PER_SEC, exporter(), &d);
    assert_eq!(drain(&mut c)[0].volume.bytes, 7000);
    let bad = Config {
        default_rate: 0,
        ..Config::default()
    };
    assert!(matches!(Collector::new(bad), Err(ConfigError::ZeroRate)));
}

fn roundtrip(format: &str, sampling: u32) {
    let recs = [
        rec(v4(1), ext(), 45_000, 0, 9),
        rec(v4(2), ext(), 7_000, 3, 3),
        rec(
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            20_000,
            1,
            5,
        ),
    ];
    let mut d = Vec::new();
    let h = header(10, sampling);
    match format {
        "v9" => encode::netflow9(&h, &recs, true, &mut d),
        _ => encode::ipfix(&h, &recs, true, &mut d),
    }
    let mut c = Collector::new(Config::default()).unwrap();
    c.push(T0 + 10 * NS_PER_SEC, exporter(), &d);
    let bins = drain(&mut c);
    let total: u64 = bins.iter().map(|b| b.volume.bytes).sum();
    assert_eq!(total, 72_000 * u64::from(sampling), "{format}");
    let t = c.total();
    assert_eq!((t.records, t.parse_errors, t.template_misses), (3, 0, 0));
    assert_eq!(t.last_rate, sampling);
    // The first record spans 9 s from second 0, prorated: 5 000 per second.
    let first: Vec<&Bin> = bins.iter().filter(|b| b.key.src == v4(1)).collect();
    assert_eq!(first.len(), 9, "{format}: {first:?}");
    assert_eq!(first[0].second, T0 / NS_PER_SEC);
    assert!(first
        .iter()
        .all(|b| b.volume.bytes == 5_000 * u64::from(sampling)));
    let v6: u64 = bins
        .iter()
        .filter(|b| b.key.src.is_ipv6())
        .map(|b| b.volume.bytes)
        .sum();
    assert_eq!(v6, 20_000 * u64::from(sampling));
}

#[test]
fn netflow9_templates_data_and_options_sampling() {
    roundtrip("v9", 1);
    roundtrip("v9", 1000);
}

#[test]
fn ipfix_templates_data_and_options_sampling() {
    roundtrip("ipfix", 1);
    roundtrip("ipfix", 100);
}

#[test]
fn data_before_template_is_held_and_counted_and_exporters_are_scoped() {
    let recs = [rec(v4(1), ext(), 9_000, 0, 2)];
    let (mut with, mut without) = (Vec::new(), Vec::new());
    encode::ipfix(&header(5, 1), &recs, true, &mut with);
    encode::ipfix(&header(5, 1), &recs, false, &mut without);
    let other: SocketAddr = "192.0.2.249:50000".parse().unwrap();
    let mut c = Collector::new(Config::default()).unwrap();
    c.push(T0 + 5 * NS_PER_SEC, other, &with);
    // Same template id from another exporter: its cache is its own.
    c.push(T0 + 5 * NS_PER_SEC, exporter(), &without);
    let miss = c
        .exporters()
        .into_iter()
        .find(|(a, _)| *a == exporter().ip());
    assert_eq!(miss.unwrap().1.template_misses, 1);
    assert_eq!(miss.unwrap().1.records, 0);
    // The template arrives: the held set is replayed.
    c.push(T0 + 6 * NS_PER_SEC, exporter(), &with);
    let per: Vec<(IpAddr, u64)> = c.exporters().iter().map(|(a, s)| (*a, s.records)).collect();
    assert_eq!(per, vec![(other.ip(), 1), (exporter().ip(), 2)]);
    assert_eq!(c.template_sources(), 2);
}

/// One datagram of two records (13,000 bytes) of `format` ("v9" or "ipfix"), with its
/// templates and without them.
fn with_and_without_templates(format: &str) -> (Vec<u8>, Vec<u8>) {
    let recs = [
        rec(v4(1), ext(), 9_000, 0, 2),
        rec(v4(2), ext(), 4_000, 1, 1),
    ];
    let enc = |templates: bool| {
        let mut out = Vec::new();
        match format {
            "v9" => encode::netflow9(&header(5, 1), &recs, templates, &mut out),
            _ => encode::ipfix(&header(5, 1), &recs, templates, &mut out),
        }
        out
    };
    (enc(true), enc(false))
}

#[test]
fn templates_kept_in_a_stash_decode_data_after_a_restart() {
    for format in ["v9", "ipfix"] {
        let (with, without) = with_and_without_templates(format);
        // Before the restart: the exporter's templates reach the stash.
        let stash = TemplateStash::new();
        let mut before = Collector::with_templates(Config::default(), stash.clone()).unwrap();
        before.push(T0 + 5 * NS_PER_SEC, exporter(), &with);
        assert_eq!(before.total().records, 2, "{format}");
        assert!(!stash.is_empty(), "{format}");
        // The saved form, through JSON as the daemon writes it.
        let text = serde_json::to_string(&stash.snapshot()).unwrap();
        // After: data without a template is decoded at once from the restored stash.
        let restored = TemplateStash::new();
        assert_eq!(
            restored.restore(serde_json::from_str(&text).unwrap()),
            stash.len()
        );
        let mut after = Collector::with_templates(Config::default(), restored).unwrap();
        after.push(T0 + 6 * NS_PER_SEC, exporter(), &without);
        let t = after.total();
        assert_eq!((t.records, t.template_misses), (2, 0), "{format}");
        let bytes: u64 = drain(&mut after).iter().map(|b| b.volume.bytes).sum();
        assert_eq!(bytes, 13_000, "{format}");
        // Without the stash the same datagram waits for a template.
        let mut cold = Collector::new(Config::default()).unwrap();
        cold.push(T0 + 6 * NS_PER_SEC, exporter(), &without);
        let t = cold.total();
        assert_eq!((t.records, t.template_misses), (0, 1), "{format}");
        // Another exporter (or another source port) is another scope: not taken for it.
        let other: SocketAddr = "192.0.2.250:50001".parse().unwrap();
        let restored = TemplateStash::new();
        restored.restore(serde_json::from_str(&text).unwrap());
        let mut elsewhere = Collector::with_templates(Config::default(), restored).unwrap();
        elsewhere.push(T0 + 6 * NS_PER_SEC, other, &without);
        assert_eq!(elsewhere.total().records, 0, "{format}");
    }
}

#[test]
fn damaged_saved_templates_are_survived() {
    // The real encodings of one exporter's templates, then each byte of them changed at
    // random, restored and met by data: counted, never a panic, never more than was sent.
    for format in ["v9", "ipfix"] {
        let (with, without) = with_and_without_templates(format);
        let stash = TemplateStash::new();
        let mut c = Collector::with_templates(Config::default(), stash.clone()).unwrap();
        c.push(T0, exporter(), &with);
        let good = stash.snapshot();
        assert!(!good.is_empty());
        let mut x = 0x243f_6a88_85a3_08d3_u64;
        for round in 0..300 {
            let mut saved = good.clone();
            for s in &mut saved {
                let mut bytes: Vec<u8> = (0..s.wire.len() / 2)
                    .map(|i| u8::from_str_radix(&s.wire[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                for _ in 0..1 + round % 4 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let at = (x % bytes.len().max(1) as u64) as usize;
                    if let Some(b) = bytes.get_mut(at) {
                        *b ^= (x >> 32) as u8 | 1;
                    }
                }
                // Sometimes cut short or grown.
                match round % 5 {
                    3 => bytes.truncate(bytes.len() / 2),
                    4 => bytes.extend_from_slice(&[0xff; 40]),
                    _ => {}
                }
                s.wire = bytes.iter().map(|b| format!("{b:02x}")).collect();
            }
            let restored = TemplateStash::new();
            restored.restore(saved);
            let mut after = Collector::with_templates(Config::default(), restored).unwrap();
            after.push(T0 + NS_PER_SEC, exporter(), &without);
            let t = after.total();
            assert!(t.records <= 2, "{format} round {round}: {t:?}");
            let bins = drain(&mut after);
            assert!(bins.len() <= 8, "{format} round {round}");
        }
    }
}

#[test]
fn sflow_samples_are_decoded_and_weighted() {
    // An Ethernet/IPv4/UDP frame of 1000 IP bytes, header cut at 128 bytes.
    let mut frame = vec![0u8; 1014];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14] = 0x45;
    frame[16..18].copy_from_slice(&1000u16.to_be_bytes());
    frame[22] = 64;
    frame[23] = 17;
    frame[26..30].copy_from_slice(&[10, 0, 0, 7]);
    frame[30..34].copy_from_slice(&[198, 19, 0, 9]);
    frame[34..36].copy_from_slice(&5000u16.to_be_bytes());
    frame[36..38].copy_from_slice(&53u16.to_be_bytes());
    frame[38..40].copy_from_slice(&980u16.to_be_bytes());
    let s = PacketSample {
        header: frame[..128].to_vec(),
        frame_len: 1014,
        pool: 10,
    };
    let mut d = Vec::new();
    encode::sflow(&header(3, 512), [192, 0, 2, 250], &[s.clone(), s], &mut d);
    let mut c = Collector::new(Config::default()).unwrap();
    assert_eq!(c.push(T0 + 3_500_000_000, exporter(), &d), Kind::Sflow);
    let bins = drain(&mut c);
    assert_eq!(bins.len(), 1);
    let b = bins[0];
    assert_eq!(b.second, T0 / NS_PER_SEC + 3);
    assert_eq!((b.key.sport, b.key.dport, b.key.proto), (5000, 53, 17));
    assert_eq!(b.volume.bytes, 2 * 1000 * 512);
    assert_eq!(
        (b.volume.packets, b.volume.samples, b.volume.rate),
        (1024, 2, 512)
    );
    assert_eq!(c.total().packet_samples, 2);
}

#[test]
fn sflow_zero_rate_is_counted_and_default_applies() {
    let mut frame = vec![0u8; 60];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[14] = 0x45;
    frame[16..18].copy_from_slice(&46u16.to_be_bytes());
    frame[23] = 1;
    let s = PacketSample {
        header: frame,
        frame_len: 60,
        pool: 1,
    };
    let mut d = Vec::new();
    encode::sflow(&header(0, 0), [192, 0, 2, 250], &[s], &mut d);
    let mut c = Collector::new(Config::default()).unwrap();
    c.push(T0, exporter(), &d);
    assert_eq!(c.total().zero_rates, 1);
    assert_eq!(drain(&mut c)[0].volume.bytes, 46);
}

#[test]
fn garbage_and_truncation_are_counted() {
    let mut c = Collector::new(Config::default()).unwrap();
    let mut d = Vec::new();
    encode::ipfix(&header(1, 1), &[rec(v4(1), ext(), 1, 0, 0)], true, &mut d);
    for cut in [3, 10, 17, d.len() - 3] {
        c.push(T0, exporter(), &d[..cut]);
    }
    c.push(T0, exporter(), b"hello");
    c.push(T0, exporter(), &[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff]);
    let t = c.total();
    assert_eq!(t.datagrams, 6);
    assert!(t.parse_errors >= 5, "{t:?}");
}

#[test]
fn bins_wait_for_the_watermark() {
    let cfg = Config {
        hold_s: 40,
        ..Config::default()
    };
    let mut c = Collector::new(cfg).unwrap();
    let mut d = Vec::new();
    encode::netflow5(&header(30, 1), &[rec(v4(1), ext(), 1000, 0, 0)], &mut d);
    c.push(T0 + 30 * NS_PER_SEC, exporter(), &d);
    assert!(c.pop().is_none());
    // 11 s later (no records): second 0 is behind the watermark.
    encode::netflow5(&header(41, 1), &[], &mut d);
    c.push(T0 + 41 * NS_PER_SEC, exporter(), &d);
    assert_eq!(c.pop().map(|b| b.second), Some(T0 / NS_PER_SEC));
}

#[test]
fn engine_input_splits_large_bins() {
    let bin = Bin {
        second: 5,
        key: Key {
            src: v4(1),
            dst: ext(),
            proto: 17,
            sport: 1,
            dport: 2,
        },
        volume: Volume {
            bytes: 10_000_000_000,
            packets: 10,
            samples: 1,
            rate: 1,
        },
    };
    let mut meta = PacketMeta::default();
    let mut got = Vec::new();
    engine_input(&bin, &mut meta, |ts, m| {
        got.push((ts, m.ip_len, m.payload_len))
    });
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|g| g.0 == 5 * NS_PER_SEC));
    assert_eq!(
        got.iter().map(|g| u64::from(g.1)).sum::<u64>(),
        10_000_000_000
    );
    assert_eq!(
        got.iter().map(|g| u64::from(g.2)).sum::<u64>(),
        10_000_000_000 - 10 * 28
    );
}

#[test]
fn udp_datagrams_come_out_of_frames() {
    let mut buf = Vec::new();
    let mut w = burstwatch_sim::export::pcap::DatagramPcap::new(
        &mut buf,
        "192.0.2.250:50000".parse().unwrap(),
        "192.0.2.251:4739".parse().unwrap(),
    )
    .unwrap();
    w.write(T0, b"abcdefgh").unwrap();
    drop(w);
    let frame = &buf[24 + 16..];
    let d = udp_datagram(1, frame).unwrap();
    assert_eq!(d.payload, b"abcdefgh");
    assert_eq!(d.dst.port(), 4739);
    assert_eq!(d.src, exporter());
    assert!(udp_datagram(1, &frame[..40]).is_none());
    assert!(udp_datagram(147, frame).is_none());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary bytes, alone or behind a valid version field, never panic and keep the
        /// held state within its caps.
        #[test]
        fn arbitrary_datagrams(
            body in proptest::collection::vec(any::<u8>(), 0..1500),
            version in 0usize..5,
        ) {
            let prefixes: [&[u8]; 5] = [&[], &[0, 5], &[0, 9], &[0, 10], &[0, 0, 0, 5]];
            let mut d = prefixes[version].to_vec();
            d.extend_from_slice(&body);
            let cfg = Config { max_bin_entries: 1000, ..Config::default() };
            let mut c = Collector::new(cfg).unwrap();
            c.push(T0, exporter(), &d);
            c.push(T0 + NS_PER_SEC, exporter(), &d);
            prop_assert!(c.held_bins() <= 1000);
            c.finish();
            while c.pop().is_some() {}
        }

        #[test]
        fn arbitrary_frames(frame in proptest::collection::vec(any::<u8>(), 0..200), link in 0u32..300) {
            let _ = udp_datagram(link, &frame);
        }

        /// Pro-rating keeps totals exact whatever the span.
        #[test]
        fn prorating_is_exact(bytes in 0u64..u64::MAX / 2, packets in 0u64..1 << 40,
                              start in -1_000_000_000_000i64..1_000_000_000_000, len in 0i64..4_000_000_000_000) {
            let mut b = crate::bins::Bins::new(1 << 20, 3600);
            let key = Key { src: v4(1), dst: ext(), proto: 6, sport: 1, dport: 2 };
            b.add_span(key, start, start + len, Volume { bytes, packets, samples: 1, rate: 1 });
            let mut out = Vec::new();
            b.release_all(&mut out);
            prop_assert_eq!(out.iter().map(|b| b.volume.bytes).sum::<u64>(), bytes);
            prop_assert_eq!(out.iter().map(|b| b.volume.packets).sum::<u64>(), packets);
            prop_assert!(out.len() as i64 <= 3601);
        }
    }
}
