//! End-to-end checks of the generated pcap: determinism, structural validity, size target and
//! traffic mix, using a tiny independent pcap/packet reader.
#![allow(clippy::unwrap_used, missing_docs)] // test code: a panic is the failure report

use burstwatch_sim::{SimConfig, SimSummary, Simulator};

fn generate(cfg: SimConfig) -> (Vec<u8>, SimSummary) {
    let mut out = Vec::new();
    let s = Simulator::new(cfg).write_pcap(&mut out).unwrap();
    (out, s)
}

/// A busy little network: many activities in a few seconds of traffic.
fn busy(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        subscribers: 400,
        duration_secs: 20,
        activity_rate: Some(0.25),
        target_bytes: Some(30_000_000),
        ..SimConfig::default()
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn same_config_gives_identical_bytes() {
    let (a, sa) = generate(busy(42));
    let (b, sb) = generate(busy(42));
    assert_eq!(fnv(&a), fnv(&b));
    assert_eq!(a, b);
    assert_eq!(sa, sb);
    // Writing twice from one simulator is identical too.
    let mut sim = Simulator::new(busy(42));
    let mut c = Vec::new();
    sim.write_pcap(&mut c).unwrap();
    assert_eq!(a, c);
    let (d, _) = generate(busy(43));
    assert_ne!(fnv(&a), fnv(&d));
}

fn sum16(data: &[u8]) -> u32 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        s += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[derive(Default, Debug)]
struct Mix {
    v4: u64,
    v6: u64,
    tcp: u64,
    udp: u64,
    icmp: u64,
    syn: u64,
    fin: u64,
    rst: u64,
    dns: u64,
    quic: u64,
    ntp: u64,
    min_len: usize,
    max_len: usize,
}

/// Walk every record; assert structure and checksums; return the mix and record count.
fn check(pcap: &[u8], s: &SimSummary) -> Mix {
    assert_eq!(&pcap[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    assert_eq!(u32::from_le_bytes(pcap[16..20].try_into().unwrap()), 65535);
    assert_eq!(u32::from_le_bytes(pcap[20..24].try_into().unwrap()), 1);
    let mut mix = Mix {
        min_len: usize::MAX,
        ..Mix::default()
    };
    let mut off = 24;
    let mut last_ts = i64::MIN;
    let mut n = 0u64;
    while off < pcap.len() {
        let r = &pcap[off..off + 16];
        let sec = i64::from(u32::from_le_bytes(r[0..4].try_into().unwrap()));
        let usec = i64::from(u32::from_le_bytes(r[4..8].try_into().unwrap()));
        let incl = u32::from_le_bytes(r[8..12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(r[12..16].try_into().unwrap()) as usize;
        assert!(usec < 1_000_000);
        assert_eq!(incl, orig);
        assert!((60..=1514).contains(&incl), "frame length {incl}");
        let ts = sec * 1_000_000 + usec;
        assert!(ts >= last_ts, "timestamps go back at record {n}");
        if n == 0 {
            assert_eq!(ts, s.first_ts_ns / 1000);
        }
        last_ts = ts;
        mix.min_len = mix.min_len.min(incl);
        mix.max_len = mix.max_len.max(incl);
        let f = &pcap[off + 16..off + 16 + incl];
        check_frame(f, &mut mix);
        off += 16 + incl;
        n += 1;
    }
    assert_eq!(off, pcap.len(), "records end exactly at end of file");
    assert_eq!(n, s.packets);
    assert_eq!(pcap.len() as u64, s.bytes);
    assert_eq!(last_ts, s.last_ts_ns / 1000);
    mix
}

fn check_frame(f: &[u8], mix: &mut Mix) {
    let ethertype = u16::from_be_bytes([f[12], f[13]]);
    let ip = &f[14..];
    let (proto, l4, pseudo) = match ethertype {
        0x0800 => {
            mix.v4 += 1;
            assert_eq!(ip[0], 0x45);
            assert_eq!(fold(sum16(&ip[..20])), 0xffff, "IPv4 header checksum");
            let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
            assert!(total <= ip.len());
            assert!(
                total == ip.len() || f.len() == 60,
                "length mismatch without padding"
            );
            assert!(ip[8] > 0);
            let l4 = &ip[20..total];
            let pseudo = sum16(&ip[12..20]) + u32::from(ip[9]) + l4.len() as u32;
            (ip[9], l4, pseudo)
        }
        0x86dd => {
            mix.v6 += 1;
            assert_eq!(ip[0] >> 4, 6);
            let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
            assert!(40 + plen == ip.len() || (f.len() == 60 && 40 + plen < ip.len()));
            let l4 = &ip[40..40 + plen];
            let pseudo = sum16(&ip[8..40]) + u32::from(ip[6]) + plen as u32;
            (ip[6], l4, pseudo)
        }
        other => panic!("ethertype {other:#x}"),
    };
    match proto {
        6 => {
            mix.tcp += 1;
            assert_eq!(fold(pseudo + sum16(l4)), 0xffff, "TCP checksum");
            let hl = usize::from(l4[12] >> 4) * 4;
            assert!((20..=l4.len()).contains(&hl));
            let flags = l4[13];
            mix.syn += u64::from(flags & 0x02 != 0);
            mix.fin += u64::from(flags & 0x01 != 0);
            mix.rst += u64::from(flags & 0x04 != 0);
            let payload = &l4[hl..];
            if payload.len() > 5 {
                // One whole TLS record per segment.
                assert_eq!(payload[0], 0x17);
                assert_eq!(
                    u16::from_be_bytes([payload[3], payload[4]]) as usize,
                    payload.len() - 5
                );
            }
        }
        17 => {
            mix.udp += 1;
            assert_eq!(
                u16::from_be_bytes([l4[4], l4[5]]) as usize,
                l4.len(),
                "UDP length"
            );
            assert_eq!(fold(pseudo + sum16(l4)), 0xffff, "UDP checksum");
            let ports = [
                u16::from_be_bytes([l4[0], l4[1]]),
                u16::from_be_bytes([l4[2], l4[3]]),
            ];
            if ports.contains(&53) {
                mix.dns += 1;
                assert_eq!(u16::from_be_bytes([l4[12], l4[13]]), 1, "one question");
            } else if ports.contains(&443) {
                mix.quic += 1;
                assert_eq!(l4[8] & 0x40, 0x40, "QUIC fixed bit");
            } else if ports.contains(&123) {
                mix.ntp += 1;
                assert_eq!(l4.len(), 8 + 48);
            } else {
                panic!("unexpected UDP ports {ports:?}");
            }
        }
        1 => {
            mix.icmp += 1;
            assert_eq!(fold(sum16(l4)), 0xffff, "ICMP checksum");
        }
        58 => {
            mix.icmp += 1;
            assert_eq!(fold(pseudo + sum16(l4)), 0xffff, "ICMPv6 checksum");
        }
        p => panic!("protocol {p}"),
    }
}

#[test]
fn output_is_valid_pcap_with_the_expected_mix() {
    let (pcap, s) = generate(busy(7));
    let mix = check(&pcap, &s);
    eprintln!("{mix:?} {s:?}");
    assert!(s.flows > 500, "{s:?}");
    assert!(mix.tcp > 0 && mix.udp > 0 && mix.icmp > 0);
    assert!(mix.v6 > 0 && mix.v4 > mix.v6);
    let v6_share = mix.v6 as f64 / (mix.v4 + mix.v6) as f64;
    assert!((0.05..0.5).contains(&v6_share), "{v6_share}");
    assert!(mix.syn > 0 && mix.fin > 0 && mix.rst > 0);
    assert!(mix.dns > 0 && mix.quic > 0 && mix.ntp > 0);
    assert_eq!(mix.min_len, 60);
    assert_eq!(mix.max_len, 1514);
}

#[test]
fn size_target_is_honoured() {
    for target in [25, 1000, 1_000_000, 3_333_333] {
        let cfg = SimConfig {
            seed: 3,
            subscribers: 300,
            target_bytes: Some(target),
            ..SimConfig::default()
        };
        let (pcap, s) = generate(cfg);
        assert!(s.bytes >= target, "{} < {target}", s.bytes);
        assert!(
            s.bytes < target + 16 + 1514,
            "{} overshoots {target}",
            s.bytes
        );
        check(&pcap, &s);
    }
    // A tiny target still writes a valid (empty) file.
    let (pcap, s) = generate(SimConfig {
        target_bytes: Some(1),
        ..SimConfig::default()
    });
    assert_eq!((pcap.len(), s.packets), (24, 0));
}

#[test]
fn without_target_packets_stay_within_the_duration() {
    let cfg = SimConfig {
        seed: 5,
        subscribers: 100,
        duration_secs: 10,
        activity_rate: Some(0.1),
        ipv6_share: 0.0,
        ..SimConfig::default()
    };
    let start = cfg.start_ts_ns;
    let (pcap, s) = generate(cfg);
    let mix = check(&pcap, &s);
    assert_eq!(mix.v6, 0);
    assert!(s.packets > 100);
    assert!(s.first_ts_ns >= start);
    assert!(s.last_ts_ns <= start + 10_000_000_000);
}
