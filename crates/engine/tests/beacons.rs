//! Beacons as real agents make them: polls inside one long-lived connection (keep-alive,
//! WebSocket, QUIC) or in a new connection each, fast and slow, with jitter and tasks between
//! polls; and what is not a beacon (TCP keep-alive probes, ACKs). Every case is drawn from a
//! seeded generator over several seeds, the engine fed packet metadata with real payload
//! lengths (handshakes, pure ACKs).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use burstwatch_engine::{Alert, AlertKind, DetectConfig, Engine, FlowConfig};
use burstwatch_wire::PacketMeta;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;
const HOST: &str = "10.0.0.23";
const C2: &str = "198.51.100.7";

mod common;
use common::Rng;

struct Sim {
    packets: Vec<(i64, PacketMeta)>,
}

impl Sim {
    fn new() -> Self {
        Self {
            packets: Vec::new(),
        }
    }

    /// One packet; `payload` transport payload bytes (headers added: 40 TCP, 28 UDP).
    #[allow(clippy::too_many_arguments)]
    fn pkt(
        &mut self,
        t: i64,
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        proto: u8,
        payload: u32,
        flags: u8,
    ) {
        let hdr = if proto == 6 { 40 } else { 28 };
        let meta = PacketMeta {
            src: src.parse::<IpAddr>().unwrap(),
            dst: dst.parse::<IpAddr>().unwrap(),
            sport,
            dport,
            proto,
            ip_len: payload + hdr,
            payload_len: payload,
            tcp_flags: if proto == 6 { flags } else { 0 },
            ..PacketMeta::default()
        };
        self.packets.push((t, meta));
    }

    /// TCP segments of `bytes` from one side, each ACKed by the other after `rtt`.
    #[allow(clippy::too_many_arguments)]
    fn tcp_send(
        &mut self,
        t: i64,
        from: (&str, u16),
        to: (&str, u16),
        bytes: u32,
        rtt: i64,
    ) -> i64 {
        let mut left = bytes;
        let mut t = t;
        while left > 0 {
            let seg = left.min(1448);
            self.pkt(t, from.0, from.1, to.0, to.1, 6, seg, 0x18);
            self.pkt(t + rtt, to.0, to.1, from.0, from.1, 6, 0, 0x10);
            left -= seg;
            t += 200_000; // 0.2 ms between segments
        }
        t + rtt
    }

    /// A TCP handshake from the host's `port` to the server.
    fn connect(&mut self, t: i64, port: u16, rtt: i64) -> i64 {
        self.pkt(t, HOST, port, C2, 443, 6, 0, 0x02);
        self.pkt(t + rtt, C2, 443, HOST, port, 6, 0, 0x12);
        self.pkt(t + rtt + 1000, HOST, port, C2, 443, 6, 0, 0x10);
        t + rtt
    }

    /// One poll on an open connection: request, the server's think time, response.
    fn poll(&mut self, t: i64, port: u16, up: u32, down: u32, think: i64, rtt: i64) -> i64 {
        let t = self.tcp_send(t, (HOST, port), (C2, 443), up, rtt / 2);
        self.tcp_send(t + think, (C2, 443), (HOST, port), down, rtt / 2)
    }

    /// Background: the host browses a few popular sites now and then.
    fn background(&mut self, rng: &mut Rng, from: i64, to: i64) {
        let mut t = from;
        let mut k = 0u16;
        while t < to {
            let site = format!("198.18.0.{}", 1 + k % 7);
            let port = 50_000 + k;
            let tt = self.connect(t, port, 20_000_000);
            self.tcp_send(tt, (HOST, port), (&site, 443), 700, 20_000_000);
            self.tcp_send(
                tt + 30_000_000,
                (&site, 443),
                (HOST, port),
                30_000,
                20_000_000,
            );
            t += (rng.uniform(3.0, 40.0) * S as f64) as i64;
            k += 1;
        }
    }

    fn run(mut self, cfg: DetectConfig) -> Vec<Alert> {
        let mut engine = Engine::new(FlowConfig::default(), cfg, 7);
        self.packets.sort_by_key(|p| p.0);
        let mut alerts = Vec::new();
        for (t, meta) in &self.packets {
            engine.ingest(*t, meta);
            while engine.pop_record().is_some() {}
            while let Some(a) = engine.pop_alert() {
                alerts.push(a);
            }
        }
        engine.finish();
        while let Some(a) = engine.pop_alert() {
            alerts.push(a);
        }
        alerts
    }
}

