//! Injected scenarios: determinism of pcap and truth, timing, and truth consistent with the
//! packets (checked with a tiny independent reader).
#![allow(clippy::unwrap_used, missing_docs)] // test code: a panic is the failure report

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use burstwatch_sim::{Expect, ScenarioKind, SimConfig, Simulator, Truth};

fn cfg(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        subscribers: 300,
        duration_secs: 420,
        activity_rate: Some(1.0 / 300.0),
        scenarios: true,
        scenario_scale: 0.02,
        ..SimConfig::default()
    }
}

fn generate(c: SimConfig) -> (Vec<u8>, Truth) {
    let mut out = Vec::new();
    let (_, truth) = Simulator::new(c).write_pcap_with_truth(&mut out).unwrap();
    (out, truth)
}

/// One packet: time (µs), src, dst, L3 length.
struct Pkt {
    ts_us: i64,
    src: IpAddr,
    dst: IpAddr,
    l3: u64,
}

fn packets(pcap: &[u8]) -> Vec<Pkt> {
    let mut v = Vec::new();
    let mut o = 24;
    while o + 16 <= pcap.len() {
        let u = |i: usize| u32::from_le_bytes(pcap[i..i + 4].try_into().unwrap());
        let ts_us = i64::from(u(o)) * 1_000_000 + i64::from(u(o + 4));
        let incl = u(o + 8) as usize;
        let f = &pcap[o + 16..o + 16 + incl];
        o += 16 + incl;
        let ip = &f[14..];
        let (src, dst, l3) = match u16::from_be_bytes([f[12], f[13]]) {
            0x0800 => (
                IpAddr::from(<[u8; 4]>::try_from(&ip[12..16]).unwrap()),
                IpAddr::from(<[u8; 4]>::try_from(&ip[16..20]).unwrap()),
                u64::from(u16::from_be_bytes([ip[2], ip[3]])),
            ),
            0x86dd => (
                IpAddr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap()),
                IpAddr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap()),
                u64::from(u16::from_be_bytes([ip[4], ip[5]])) + 40,
            ),
            t => panic!("ethertype {t:#x}"),
        };
        v.push(Pkt {
            ts_us,
            src,
            dst,
            l3,
        });
    }
    v
}

#[test]
fn pcap_and_truth_are_deterministic() {
    let (a, ta) = generate(cfg(5));
    let (b, tb) = generate(cfg(5));
    assert!(a == b, "pcap differs between runs");
    assert_eq!(
        serde_json::to_string(&ta).unwrap(),
        serde_json::to_string(&tb).unwrap()
    );
    let (c, tc) = generate(cfg(6));
    assert!(a != c);
    assert_ne!(ta, tc);
}

#[test]
fn without_scenarios_the_truth_is_empty_and_background_unchanged() {
    let mut c = cfg(5);
    c.scenarios = false;
    let (bg, t) = generate(c.clone());
    assert!(t.scenarios.is_empty());
    let mut plain = Vec::new();
    Simulator::new(c).write_pcap(&mut plain).unwrap();
    assert!(bg == plain);
    // The background of a run with scenarios is the same traffic: every background packet
    // appears, in order, once the scenario flows are taken out.
    let (with, truth) = generate(cfg(5));
    let pairs: HashSet<(IpAddr, IpAddr)> = truth
        .scenarios
        .iter()
        .flat_map(|s| {
            s.events
                .iter()
                .map(move |e| (e.src.unwrap_or(s.src), s.dst))
        })
        .collect();
    let mine = |p: &Pkt| pairs.contains(&(p.src, p.dst)) || pairs.contains(&(p.dst, p.src));
    let with_bg: Vec<(i64, IpAddr, IpAddr, u64)> = packets(&with)
        .into_iter()
        .filter(|p| !mine(p))
        .map(|p| (p.ts_us, p.src, p.dst, p.l3))
        .collect();
    let plain_bg: Vec<(i64, IpAddr, IpAddr, u64)> = packets(&bg)
        .into_iter()
        .filter(|p| !mine(p))
        .map(|p| (p.ts_us, p.src, p.dst, p.l3))
        .collect();
    assert_eq!(with_bg.len(), plain_bg.len());
    assert!(with_bg == plain_bg);
}

