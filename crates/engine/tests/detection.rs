//! Detection scenarios on a virtual clock, with golden (snapshot) alerts: the engine is fed
//! packet metadata directly, so these tests pin the detector's behaviour without any capture.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::fmt::Write as _;
use std::net::IpAddr;

use burstwatch_engine::{Alert, DetectConfig, Engine, FlowConfig};
use burstwatch_wire::PacketMeta;
use proptest::prelude::*;

mod common;
use common::sharded;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S; // 2026-01-01T00:00:00Z

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Builds a packet list, then feeds it to the engine in time order.
struct Sim {
    engine: Engine,
    alerts: Vec<Alert>,
    packets: Vec<(i64, PacketMeta)>,
}

impl Sim {
    fn new(cfg: DetectConfig) -> Self {
        Self::with_seed(cfg, 99)
    }

    fn with_seed(cfg: DetectConfig, seed: u64) -> Self {
        Self {
            engine: Engine::new(FlowConfig::default(), cfg, seed),
            alerts: Vec::new(),
            packets: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pkt(&mut self, t: i64, src: &str, sport: u16, dst: &str, dport: u16, proto: u8, len: u32) {
        let meta = PacketMeta {
            src: ip(src),
            dst: ip(dst),
            sport,
            dport,
            proto,
            ip_len: len,
            payload_len: len.saturating_sub(40),
            tcp_flags: if proto == 6 { 0x10 } else { 0 },
            ..PacketMeta::default()
        };
        self.packets.push((t, meta));
    }

    fn drain(&mut self) {
        while self.engine.pop_record().is_some() {}
        while let Some(a) = self.engine.pop_alert() {
            self.alerts.push(a);
        }
    }

    fn finish(&mut self) {
        let mut packets = std::mem::take(&mut self.packets);
        packets.sort_by_key(|p| p.0);
        for (t, meta) in &packets {
            self.engine.ingest(*t, meta);
            self.drain();
        }
        self.engine.finish();
        self.drain();
    }

    /// `hosts` subscribers each browse `servers` popular servers now and then over `[from, to)`.
    fn background(&mut self, from: i64, to: i64, hosts: u32, servers: u32) {
        let mut t = from;
        let mut k = 0u32;
        while t < to {
            let h = format!("10.0.{}.{}", k % hosts / 200, 10 + k % hosts % 200);
            let s = format!("198.18.0.{}", 1 + (k / 7) % servers);
            self.pkt(t, &h, 40_000 + (k % 1000) as u16, &s, 443, 6, 120);
            self.pkt(t + S / 50, &s, 443, &h, 40_000 + (k % 1000) as u16, 6, 1400);
            t += S / 4;
            k += 1;
        }
    }

    /// A beacon: 10.0.0.23 sends 420 bytes to 198.51.100.7:9000/udp about every 45 s (with a
    /// little jitter) from T0 + 100 s, 20 times, each answered with 260 bytes.
    fn beacon(&mut self) {
        for i in 0..20 {
            let t = T0 + 100 * S + i * 45 * S + (i % 3) * S / 20;
            self.pkt(t, "10.0.0.23", 41_000, "198.51.100.7", 9000, 17, 420);
            self.pkt(
                t + S / 5,
                "198.51.100.7",
                9000,
                "10.0.0.23",
                41_000,
                17,
                260,
            );
        }
    }

    /// An upstream burst: `bytes` over `secs` seconds in 1400-byte packets over `flows` flows.
    #[allow(clippy::too_many_arguments)]
    fn burst(
        &mut self,
        start: i64,
        host: &str,
        dst: &str,
        port: u16,
        proto: u8,
        bytes: u64,
        secs: i64,
        flows: u16,
    ) {
        let n = bytes / 1400;
        for i in 0..n {
            let t = start + (i as i64) * secs * S / n as i64;
            let f = (i % u64::from(flows)) as u16;
            self.pkt(t, host, 50_000 + f, dst, port, proto, 1400);
            if i % 20 == 0 {
                self.pkt(t + S / 100, dst, port, host, 50_000 + f, proto, 52);
            }
        }
    }
}

/// Stable text form of the alerts for snapshots (rounded numbers).
fn snapshot(alerts: &[Alert]) -> String {
    let mut out = String::new();
    for a in alerts {
        let _ = writeln!(
            out,
            "{} {} -> {}:{}/{} start={:.3} end={:.3} out={} in={} peak_mbps={:.1} flows={} occ={} score={:.3} {} baseline_kbps={:.1}",
            a.kind.as_str(),
            a.src,
            a.dst,
            a.dst_port,
            a.proto,
            (a.start_ns - T0) as f64 / 1e9,
            (a.end_ns - T0) as f64 / 1e9,
            a.bytes_out,
            a.bytes_in,
            a.peak_bps / 1e6,
            a.flows,
            a.occurrence,
            a.score,
            a.severity.as_str(),
            a.baseline_bps.unwrap_or(-1000.0) / 1e3
        );
        for r in &a.reasons {
            let _ = writeln!(
                out,
                "    {:<12} value={:<14.3} contribution={:+.4}",
                r.name, r.value, r.contribution
            );
        }
    }
    out
}

#[test]
fn golden_upstream_burst_to_a_rare_endpoint_over_parallel_flows() {
    let mut sim = Sim::new(DetectConfig::default());
    sim.background(T0, T0 + 900 * S, 40, 12);
    sim.burst(
        T0 + 600 * S,
        "10.0.0.17",
        "192.0.2.9",
        8443,
        6,
        12_000_000,
        6,
        3,
    );
    sim.background(T0 + 900 * S, T0 + 1000 * S, 40, 12);
    sim.finish();
    let got = snapshot(&sim.alerts);
    let want = "\
burst 10.0.0.17 -> 192.0.2.9:8443/6 start=600.000 end=605.999 out=11999400 in=22256 peak_mbps=16.0 flows=3 occ=1 score=0.680 medium baseline_kbps=1.1
    rate_jump    value=640.192        contribution=+0.1500
    volume       value=11999400.000   contribution=+0.0811
    asymmetry    value=0.998          contribution=+0.0996
    rarity       value=1.000          contribution=+0.3000
    novelty      value=0.000          contribution=+0.1000
    recurrence   value=1.000          contribution=+0.0000
    port_rarity  value=1.000          contribution=+0.0444
    watchlist    value=0.000          contribution=+0.0000
    threshold_floor value=1000000.000    contribution=+0.0000
    warmup       value=0.185          contribution=-0.0948
";
    assert_eq!(got, want, "\n--- got ---\n{got}");
}

#[test]
fn golden_regular_small_exchanges_are_a_beacon_not_a_burst() {
    let mut sim = Sim::new(DetectConfig::default());
    sim.background(T0, T0 + 1200 * S, 30, 10);
    sim.beacon();
    sim.finish();
    assert_eq!(sim.alerts.len(), 1, "{}", snapshot(&sim.alerts));
    let got = snapshot(&sim.alerts);
    let want = "\
beacon 10.0.0.23 -> 198.51.100.7:9000/17 start=100.000 end=509.000 out=4200 in=2600 peak_mbps=0.0 flows=0 occ=1 score=0.784 medium baseline_kbps=-1.0
    regularity   value=0.995          contribution=+0.2970
    size_regularity value=1.000          contribution=+0.1500
    interval     value=45.050         contribution=+0.0000
    rarity       value=1.000          contribution=+0.3500
    novelty      value=0.000          contribution=+0.1000
    watchlist    value=0.000          contribution=+0.0000
    events       value=10.000         contribution=+0.0000
    events_needed value=10.000         contribution=+0.0000
    regularity_needed value=0.650          contribution=+0.0000
    warmup       value=0.158          contribution=-0.1133
";
    assert_eq!(got, want, "\n--- got ---\n{got}");
}

#[test]
fn big_uploads_to_popular_endpoints_and_downloads_are_not_alerted() {
    let mut sim = Sim::new(DetectConfig::default());
    sim.background(T0, T0 + 900 * S, 40, 12);
    // 198.18.0.3 is contacted by every background host: an upload there is ordinary.
    sim.burst(
        T0 + 500 * S,
        "10.0.0.17",
        "198.18.0.3",
        443,
        6,
        30_000_000,
        10,
        2,
    );
    // A big download from a rare server: downstream, not a burst.
    for i in 0..20_000i64 {
        sim.pkt(
            T0 + 600 * S + i * S / 1000,
            "192.0.2.200",
            443,
            "10.0.0.18",
            51_000,
            6,
            1400,
        );
    }
    sim.finish();
    assert!(sim.alerts.is_empty(), "{}", snapshot(&sim.alerts));
    let st = sim.engine.detector().stats();
    assert!(st.suppressed_common >= 1, "{st:?}");
}

#[test]
fn repeated_bursts_say_so_and_score_recurrence() {
    let mut sim = Sim::new(DetectConfig::default());
    sim.background(T0, T0 + 1500 * S, 30, 10);
    for k in 0..4 {
        sim.burst(
            T0 + (300 + k * 240) * S,
            "10.0.1.5",
            "203.0.113.50",
            4433,
            17,
            5_000_000,
            3,
            1,
        );
    }
    sim.finish();
    let bursts: Vec<&Alert> = sim
        .alerts
        .iter()
        .filter(|a| a.kind.as_str() == "burst")
        .collect();
    assert_eq!(bursts.len(), 4, "{}", snapshot(&sim.alerts));
    let occ: Vec<u32> = bursts.iter().map(|a| a.occurrence).collect();
    assert_eq!(occ, [1, 2, 3, 4]);
    let rec = |a: &Alert| {
        a.reasons
            .iter()
            .find(|r| r.name == "recurrence")
            .unwrap()
            .contribution
    };
    assert!(rec(bursts[3]) > rec(bursts[1]) && rec(bursts[1]) > 0.0);
    // Ids are unique and stable.
    let mut ids: Vec<u64> = sim.alerts.iter().map(|a| a.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), sim.alerts.len());
}

#[test]
fn replay_is_deterministic_whatever_the_hash_seed() {
    let run = |seed: u64| {
        let mut sim = Sim::with_seed(DetectConfig::default(), seed);
        sim.background(T0, T0 + 700 * S, 30, 10);
        sim.burst(
            T0 + 400 * S,
            "10.0.0.9",
            "192.0.2.77",
            443,
            6,
            8_000_000,
            4,
            2,
        );
        sim.finish();
        snapshot(&sim.alerts)
    };
    let a = run(1);
    assert!(!a.is_empty());
    assert_eq!(a, run(1));
    assert_eq!(a, run(0xdead_beef));
}

#[test]
fn flows_with_both_or_neither_side_at_home_are_counted_not_scored() {
    let mut sim = Sim::new(DetectConfig::default());
    sim.burst(T0, "10.0.0.1", "10.0.0.2", 445, 6, 20_000_000, 5, 1);
    sim.burst(
        T0 + 100 * S,
        "198.18.5.5",
        "192.0.2.5",
        443,
        6,
        20_000_000,
        5,
        1,
    );
    sim.finish();
    assert!(sim.alerts.is_empty());
    let st = sim.engine.detector().stats();
    assert!(st.packets_internal > 0 && st.packets_transit > 0);
    assert_eq!(st.packets_up + st.packets_down, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever arrives, the detector's state stays within its caps and evictions are counted.
    #[test]
    fn detector_state_stays_within_caps(
        pkts in proptest::collection::vec((0i64..3_000, 0u8..40, 0u8..40, any::<bool>(), 40u32..1500), 1..600),
        caps in (1usize..6, 1usize..10, 1usize..10),
    ) {
        let cfg = DetectConfig { max_hosts: caps.0, max_pairs: caps.1, max_endpoints: caps.2, ..DetectConfig::default() };
        let mut engine = Engine::new(FlowConfig::default(), cfg, 5);
        let mut sorted = pkts.clone();
        sorted.sort_by_key(|p| p.0);
        for (t, h, e, up, len) in sorted {
            let home = ip(&format!("10.0.0.{h}"));
            let ext = ip(&format!("192.0.2.{e}"));
            let (src, dst) = if up { (home, ext) } else { (ext, home) };
            let meta = PacketMeta { src, dst, proto: 17, sport: 1000, dport: 2000, ip_len: len, ..PacketMeta::default() };
            engine.ingest(T0 + t * S / 10, &meta);
            let st = engine.detector().stats();
            prop_assert!(st.hosts <= caps.0 && st.pairs <= caps.1 && st.endpoints <= caps.2);
            while engine.pop_record().is_some() {}
            while engine.pop_alert().is_some() {}
        }
        engine.finish();
        let st = engine.detector().stats();
        prop_assert!(st.hosts <= caps.0 && st.pairs <= caps.1 && st.endpoints <= caps.2);
    }
}

#[test]
fn burst_records_give_every_segmented_burst_its_gate_outcome() {
    use burstwatch_engine::detect::BurstOutcome;
    use burstwatch_engine::AlertKind;
    let scenario = |record: bool| {
        let mut sim = Sim::new(DetectConfig::default());
        if record {
            sim.engine.detector_mut().record_bursts(10_000);
        }
        sim.background(T0, T0 + 900 * S, 40, 12);
        // Rare endpoint: alerted. Popular endpoint: common. Tiny burst: too small.
        sim.burst(
            T0 + 400 * S,
            "10.0.0.17",
            "192.0.2.44",
            8443,
            6,
            20_000_000,
            8,
            3,
        );
        sim.burst(
            T0 + 500 * S,
            "10.0.0.18",
            "198.18.0.3",
            443,
            6,
            30_000_000,
            10,
            2,
        );
        sim.finish();
        let mut recs = Vec::new();
        while let Some(r) = sim.engine.detector_mut().pop_burst() {
            recs.push(r);
        }
        (sim, recs)
    };
    let (off, none) = scenario(false);
    assert!(none.is_empty(), "recording is off unless enabled");
    let (sim, recs) = scenario(true);
    assert_eq!(
        off.alerts, sim.alerts,
        "recording does not change the alerts"
    );
    let st = sim.engine.detector().stats();
    let count = |o: BurstOutcome| recs.iter().filter(|r| r.outcome == o).count() as u64;
    assert_eq!(recs.len() as u64, st.bursts);
    assert_eq!(count(BurstOutcome::TooLong), st.bursts_too_long);
    assert_eq!(count(BurstOutcome::TooSmall), st.bursts_too_small);
    assert_eq!(count(BurstOutcome::NotUpstream), st.bursts_not_upstream);
    assert_eq!(count(BurstOutcome::CommonEndpoint), st.suppressed_common);
    assert!(count(BurstOutcome::CommonEndpoint) >= 1);
    let bursts: Vec<_> = sim
        .alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Burst)
        .collect();
    assert!(!bursts.is_empty());
    assert_eq!(count(BurstOutcome::Alerted), bursts.len() as u64);
    for a in bursts {
        let r = recs
            .iter()
            .find(|r| r.alert_id == Some(a.id))
            .expect("alerted burst has a record");
        assert_eq!(
            (r.src, r.dst, r.start_ns, r.bytes_up),
            (a.src, a.dst, a.start_ns, a.bytes_out)
        );
        assert_eq!(r.score, Some(a.score));
        assert_eq!(r.outcome, BurstOutcome::Alerted);
    }
    assert_eq!(sim.engine.detector().bursts_dropped(), 0);
}

/// The whole detection scenario set at once: background, bursts (one recurring), a beacon,
/// a popular upload, out-of-order timestamps.
fn mixed_scenario() -> Vec<(i64, PacketMeta)> {
    let mut sim = Sim::new(DetectConfig::default());
    sim.background(T0, T0 + 1300 * S, 60, 12);
    for k in 0..3 {
        sim.burst(
            T0 + (300 + k * 240) * S,
            "10.0.1.5",
            "203.0.113.50",
            4433,
            17,
            5_000_000,
            3,
            1,
        );
    }
    sim.burst(
        T0 + 500 * S,
        "10.0.0.9",
        "192.0.2.77",
        443,
        6,
        8_000_000,
        4,
        2,
    );
    sim.burst(
        T0 + 700 * S,
        "10.0.0.17",
        "198.18.0.3",
        443,
        6,
        30_000_000,
        10,
        2,
    );
    sim.beacon();
    let mut packets = std::mem::take(&mut sim.packets);
    packets.sort_by_key(|p| p.0);
    // A few timestamps step back (capture jitter across interfaces).
    for i in (1000..packets.len()).step_by(997) {
        packets.swap(i - 1, i);
    }
    packets
}

#[test]
fn host_shards_give_exactly_the_alerts_of_one_engine() {
    let packets = mixed_scenario();
    let mut one = Engine::new(FlowConfig::default(), DetectConfig::default(), 3);
    let (mut want, mut want_records) = (Vec::new(), Vec::new());
    for (ts, meta) in &packets {
        one.ingest(*ts, meta);
        while let Some(r) = one.pop_record() {
            want_records.push(format!("{:?}", r));
        }
        while let Some(a) = one.pop_alert() {
            want.push(a);
        }
    }
    one.finish();
    while let Some(r) = one.pop_record() {
        want_records.push(format!("{:?}", r));
    }
    while let Some(a) = one.pop_alert() {
        want.push(a);
    }
    want_records.sort();
    let kinds: Vec<&str> = want.iter().map(|a| a.kind.as_str()).collect();
    assert!(
        kinds.contains(&"burst") && kinds.contains(&"beacon") && want.len() >= 4,
        "{}",
        snapshot(&want)
    );
    let want_stats = one.detector().stats();
    for (n, batch) in [(1, 1024), (2, 1024), (3, 1), (4, 333), (7, 50_000)] {
        let (got, records, stats) = sharded(&packets, n, batch, FlowConfig::default());
        // Every field, exactly (scores, reasons, detection times, prevalence, first contact).
        assert_eq!(format!("{got:?}"), format!("{want:?}"), "{n} shards");
        let differ: Vec<_> = records
            .iter()
            .zip(&want_records)
            .filter(|(a, b)| a != b)
            .take(2)
            .collect();
        assert!(
            differ.is_empty() && records.len() == want_records.len(),
            "{n} shards: flow records differ ({} vs {}): {differ:?}",
            records.len(),
            want_records.len()
        );
        assert_eq!(stats, want_stats, "{n} shards: counters");
    }
}