fn beacons_to_c2(alerts: &[Alert]) -> usize {
    alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Beacon && a.dst.to_string() == C2)
        .count()
}

fn describe(alerts: &[Alert]) -> String {
    alerts
        .iter()
        .map(|a| {
            let r: Vec<String> = a
                .reasons
                .iter()
                .map(|r| format!("{}={:.3}", r.name, r.value))
                .collect();
            format!(
                "{} {} {:.3} [{}]",
                a.kind.as_str(),
                a.dst,
                a.score,
                r.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn polls_every_8_to_11_s_inside_one_connection_are_a_beacon() {
    for seed in 1..=6u64 {
        let mut rng = Rng(seed);
        let mut sim = Sim::new();
        let rtt = (rng.uniform(0.02, 0.3) * S as f64) as i64;
        let port = 41_000;
        let mut t = sim.connect(T0 + 5 * S, port, rtt);
        let n = 10 + (seed as usize % 5);
        for _ in 0..n {
            let up = rng.uniform(250.0, 450.0) as u32;
            let down = rng.uniform(100.0, 900.0) as u32;
            sim.poll(
                t,
                port,
                up,
                down,
                (rng.uniform(0.0, 0.2) * S as f64) as i64,
                rtt,
            );
            t += (rng.uniform(8.0, 11.0) * S as f64) as i64;
        }
        if seed % 2 == 0 {
            sim.background(&mut rng, T0, t);
        }
        let alerts = sim.run(DetectConfig::default());
        assert_eq!(
            beacons_to_c2(&alerts),
            1,
            "seed {seed}, {n} polls:\n{}",
            describe(&alerts)
        );
    }
}

#[test]
fn polls_every_30_to_60_s_in_one_connection_with_uploads_between_are_a_beacon() {
    for seed in 1..=6u64 {
        let mut rng = Rng(100 + seed);
        let mut sim = Sim::new();
        let rtt = (rng.uniform(0.02, 0.2) * S as f64) as i64;
        let port = 41_500;
        let mut t = sim.connect(T0 + 3 * S, port, rtt);
        for i in 0..12 {
            sim.poll(
                t,
                port,
                rng.uniform(300.0, 700.0) as u32,
                rng.uniform(200.0, 400.0) as u32,
                0,
                rtt,
            );
            if i == 3 || i == 6 || i == 9 {
                // A task's output sent back between polls (5..200 kB).
                let at = t + (rng.uniform(5.0, 20.0) * S as f64) as i64;
                let up = rng.uniform(5_000.0, 200_000.0) as u32;
                sim.poll(at, port, up, 300, 0, rtt);
            }
            t += (rng.uniform(30.0, 60.0) * S as f64) as i64;
        }
        if seed % 2 == 1 {
            sim.background(&mut rng, T0, t);
        }
        let alerts = sim.run(DetectConfig::default());
        assert_eq!(
            beacons_to_c2(&alerts),
            1,
            "seed {seed}:\n{}",
            describe(&alerts)
        );
    }
}

#[test]
fn a_fast_beacon_in_new_connections_is_found_after_enough_regular_polls() {
    for seed in 1..=6u64 {
        let mut rng = Rng(200 + seed);
        let mut sim = Sim::new();
        let rtt = (rng.uniform(0.01, 0.1) * S as f64) as i64;
        let mut t = T0 + S;
        for k in 0..12u16 {
            let port = 42_000 + k;
            let tt = sim.connect(t, port, rtt);
            // TLS: hello, server flight, finished + request, response, close.
            let tt = sim.tcp_send(tt + 1000, (HOST, port), (C2, 443), 517, rtt / 2);
            let tt = sim.tcp_send(tt, (C2, 443), (HOST, port), 2_900, rtt / 2);
            let tt = sim.tcp_send(tt, (HOST, port), (C2, 443), 400, rtt / 2);
            let tt = sim.tcp_send(tt, (C2, 443), (HOST, port), 300, rtt / 2);
            sim.pkt(tt + 1000, HOST, port, C2, 443, 6, 0, 0x11);
            sim.pkt(tt + rtt, C2, 443, HOST, port, 6, 0, 0x11);
            t += (2.2 * rng.uniform(0.97, 1.03) * S as f64) as i64;
        }
        let alerts = sim.run(DetectConfig::default());
        assert_eq!(
            beacons_to_c2(&alerts),
            1,
            "seed {seed}:\n{}",
            describe(&alerts)
        );
        let a = alerts.iter().find(|a| a.kind == AlertKind::Beacon).unwrap();
        let needed = a
            .reasons
            .iter()
            .find(|r| r.name == "events_needed")
            .unwrap();
        let seen = a.reasons.iter().find(|r| r.name == "events").unwrap();
        assert!(seen.value >= needed.value, "{}", describe(&alerts));
    }
}

#[test]
fn tcp_keep_alive_probes_and_acks_are_not_a_beacon() {
    let mut sim = Sim::new();
    let port = 43_000;
    let rtt = 30_000_000;
    let t = sim.connect(T0, port, rtt);
    let t = sim.poll(t, port, 400, 2_000, 0, rtt);
    // The operating system probes the idle connection every 45 s for an hour (0 or 1 byte,
    // answered by an ACK).
    for k in 0..80 {
        let at = t + k * 45 * S;
        sim.pkt(at, HOST, port, C2, 443, 6, (k % 2) as u32, 0x10);
        sim.pkt(at + rtt, C2, 443, HOST, port, 6, 0, 0x10);
    }
    let alerts = sim.run(DetectConfig::default());
    assert_eq!(beacons_to_c2(&alerts), 0, "{}", describe(&alerts));
}

#[test]
fn irregular_polls_in_one_connection_are_not_a_beacon() {
    for seed in 1..=4u64 {
        let mut rng = Rng(300 + seed);
        let mut sim = Sim::new();
        let port = 44_000;
        let rtt = 40_000_000;
        let mut t = sim.connect(T0, port, rtt);
        for _ in 0..16 {
            sim.poll(t, port, 400, 600, 0, rtt);
            // Exponential gaps (a person clicking), mean 30 s.
            t += (-30.0 * (1.0 - rng.f64()).ln() * S as f64) as i64 + S;
        }
        let alerts = sim.run(DetectConfig::default());
        assert_eq!(
            beacons_to_c2(&alerts),
            0,
            "seed {seed}:\n{}",
            describe(&alerts)
        );
    }
}

#[test]
fn a_short_capture_reports_how_many_polls_a_beacon_would_need() {
    let mut sim = Sim::new();
    let port = 45_000;
    let rtt = 30_000_000;
    let mut t = sim.connect(T0, port, rtt);
    for _ in 0..6 {
        sim.poll(t, port, 300, 300, 0, rtt);
        t += 15 * S;
    }
    let mut engine = Engine::new(FlowConfig::default(), DetectConfig::default(), 7);
    sim.packets.sort_by_key(|p| p.0);
    for (t, meta) in &sim.packets {
        engine.ingest(*t, meta);
    }
    engine.finish();
    assert!(engine.pop_alert().is_none());
    let st = engine.detector().stats();
    assert_eq!(st.beacons_too_few, 1);
    assert_eq!(st.beacons_too_few_most, (6, 10));
}

#[test]
fn a_beacon_that_stops_is_reported_seconds_after_its_last_poll_not_at_the_end_of_input() {
    // A task of exactly as many polls as the rule needs, in new connections or in one, then
    // silence on the pair while the subscriber's other traffic goes on for ten minutes: the
    // last poll completes the evidence, and must be judged once it has been silent, not when
    // the next poll (never) or the end of the input comes.
    for seed in 1..=6u64 {
        let mut rng = Rng(seed);
        let mut sim = Sim::new();
        let rtt = (rng.uniform(0.02, 0.2) * S as f64) as i64;
        let period = rng.uniform(3.0, 40.0);
        let in_conn = seed % 2 == 0;
        let mut t = T0 + 5 * S;
        let port0 = 42_000;
        if in_conn {
            t = sim.connect(t, port0, rtt);
        }
        let mut last_end = t;
        for k in 0..10u16 {
            let port = if in_conn { port0 } else { port0 + k };
            let start = if in_conn {
                t
            } else {
                sim.connect(t, port, rtt)
            };
            let up = rng.uniform(300.0, 500.0) as u32;
            last_end = sim.poll(start, port, up, 600, rtt, rtt);
            t += (period * rng.uniform(0.9, 1.1) * S as f64) as i64;
        }
        sim.background(&mut rng, T0, last_end + 600 * S);
        // Other subscribers' traffic moves packet time on, as at any ISP tap.
        let mut u = T0;
        while u < last_end + 600 * S {
            sim.pkt(u, "10.0.0.99", 53_000, "192.0.2.53", 53, 17, 40, 0);
            u += S / 2;
        }
        let alerts = sim.run(DetectConfig::default());
        let b: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.kind == AlertKind::Beacon && a.dst.to_string() == C2)
            .collect();
        assert_eq!(b.len(), 1, "seed {seed}:\n{}", describe(&alerts));
        let late = (b[0].detected_ns - last_end) as f64 / S as f64;
        assert!(
            (0.0..=5.0).contains(&late),
            "seed {seed} (period {period:.1} s, in one connection: {in_conn}): reported {late:.1} s after the last poll"
        );
    }
}

#[test]
fn with_beacon_scoring_off_no_beacon_is_raised_and_the_other_alerts_are_the_same() {
    for seed in 1..=4u64 {
        let mut rng = Rng(seed);
        let mut sim = Sim::new();
        let rtt = (rng.uniform(0.02, 0.3) * S as f64) as i64;
        let port = 41_000;
        let mut t = sim.connect(T0 + 5 * S, port, rtt);
        for _ in 0..14 {
            sim.poll(t, port, 300, 500, 0, rtt);
            t += (rng.uniform(8.0, 11.0) * S as f64) as i64;
        }
        sim.background(&mut rng, T0, t);
        // An upload burst to the same endpoint: 12 MB at about 58 Mbit/s, mid-way.
        sim.tcp_send(T0 + 60 * S, (HOST, 42_000), (C2, 443), 12_000_000, rtt);
        let packets = sim.packets.clone();
        let on = sim.run(DetectConfig::default());
        assert_eq!(beacons_to_c2(&on), 1, "seed {seed}:\n{}", describe(&on));
        let off_cfg = DetectConfig {
            beacon_min_events: u32::MAX,
            ..DetectConfig::default()
        };
        assert!(off_cfg.beacons_off());
        let off = Sim { packets }.run(off_cfg);
        assert_eq!(beacons_to_c2(&off), 0, "seed {seed}:\n{}", describe(&off));
        let not_beacons = |a: &[Alert]| {
            a.iter()
                .filter(|a| a.kind != AlertKind::Beacon)
                .map(|a| (a.kind, a.src, a.dst, a.start_ns, a.bytes_out))
                .collect::<Vec<_>>()
        };
        assert!(
            on.iter().any(|a| a.kind == AlertKind::Burst),
            "seed {seed}:\n{}",
            describe(&on)
        );
        assert_eq!(not_beacons(&on), not_beacons(&off), "seed {seed}");
    }
}

/// Beacon scoring is per pair: the exchanges of a pair fed by flow export (synthetic packets
/// that carry a sampling rate, 1 for unsampled records) are never scored, while a captured
/// beacon beside them, with scoring on, still is. A daemon that captures and also receives flow
/// export keeps its beacons on the captured traffic.
#[test]
fn a_beacon_seen_through_flow_export_is_not_scored_and_a_captured_one_beside_it_is() {
    const OTHER: &str = "10.0.0.77";
    for seed in 1..=4u64 {
        let mut rng = Rng(seed);
        let mut sim = Sim::new();
        let rtt = (rng.uniform(0.02, 0.3) * S as f64) as i64;
        let port = 41_000;
        let mut t = sim.connect(T0 + 5 * S, port, rtt);
        for _ in 0..14 {
            sim.poll(t, port, 300, 500, 0, rtt);
            t += (rng.uniform(8.0, 11.0) * S as f64) as i64;
        }
        // The same polls from another subscriber, as flow export gives them.
        let (home, other): (IpAddr, IpAddr) = (HOST.parse().unwrap(), OTHER.parse().unwrap());
        let exported: Vec<(i64, PacketMeta)> = sim
            .packets
            .iter()
            .map(|(t, m)| {
                let mut m = m.clone();
                for a in [&mut m.src, &mut m.dst] {
                    if *a == home {
                        *a = other;
                    }
                }
                m.sampling = 1;
                (*t, m)
            })
            .collect();
        let captured_only = Sim {
            packets: sim.packets.clone(),
        }
        .run(DetectConfig::default());
        assert_eq!(beacons_to_c2(&captured_only), 1, "seed {seed}");
        sim.packets.extend(exported.iter().cloned());
        let both = sim.run(DetectConfig::default());
        let beacons: Vec<String> = both
            .iter()
            .filter(|a| a.kind == AlertKind::Beacon)
            .map(|a| a.src.to_string())
            .collect();
        assert_eq!(beacons, [HOST], "seed {seed}:\n{}", describe(&both));
        let export_only = Sim { packets: exported }.run(DetectConfig::default());
        assert_eq!(
            beacons_to_c2(&export_only),
            0,
            "seed {seed}:\n{}",
            describe(&export_only)
        );
    }
}