#[test]
fn scenarios_are_present_timed_and_consistent_with_the_packets() {
    let (pcap, truth) = generate(cfg(9));
    let span = truth.end_ts - truth.start_ts;
    assert!(span > 400.0, "{span}");
    let kinds: HashSet<ScenarioKind> = truth.scenarios.iter().map(|s| s.kind).collect();
    assert_eq!(kinds.len(), ScenarioKind::ALL.len(), "{kinds:?}");
    assert!(truth.scenarios.iter().any(|s| s.src.is_ipv6()));
    assert!(truth.scenarios.iter().any(|s| s.src.is_ipv4()));
    let missions: Vec<_> = truth
        .scenarios
        .iter()
        .filter(|s| s.part_of.is_some())
        .collect();
    assert!(!missions.is_empty());
    for m in &missions {
        let twin = missions
            .iter()
            .find(|o| o.mission == m.mission && o.kind != m.kind)
            .unwrap();
        assert_eq!((m.src, m.dst), (twin.src, twin.dst));
    }
    let pk = packets(&pcap);
    // Distinct subscribers per external address.
    let mut talkers: HashMap<IpAddr, HashSet<IpAddr>> = HashMap::new();
    for p in &pk {
        let home = |a: &IpAddr| match a {
            IpAddr::V4(v) => v.octets()[0] == 10 || v.octets()[0] == 100,
            IpAddr::V6(v) => v.octets()[0] == 0xfd,
        };
        if home(&p.src) {
            talkers.entry(p.dst).or_default().insert(p.src);
        }
    }
    for s in &truth.scenarios {
        assert_eq!(s.expect, s.kind.expect());
        let mut prev = f64::MIN;
        for e in &s.events {
            assert!(
                e.start_ts >= truth.start_ts + 0.4 * span,
                "{} starts early",
                s.id
            );
            assert!(e.end_ts <= truth.end_ts, "{} ends late", s.id);
            assert!(e.start_ts <= e.end_ts && e.start_ts >= prev, "{}", s.id);
            prev = e.start_ts;
            // Bytes summed by the reader for this src->dst in the event window.
            let src = e.src.unwrap_or(s.src);
            let (t0, t1) = (
                (e.start_ts * 1e6).round() as i64,
                (e.end_ts * 1e6).round() as i64,
            );
            let (mut up, mut down) = (0u64, 0u64);
            for p in pk.iter().filter(|p| p.ts_us >= t0 && p.ts_us <= t1) {
                if p.src == src && p.dst == s.dst {
                    up += p.l3;
                } else if p.src == s.dst && p.dst == src {
                    down += p.l3;
                }
            }
            let shared = s.tags.iter().any(|t| t == "shared_infra")
                || s.kind == ScenarioKind::DecoySharedInfra
                || s.kind == ScenarioKind::DecoyCloudBackup;
            if s.part_of.is_some()
                || shared
                || s.kind == ScenarioKind::DecoyUploadPopular
                || s.kind == ScenarioKind::DecoyPeriodicPopular
                || (s.kind == ScenarioKind::DecoyCdnDownload && talkers[&s.dst].len() > 1)
            {
                // Shared pair (mission) or a popular server: other traffic may overlap.
                assert!(up >= e.bytes_out && down >= e.bytes_in, "{}", s.id);
            } else {
                assert_eq!((up, down), (e.bytes_out, e.bytes_in), "{}", s.id);
            }
        }
        // Rare endpoints are talked to by their scenario's subscriber(s) only; popular decoy
        // servers by many.
        let n = talkers[&s.dst].len();
        if s.tags.iter().any(|t| t == "shared_infra") {
            // A little-used server of the pool: the background may reach it too.
            assert!(!rare(&s.dst), "{}", s.id);
            continue;
        }
        match s.kind {
            // A little-used server of the pool in a popular prefix, and a popular cloud.
            ScenarioKind::DecoySharedInfra | ScenarioKind::DecoyCloudBackup => {
                assert!(!rare(&s.dst), "{}", s.id)
            }
            ScenarioKind::DecoyUploadPopular => {
                // Popular before the upload starts (more than the detector's 8-member set).
                let t0 = (s.events[0].start_ts * 1e6) as i64;
                let before: HashSet<IpAddr> = pk
                    .iter()
                    .filter(|p| p.ts_us < t0 && p.dst == s.dst)
                    .map(|p| p.src)
                    .collect();
                assert!(
                    before.len() > 8,
                    "{} has {} talkers before",
                    s.id,
                    before.len()
                );
                assert!(n > before.len());
            }
            ScenarioKind::DecoyNewPopular => assert_eq!(n, s.events.len()),
            ScenarioKind::DecoyCdnDownload => {}
            // A popular service: the pollers and the background.
            ScenarioKind::DecoyPeriodicPopular => assert!(n > 8, "{} has {n} talkers", s.id),
            _ => assert_eq!(n, 1, "{} has {n} talkers", s.id),
        }
        let first = s.events.first().unwrap();
        match s.kind {
            ScenarioKind::Beacon if s.events.len() == 1 => {
                // All polls inside one connection: at least 14 requests of 150 bytes or more.
                assert!(first.bytes_out >= 14 * 150, "{first:?}");
            }
            ScenarioKind::Beacon => {
                // A connection per poll; a few beats may be missed.
                assert!(s.events.len() >= 11, "{}", s.events.len());
                for e in &s.events {
                    assert!((150..=8000).contains(&e.bytes_out), "{e:?}");
                }
            }
            ScenarioKind::BurstSingle | ScenarioKind::BurstPeriodic => {
                assert_eq!(s.expect, Expect::Burst);
                // Scaled down (0.02) a transfer is 20 kB to 2 MB, so its handshakes and fixed
                // replies weigh more than at full size (> 20x there): still mostly up. (A
                // 22 kB burst over several flows carries about 7 kB of replies.)
                assert!(first.bytes_out > 2 * first.bytes_in, "{first:?}");
            }
            ScenarioKind::DecoyVideoCall => {
                let ratio = first.bytes_out as f64 / first.bytes_in as f64;
                assert!((0.6..1.6).contains(&ratio), "{ratio}");
            }
            ScenarioKind::DecoyCdnDownload => assert!(first.bytes_in > 20 * first.bytes_out),
            _ => {}
        }
    }
    let periodic = truth
        .scenarios
        .iter()
        .find(|s| s.kind == ScenarioKind::BurstPeriodic && s.part_of.is_none())
        .unwrap();
    assert!(periodic.events.len() >= 2);
}

