//! Endpoint prevalence per autonomous system (with an ASN database): alerts say how many
//! subscribers reached any endpoint of the endpoint's AS; the count is context, not a gate;
//! it is counted again from the endpoints after a restart from a state file.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use burstwatch_engine::detect::Enrich;
use burstwatch_engine::{Alert, DetectConfig, Detector};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// 198.18.0.0/15 is AS 64500, 203.0.113.0/24 AS 64501; nothing else has an AS.
struct TwoAses;

impl Enrich for TwoAses {
    fn lookup(&self, ip: IpAddr) -> (Option<u32>, Option<String>) {
        match ip {
            IpAddr::V4(v4) if v4.octets()[..2] == [198, 18] || v4.octets()[..2] == [198, 19] => {
                (Some(64500), None)
            }
            IpAddr::V4(v4) if v4.octets()[..3] == [203, 0, 113] => (Some(64501), None),
            _ => (None, None),
        }
    }
}

fn pump(d: &mut Detector, alerts: &mut Vec<Alert>) {
    while let Some(a) = d.pop_alert() {
        if a.kind.as_str() == "burst" {
            alerts.push(a);
        }
    }
}

/// Five subscribers each poll their own server of AS 64500, every one in a /24 of its own
/// (each address and each prefix rare).
fn background(d: &mut Detector, from_sec: i64, to_sec: i64) {
    for sec in from_sec..to_sec {
        let h = sec % 5;
        let home = ip(&format!("10.0.1.{}", 10 + h));
        let ext = ip(&format!("198.18.{}.10", 10 + h));
        d.ingest(T0 + sec * S, home, ext, 40_000, 443, 6, 300, h as u32);
        d.ingest(
            T0 + sec * S + S / 50,
            ext,
            home,
            443,
            40_000,
            6,
            900,
            h as u32,
        );
    }
}

/// 8 MB in 4 s from `home` to `ext`, starting at second `at`.
fn burst(d: &mut Detector, at: i64, home: &str, ext: &str, flow: u32) {
    for i in 0..5714i64 {
        let t = T0 + at * S + i * 4 * S / 5714;
        d.ingest(t, ip(home), ip(ext), 50_000, 443, 6, 1400, flow);
    }
}

#[test]
fn alerts_count_the_subscribers_of_the_endpoints_autonomous_system() {
    let mut d = Detector::new(DetectConfig::default(), 3);
    d.set_enrich(Box::new(TwoAses));
    let mut alerts = Vec::new();
    background(&mut d, 0, 200);
    burst(&mut d, 210, "10.0.0.50", "198.19.99.9", 900);
    burst(&mut d, 240, "10.0.0.51", "203.0.113.9", 901);
    burst(&mut d, 270, "10.0.0.52", "192.0.2.77", 902);
    d.advance_to(T0 + 400 * S);
    pump(&mut d, &mut alerts);
    d.finish();
    pump(&mut d, &mut alerts);
    alerts.sort_by_key(|a| a.start_ns);
    let got: Vec<_> = alerts
        .iter()
        .map(|a| (a.dst, a.endpoint.asn, a.endpoint.asn_prevalence))
        .collect();
    assert_eq!(
        got,
        [
            // Five subscribers of the background and the one bursting: the AS is not a gate,
            // the endpoint and its /24 are rare, so it is alerted.
            (ip("198.19.99.9"), Some(64500), Some((6, false))),
            (ip("203.0.113.9"), Some(64501), Some((1, false))),
            // No AS in the database: no count.
            (ip("192.0.2.77"), None, None),
        ],
        "{alerts:#?}"
    );
}

#[test]
fn the_counts_come_back_after_a_restart_from_the_learned_state() {
    let mut d = Detector::new(DetectConfig::default(), 3);
    d.set_enrich(Box::new(TwoAses));
    background(&mut d, 0, 200);
    let state = d.learned_state();
    // The file is JSON; an endpoint's AS travels with it.
    let text = serde_json::to_string(&state).unwrap();
    assert!(text.contains("\"asn\":64500"), "{text}");

    let mut d = Detector::new(DetectConfig::default(), 3);
    d.restore(serde_json::from_str(&text).unwrap()).unwrap();
    d.set_enrich(Box::new(TwoAses));
    // A new process: the five background subscribers are counted from the restored endpoints.
    let mut alerts = Vec::new();
    burst(&mut d, 210, "10.0.0.50", "198.19.99.9", 900);
    d.advance_to(T0 + 400 * S);
    d.finish();
    pump(&mut d, &mut alerts);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].endpoint.asn_prevalence, Some((6, false)));
}
