//! The burst threshold is relative to the subscriber: its own baseline, capped by what its
//! uplink has shown it can carry, over a low absolute floor. Slow bursts of quiet subscribers
//! are found; transfers that are not bursts (calls, backups, uploads to popular services)
//! still are not alerted at the lower floor. A subscriber's own bursts and what follows them to
//! the same endpoint do not raise its baseline; uploads to popular services still do.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use burstwatch_engine::{Alert, DetectConfig, Detector, ThresholdBasis};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One packet: time, source, destination, ports, protocol, IP length, flow hash.
type Packet = (i64, IpAddr, IpAddr, u16, u16, u8, u32, u32);

/// Packets collected, then fed in time order.
struct Feed {
    packets: Vec<Packet>,
}

impl Feed {
    fn new() -> Self {
        Self {
            packets: Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pkt(&mut self, t: i64, src: &str, sport: u16, dst: &str, dport: u16, len: u32, flow: u32) {
        self.packets
            .push((t, ip(src), ip(dst), sport, dport, 6, len, flow));
    }

    /// `hosts` subscribers (10.0.9.x) each exchange a little with the popular servers
    /// 198.18.0.1..=`servers` every few seconds over `[from, to)`: those servers are popular.
    fn background(&mut self, from: i64, to: i64, hosts: u32, servers: u32) {
        let mut t = from;
        let mut k = 0u32;
        while t < to {
            let h = format!("10.0.9.{}", 10 + k % hosts);
            let s = format!("198.18.0.{}", 1 + (k / 3) % servers);
            self.pkt(t, &h, 40_000, &s, 443, 200, k);
            self.pkt(t + S / 50, &s, 443, &h, 40_000, 1400, k);
            t += S / 4;
            k += 1;
        }
    }

    /// `bytes` upstream from `host` to `dst` over `secs` seconds in 1400-byte packets (one
    /// flow), with an ACK now and then.
    fn upload(&mut self, start: i64, host: &str, dst: &str, bytes: u64, secs: f64, flow: u32) {
        let n = bytes / 1400;
        for i in 0..n {
            let t = start + (i as f64 * secs * S as f64 / n as f64) as i64;
            self.pkt(t, host, 50_000, dst, 443, 1400, flow);
            if i % 20 == 0 {
                self.pkt(t + S / 100, dst, 443, host, 50_000, 52, flow);
            }
        }
    }

    fn run(mut self, cfg: DetectConfig) -> (Vec<Alert>, Detector) {
        self.packets.sort_by_key(|p| p.0);
        let mut d = Detector::new(cfg, 7);
        let mut alerts = Vec::new();
        for &(t, s, dst, sp, dp, proto, len, flow) in &self.packets {
            d.ingest(t, s, dst, sp, dp, proto, len, flow);
            while let Some(a) = d.pop_alert() {
                alerts.push(a);
            }
        }
        d.finish();
        while let Some(a) = d.pop_alert() {
            alerts.push(a);
        }
        (alerts, d)
    }
}

fn bursts_to<'a>(alerts: &'a [Alert], dst: &str) -> Vec<&'a Alert> {
    alerts
        .iter()
        .filter(|a| a.kind.as_str() == "burst" && a.dst == ip(dst))
        .collect()
}

#[test]
fn a_quiet_subscribers_3_mbit_upload_of_10_mb_to_a_rare_endpoint_is_a_burst() {
    let mut f = Feed::new();
    f.background(T0, T0 + 900 * S, 20, 6);
    // 10.0.0.50 says nothing, then uploads 10 MB at 3 Mbit/s (about 27 s).
    f.upload(T0 + 500 * S, "10.0.0.50", "192.0.2.9", 10_000_000, 26.7, 1);
    let (alerts, _) = f.run(DetectConfig::default());
    let b = bursts_to(&alerts, "192.0.2.9");
    assert_eq!(b.len(), 1, "{alerts:#?}");
    let a = b[0];
    assert!(a.bytes_out >= 9_900_000, "{a:?}");
    // The threshold used, and why: the floor (the subscriber has no baseline).
    let t = a.rate_threshold.unwrap();
    assert_eq!(t.basis, ThresholdBasis::Floor);
    assert_eq!(t.bps, 1_000_000.0);
    let r = a
        .reasons
        .iter()
        .find(|r| r.name == "threshold_floor")
        .unwrap();
    assert_eq!((r.value, r.contribution), (1_000_000.0, 0.0));
    let sum: f64 = a.reasons.iter().map(|r| r.contribution).sum();
    assert!((sum - a.score).abs() < 1e-9, "contributions still add up");
}