/// Is `a` a rare scenario endpoint (198.19.0.0/16, 2001:db8:e000::/36)? Nothing else uses them.
fn rare(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.octets()[..2] == [198, 19],
        IpAddr::V6(v) => v.octets()[..4] == [0x20, 0x01, 0x0d, 0xb8] && v.octets()[4] >> 4 == 0xe,
    }
}

/// L3 bytes (out, in) per (subscriber, rare endpoint), from the packets.
fn rare_pairs_from_packets(pk: &[Pkt]) -> HashMap<(IpAddr, IpAddr), (u64, u64)> {
    let mut m: HashMap<(IpAddr, IpAddr), (u64, u64)> = HashMap::new();
    for p in pk {
        if rare(&p.dst) {
            m.entry((p.src, p.dst)).or_default().0 += p.l3;
        } else if rare(&p.src) {
            m.entry((p.dst, p.src)).or_default().1 += p.l3;
        }
    }
    m
}

/// The same, from the truth's events.
fn rare_pairs_from_truth(t: &Truth) -> HashMap<(IpAddr, IpAddr), (u64, u64)> {
    let mut m: HashMap<(IpAddr, IpAddr), (u64, u64)> = HashMap::new();
    for s in t.scenarios.iter().filter(|s| rare(&s.dst)) {
        for e in &s.events {
            let v = m.entry((e.src.unwrap_or(s.src), s.dst)).or_default();
            v.0 += e.bytes_out;
            v.1 += e.bytes_in;
        }
    }
    m
}

