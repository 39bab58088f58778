//! Endpoint prevalence at prefix level: an address of shared infrastructure (many addresses of
//! one /24, each reached by few subscribers, the prefix by many) is not rare, though the
//! address alone is; an address alone in its prefix still is. Alerts show both counts.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use burstwatch_engine::{Alert, DetectConfig, Detector};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// 30 subscribers each talk to their own address of 198.18.7.0/24 (one subscriber per address,
/// thirty for the prefix), then 10.0.0.50 uploads 8 MB in 4 s to another address of that /24
/// and 10.0.0.51 the same to 203.0.113.9, alone in its /24.
fn run(cfg: DetectConfig) -> (Vec<Alert>, Detector) {
    let mut d = Detector::new(cfg, 3);
    let mut alerts = Vec::new();
    // Bursts only: the background's polls every 30 s may well be beacons.
    let mut pump = |d: &mut Detector| {
        while let Some(a) = d.pop_alert() {
            if a.kind.as_str() == "burst" {
                alerts.push(a);
            }
        }
    };
    for sec in 0..400i64 {
        let h = sec % 30;
        let home = ip(&format!("10.0.1.{}", 10 + h));
        let ext = ip(&format!("198.18.7.{}", 10 + h));
        d.ingest(T0 + sec * S, home, ext, 40_000, 443, 6, 300, h as u32);
        d.ingest(
            T0 + sec * S + S / 50,
            ext,
            home,
            443,
            40_000,
            6,
            1400,
            h as u32,
        );
        pump(&mut d);
    }
    for (k, (home, ext)) in [("10.0.0.50", "198.18.7.200"), ("10.0.0.51", "203.0.113.9")]
        .into_iter()
        .enumerate()
    {
        let t0 = T0 + (420 + 30 * k as i64) * S;
        for i in 0..5714i64 {
            let t = t0 + i * 4 * S / 5714;
            d.ingest(t, ip(home), ip(ext), 50_000, 443, 6, 1400, 900 + k as u32);
        }
        pump(&mut d);
    }
    d.advance_to(T0 + 700 * S);
    pump(&mut d);
    d.finish();
    pump(&mut d);
    (alerts, d)
}

#[test]
fn an_address_of_a_prefix_many_subscribers_reach_is_not_rare() {
    let (alerts, d) = run(DetectConfig::default());
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.dst, ip("203.0.113.9"));
    let e = &a.endpoint;
    assert_eq!(
        (e.prevalence, e.prefix_len, e.prefix_prevalence),
        (1, 24, 1)
    );
    assert!(!e.prefix_popular);
    assert!(d.stats().suppressed_common >= 1);

    // Counted per address only (a /32 prefix), the shared-infrastructure address is rare.
    let cfg = DetectConfig {
        prevalence_prefix_v4: 32,
        ..DetectConfig::default()
    };
    let (alerts, _) = run(cfg);
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    let shared = alerts.iter().find(|a| a.dst == ip("198.18.7.200")).unwrap();
    assert_eq!(shared.endpoint.prefix_prevalence, 1);
}

#[test]
fn prefixes_survive_a_snapshot_and_are_rebuilt_from_an_older_one() {
    use burstwatch_engine::detect::state::LearnedState;
    let (_, d) = run(DetectConfig::default());
    let saved = d.learned_state();
    let mut v = serde_json::to_value(&saved).unwrap();
    assert!(!v["prefixes"].as_array().unwrap().is_empty());
    // The same alerts from a restored detector: the prefix is known to be common at once.
    let check = |state: LearnedState| {
        let mut d = Detector::new(DetectConfig::default(), 9);
        d.restore(state).unwrap();
        let t0 = T0 + 2000 * S;
        for i in 0..5714i64 {
            let t = t0 + i * 4 * S / 5714;
            d.ingest(
                t,
                ip("10.0.0.52"),
                ip("198.18.7.201"),
                50_000,
                443,
                6,
                1400,
                7,
            );
        }
        d.advance_to(t0 + 200 * S);
        d.finish();
        let mut n = 0;
        while let Some(a) = d.pop_alert() {
            n += usize::from(a.kind.as_str() == "burst");
        }
        (n, d.stats().suppressed_common)
    };
    let back: LearnedState = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(check(back), (0, 1));
    // A version 2 file has no prefixes: they are counted again from its endpoints.
    v["version"] = 2.into();
    v.as_object_mut().unwrap().remove("prefixes");
    let old: LearnedState = serde_json::from_value(v).unwrap();
    assert_eq!(check(old), (0, 1));
}