#[test]
fn later_smaller_bursts_of_a_series_near_the_floor_are_found() {
    let mut f = Feed::new();
    f.background(T0, T0 + 1800 * S, 20, 6);
    // A first big burst, then ever smaller ones every 4 minutes, the last ones about 2.1 MB
    // at 3.7 Mbit/s.
    let series = [
        (12_000_000u64, 20e6),
        (6_000_000, 8e6),
        (2_100_000, 3.7e6),
        (2_100_000, 3.7e6),
        (2_050_000, 3.7e6),
    ];
    for (k, &(bytes, bps)) in series.iter().enumerate() {
        let secs = bytes as f64 * 8.0 / bps;
        let at = T0 + (400 + 240 * k as i64) * S;
        f.upload(at, "10.0.1.5", "203.0.113.50", bytes, secs, k as u32);
    }
    let (alerts, _) = f.run(DetectConfig::default());
    let b = bursts_to(&alerts, "203.0.113.50");
    assert_eq!(b.len(), series.len(), "{alerts:#?}");
    let occ: Vec<u32> = b.iter().map(|a| a.occurrence).collect();
    assert_eq!(occ, [1, 2, 3, 4, 5]);
}

#[test]
fn a_busy_subscriber_on_a_slow_uplink_bursts_against_its_uplink_peak() {
    let mut f = Feed::new();
    f.background(T0, T0 + 1000 * S, 20, 6);
    // 10.0.2.7 keeps about 60 kB/s going upstream to two popular servers (its p95 comes to
    // about 69 kB/s, four times that is 2.2 Mbit/s) and once filled its 2.9 Mbit/s uplink for a
    // second. That second, not the burst's own, sets the bar: a second is judged against the
    // subscriber's seconds before it.
    for sec in 0..900i64 {
        for k in 0..40i64 {
            let t = T0 + sec * S + k * S / 40;
            let s = if k % 2 == 0 {
                "198.18.0.1"
            } else {
                "198.18.0.2"
            };
            f.pkt(t, "10.0.2.7", 41_000, s, 443, 1500, 100);
        }
    }
    f.upload(T0 + 200 * S, "10.0.2.7", "198.18.0.3", 300_000, 0.9, 101);
    // Then 3 MB at 2.2 Mbit/s (on top) to a rare endpoint: above half its uplink peak.
    f.upload(T0 + 600 * S, "10.0.2.7", "192.0.2.77", 3_000_000, 11.0, 102);
    let (alerts, _) = f.run(DetectConfig::default());
    let b = bursts_to(&alerts, "192.0.2.77");
    assert_eq!(b.len(), 1, "{alerts:#?}");
    let t = b[0].rate_threshold.unwrap();
    assert_eq!(t.basis, ThresholdBasis::UplinkPeak, "{t:?}");
    // Half of second 200's 360 kB; the burst's own first second (about 333 kB) is not in it.
    assert!((t.bps - 1_440_000.0).abs() < 30_000.0, "{t:?}");
    assert!(b[0]
        .reasons
        .iter()
        .any(|r| r.name == "threshold_uplink_peak"));
    // Its steady traffic to the popular servers made no alert.
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
}

#[test]
fn calls_backups_and_uploads_to_popular_services_stay_quiet_at_the_low_floor() {
    let mut f = Feed::new();
    f.background(T0, T0 + 1500 * S, 20, 6);
    // A 2 Mbit/s video call both ways for 8 minutes with a rare peer.
    for i in 0..(480 * 50) {
        let t = T0 + 300 * S + i * S / 50;
        f.pkt(t, "10.0.3.1", 50_000, "192.0.2.30", 3478, 5000, 1);
        f.pkt(t + S / 100, "192.0.2.30", 3478, "10.0.3.1", 50_000, 5000, 1);
    }
    // A 3 Mbit/s backup for 10 minutes to a rare endpoint: a sustained transfer.
    f.upload(
        T0 + 400 * S,
        "10.0.3.2",
        "192.0.2.31",
        225_000_000,
        600.0,
        2,
    );
    // 20 MB at 2 Mbit/s to a popular server.
    f.upload(T0 + 500 * S, "10.0.3.3", "198.18.0.2", 20_000_000, 80.0, 3);
    // 8 MB at 1.6 Mbit/s to a popular server.
    f.upload(T0 + 700 * S, "10.0.3.4", "198.18.0.4", 8_000_000, 40.0, 4);
    let (alerts, d) = f.run(DetectConfig::default());
    assert!(alerts.is_empty(), "{alerts:#?}");
    let st = d.stats();
    assert!(st.bursts_too_long >= 1, "{st:?}");
    assert!(st.suppressed_common >= 1, "{st:?}");
}