/// Byte offset just past the last pcap record at or before `ts_us`.
fn offset_at(pcap: &[u8], ts_us: i64) -> u64 {
    let mut o = 24;
    while o + 16 <= pcap.len() {
        let u = |i: usize| u32::from_le_bytes(pcap[i..i + 4].try_into().unwrap());
        let t = i64::from(u(o)) * 1_000_000 + i64::from(u(o + 4));
        if t > ts_us {
            break;
        }
        o += 16 + u(o + 8) as usize;
    }
    o as u64
}

#[test]
fn a_size_limit_cuts_the_truth_exactly_where_the_capture_ends() {
    // With a size limit the capture may end in the middle of scenarios: the truth must still
    // account for every scenario packet written (an event cut off gets an entry with what was
    // written, marked cut and out of scope), and for nothing that was not written.
    for seed in [11, 12] {
        let mut c = cfg(seed);
        let (full_bounded, _) = generate(c.clone());
        c.target_bytes = Some(full_bounded.len() as u64);
        let (full, full_truth) = generate(c.clone());
        assert_eq!(
            rare_pairs_from_packets(&packets(&full)),
            rare_pairs_from_truth(&full_truth)
        );
        // Cut in the middle of the longest burst event, then just after a beacon session.
        let burst = full_truth
            .scenarios
            .iter()
            .filter(|s| s.expect == Expect::Burst)
            .flat_map(|s| &s.events)
            .max_by(|a, b| (a.end_ts - a.start_ts).total_cmp(&(b.end_ts - b.start_ts)))
            .unwrap();
        let mid = ((burst.start_ts + burst.end_ts) / 2.0 * 1e6) as i64;
        for cut_us in [mid, mid + 20_000_000, mid + 60_000_000] {
            c.target_bytes = Some(offset_at(&full, cut_us));
            let (pcap, truth) = generate(c.clone());
            assert!(full.starts_with(&pcap[..pcap.len() - 2000]), "not a prefix");
            assert_eq!(
                rare_pairs_from_packets(&packets(&pcap)),
                rare_pairs_from_truth(&truth),
                "seed {seed}, cut at {cut_us}"
            );
            let cut: Vec<_> = truth
                .scenarios
                .iter()
                .flat_map(|s| &s.events)
                .filter(|e| e.cut)
                .collect();
            assert!(!cut.is_empty(), "seed {seed}: nothing was cut at {cut_us}");
            assert!(cut
                .iter()
                .all(|e| !e.should_detect && e.end_ts <= truth.end_ts));
            // The event that was cut in the middle is in the truth, out of scope.
            if cut_us == mid {
                assert!(truth.scenarios.iter().flat_map(|s| &s.events).any(|e| e.cut
                    && (e.start_ts - burst.start_ts).abs() < 1e-6
                    && e.bytes_out < burst.bytes_out));
            }
        }
    }
}

#[test]
fn small_populations_get_their_scenarios_and_finish() {
    // Fewer subscribers than scenarios want: they share subscribers rather than wait for a
    // free one forever.
    for (seed, subscribers) in [(1, 40), (2, 47), (3, 64)] {
        let c = SimConfig {
            seed,
            subscribers,
            duration_secs: 300,
            activity_rate: Some(1.0 / 300.0),
            scenarios: true,
            scenario_scale: 0.1,
            adversarial: seed == 3,
            ..SimConfig::default()
        };
        let (_, truth) = generate(c);
        assert!(
            truth.scenarios.len() > 20,
            "{subscribers}: {}",
            truth.scenarios.len()
        );
    }
}