/// A little ordinary upstream from `host` to the popular servers (a few kB every other
/// second over `[from, to)`): it warms the subscriber's baseline without raising it.
fn chatter(f: &mut Feed, host: &str, from: i64, to: i64) {
    let mut t = from;
    let mut k = 0u32;
    while t < to {
        f.pkt(t, host, 42_000, "198.18.0.3", 443, 1200, 900 + k % 3);
        f.pkt(
            t + S / 20,
            "198.18.0.3",
            443,
            host,
            42_000,
            600,
            900 + k % 3,
        );
        t += 2 * S;
        k += 1;
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// An adversary sends a series of bursts to its rare controller and, between them, slower
    /// transfers below the floor to the same endpoint: neither its bursts nor those transfers
    /// may teach its baseline that its bursts are normal, so every burst above the gates is
    /// alerted, the later and smaller ones too.
    #[test]
    fn every_burst_of_a_series_with_slower_transfers_between_is_alerted(
        bursts in proptest::collection::vec(
            // (rate bit/s, share of the volume range, seconds after the burst before a slow
            // transfer, its rate bit/s, its seconds, seconds of silence after it)
            (1.6e6f64..12e6, 0.0f64..1.0, 10i64..40, 0.45e6f64..0.9e6, 20.0f64..60.0, 10i64..120),
            2..6,
        ),
    ) {
        let host = "10.0.1.9";
        let ctl = "203.0.113.77";
        let mut f = Feed::new();
        let mut windows = Vec::new();
        let mut t = T0 + 300 * S;
        for (k, &(bps, share, gap, slow_bps, slow_secs, rest)) in bursts.iter().enumerate() {
            // 2.2 MB up to what 45 s at this rate carries (bursts last at most 60 s).
            let most = bps * 45.0 / 8.0;
            let bytes = (2.2e6 + share * (most - 2.2e6).max(0.0)) as u64;
            let secs = bytes as f64 * 8.0 / bps;
            f.upload(t, host, ctl, bytes, secs, 10 + k as u32);
            let end = t + (secs * S as f64) as i64;
            windows.push((t, end));
            let slow_at = end + gap * S;
            let slow_bytes = (slow_bps / 8.0 * slow_secs) as u64;
            f.upload(slow_at, host, ctl, slow_bytes, slow_secs, 100 + k as u32);
            t = slow_at + ((slow_secs * S as f64) as i64) + rest * S;
        }
        let until = t + 200 * S;
        f.background(T0, until, 20, 6);
        chatter(&mut f, host, T0, until);
        let (alerts, _) = f.run(DetectConfig::default());
        let b = bursts_to(&alerts, ctl);
        let found: Vec<bool> = windows
            .iter()
            .map(|&(from, to)| {
                b.iter()
                    .any(|a| a.start_ns <= to + S && a.end_ns >= from - S)
            })
            .collect();
        proptest::prop_assert!(found.iter().all(|&x| x), "found {found:?} of {windows:?}: {b:#?}");
        // The slower transfers are below the floor: not bursts.
        proptest::prop_assert_eq!(b.len(), windows.len(), "{:#?}", b);
    }
}

#[test]
fn uploads_to_a_popular_endpoint_still_raise_the_baseline() {
    let mut f = Feed::new();
    f.background(T0, T0 + 1200 * S, 20, 6);
    // 10.0.4.2 uploads to a popular server at about 0.9 Mbit/s for ten minutes (below the
    // floor: never a burst), the kind of steady upload a cloud sync or a call makes; 10.0.4.3,
    // on the same line, says nothing.
    f.upload(T0 + 100 * S, "10.0.4.2", "198.18.0.1", 67_500_000, 600.0, 1);
    // Once it filled its uplink for a second (1.5 MB: a burst too small for a candidate).
    f.upload(T0 + 400 * S, "10.0.4.2", "198.18.0.2", 1_500_000, 0.9, 4);
    chatter(&mut f, "10.0.4.3", T0, T0 + 1200 * S);
    // Then both send 3 MB at 2.4 Mbit/s to a rare endpoint, and later 12 MB at 24 Mbit/s.
    for (host, dst) in [("10.0.4.2", "192.0.2.40"), ("10.0.4.3", "192.0.2.41")] {
        f.upload(T0 + 760 * S, host, dst, 3_000_000, 10.0, 2);
        f.upload(T0 + 900 * S, host, dst, 12_000_000, 4.0, 3);
    }
    let (alerts, _) = f.run(DetectConfig::default());
    // The busy subscriber's baseline learned its popular upload: the 2.4 Mbit/s transfer is
    // ordinary for it, and its 24 Mbit/s burst is measured against what it has shown. The
    // 2.4 Mbit/s seconds, ordinary, pushed its p95 up to about 2.8 Mbit/s, so that by then
    // four times its baseline is above half its uplink peak (1.6 MB in one second), which
    // sets the bar.
    let busy = bursts_to(&alerts, "192.0.2.40");
    assert_eq!(busy.len(), 1, "{alerts:#?}");
    let t = busy[0].rate_threshold.unwrap();
    assert_eq!(t.basis, ThresholdBasis::UplinkPeak, "{t:?}");
    assert!(t.bps > 2.5e6, "{t:?}");
    let baseline = busy[0].baseline_bps.unwrap();
    assert!(
        baseline > 2e6,
        "the popular upload and the 2.4 Mbit/s one: {baseline}"
    );
    // The quiet one is measured against the floor: both of its transfers are bursts.
    let quiet = bursts_to(&alerts, "192.0.2.41");
    assert_eq!(quiet.len(), 2, "{alerts:#?}");
    assert!(quiet
        .iter()
        .all(|a| a.rate_threshold.unwrap().bps == 1_000_000.0));
    // The popular upload itself made no alert.
    assert_eq!(alerts.len(), 3, "{alerts:#?}");
}
