//! Prevalence shared with other sensors, through the scorer's sans-IO interface: contacts come
//! out for the shell to publish, a candidate whose hold passed asks a question and waits for
//! its answer (or its deadline), and the answer decides rarity.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use burstwatch_engine::detect::{Contact, GlobalConfig, GlobalPrevalence, GlobalQuery};
use burstwatch_engine::{Alert, DetectConfig, Detector};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;
const WAIT: i64 = 5 * S;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(s: &str) -> [u8; 16] {
    match ip(s) {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// A detector with the shared view on, fed 8 MB in 4 s from 10.0.0.51 to 203.0.113.9 after
/// `lead` seconds of a subscriber polling another endpoint.
fn fed(lead: i64) -> Detector {
    let mut d = Detector::new(DetectConfig::default(), 9);
    d.scorer_mut().enable_global(GlobalConfig {
        answer_wait_ns: WAIT,
    });
    for sec in 0..lead {
        d.ingest(
            T0 + sec * S,
            ip("10.0.0.7"),
            ip("198.51.100.4"),
            40_000,
            443,
            6,
            200,
            1,
        );
    }
    let t0 = T0 + lead * S;
    for i in 0..5714i64 {
        let t = t0 + i * 4 * S / 5714;
        d.ingest(
            t,
            ip("10.0.0.51"),
            ip("203.0.113.9"),
            50_000,
            443,
            6,
            1400,
            2,
        );
    }
    d
}

/// Move packet time a second at a time up to `until` (seconds after T0), collecting alerts and
/// questions; `answer` answers each question as it comes (or not, with `None`).
fn run(
    d: &mut Detector,
    until: i64,
    mut answer: impl FnMut(&GlobalQuery) -> Option<GlobalPrevalence>,
) -> (Vec<Alert>, Vec<GlobalQuery>) {
    let (mut alerts, mut asked) = (Vec::new(), Vec::new());
    let from = d.scorer().now_ns() / S - T0 / S;
    for sec in from..=until {
        d.advance_to(T0 + sec * S);
        while let Some(q) = d.scorer_mut().poll_query() {
            asked.push(q);
            if let Some(a) = answer(&q) {
                d.scorer_mut().answer(q.id, a);
            }
        }
        while let Some(a) = d.pop_alert() {
            alerts.push(a);
        }
    }
    (alerts, asked)
}

#[test]
fn contacts_name_subscriber_endpoint_and_prefix_in_packet_time() {
    let mut d = fed(3);
    let mut contacts: Vec<Contact> = Vec::new();
    d.scorer_mut().drain_contacts(&mut contacts);
    let burst: Vec<&Contact> = contacts
        .iter()
        .filter(|c| c.endpoint == key("203.0.113.9"))
        .collect();
    assert!(!burst.is_empty() && burst.len() <= 5, "{burst:?}");
    for c in &burst {
        assert_eq!(c.subscriber, key("10.0.0.51"));
        assert_eq!((c.prefix, c.prefix_len), (key("203.0.113.0"), 24));
        assert!(c.ts_ns >= T0 + 3 * S && c.ts_ns < T0 + 7 * S);
    }
    assert!(contacts
        .iter()
        .any(|c| c.subscriber == key("10.0.0.7") && c.endpoint == key("198.51.100.4")));
    let stats = d.scorer().global_stats().unwrap();
    assert_eq!(stats.contacts, contacts.len() as u64);
    contacts.clear();
    d.scorer_mut().drain_contacts(&mut contacts);
    assert!(contacts.is_empty(), "drained once");
}

#[test]
fn an_endpoint_rare_here_but_common_over_all_sensors_is_not_alerted() {
    let mut d = fed(3);
    let (alerts, asked) = run(&mut d, 120, |_| {
        Some(GlobalPrevalence {
            prevalence: 4,
            prefix_prevalence: 4,
            sensors: 2,
            ..GlobalPrevalence::default()
        })
    });
    let q = asked
        .iter()
        .find(|q| q.endpoint == key("203.0.113.9"))
        .unwrap();
    let hold = DetectConfig::default().alert_hold_ns;
    assert!(q.at_ns >= T0 + 7 * S + hold - S && q.at_ns <= T0 + 9 * S + hold);
    assert_eq!(q.since_ns, q.at_ns - DetectConfig::default().lookback_ns);
    assert!(
        alerts.iter().all(|a| a.dst != ip("203.0.113.9")),
        "{alerts:#?}"
    );
    assert!(d.stats().suppressed_common >= 1);
    assert_eq!(
        d.scorer().global_stats().unwrap().answered,
        asked.len() as u64
    );
}

#[test]
fn an_answer_is_shown_beside_the_local_counts() {
    let mut d = fed(3);
    let (alerts, _) = run(&mut d, 120, |_| {
        Some(GlobalPrevalence {
            prevalence: 2,
            prefix_prevalence: 3,
            sensors: 2,
            ..GlobalPrevalence::default()
        })
    });
    let a = alerts
        .iter()
        .find(|a| a.dst == ip("203.0.113.9"))
        .expect("rare over all sensors too");
    let e = &a.endpoint;
    assert_eq!(
        (e.prevalence, e.prefix_prevalence),
        (2, 3),
        "the larger counts"
    );
    let shared = e.shared.unwrap();
    assert_eq!(
        (shared.local_prevalence, shared.local_prefix_prevalence),
        (1, 1)
    );
    assert_eq!(shared.global.unwrap().sensors, 2);
}

#[test]
fn without_an_answer_the_candidate_waits_its_deadline_then_scores_locally_uncertain() {
    let mut d = fed(3);
    let hold = DetectConfig::default().alert_hold_ns / S;
    // Up to just before the deadline: nothing yet.
    let (alerts, asked) = run(&mut d, 7 + hold + WAIT / S - 2, |_| None);
    assert!(asked.iter().any(|q| q.endpoint == key("203.0.113.9")));
    assert!(alerts.iter().all(|a| a.dst != ip("203.0.113.9")));
    assert_eq!(d.scorer().global_stats().unwrap().waiting, 1);
    let (alerts, _) = run(&mut d, 7 + hold + WAIT / S + 3, |_| None);
    let a = alerts
        .iter()
        .find(|a| a.dst == ip("203.0.113.9"))
        .expect("scored with the local view");
    assert!(!a.endpoint.rarity_certain);
    let shared = a.endpoint.shared.unwrap();
    assert!(shared.global.is_none());
    assert_eq!(a.endpoint.prevalence, 1);
    let stats = d.scorer().global_stats().unwrap();
    assert_eq!((stats.unanswered, stats.waiting), (1, 0));
    // A late answer for it is ignored.
    d.scorer_mut().answer(1, GlobalPrevalence::default());
    assert!(d.pop_alert().is_none());
}

#[test]
fn a_candidate_asked_late_still_waits_for_its_answer() {
    // The burst's hold ends while packet time is far ahead (a gap in the traffic, or a
    // candidate made late): it still gets the whole wait from the moment it is asked.
    let mut d = fed(3);
    d.advance_to(T0 + 600 * S);
    let q = d.scorer_mut().poll_query().expect("asked");
    assert!(d.pop_alert().is_none());
    d.advance_to(T0 + 600 * S + WAIT - S);
    assert!(d.pop_alert().is_none(), "still waiting");
    d.scorer_mut().answer(
        q.id,
        GlobalPrevalence {
            prevalence: 1,
            prefix_prevalence: 1,
            sensors: 1,
            ..GlobalPrevalence::default()
        },
    );
    let a = d.pop_alert().expect("scored on the answer");
    assert!(a.endpoint.shared.unwrap().global.is_some());
}

#[test]
fn at_the_end_waiting_candidates_are_asked_then_given_up() {
    let mut d = fed(3);
    d.finish();
    let q = d.scorer_mut().poll_query().expect("asked at the finish");
    assert_eq!(q.endpoint, key("203.0.113.9"));
    assert!(d.pop_alert().is_none());
    d.scorer_mut().give_up_waiting();
    let a = d.pop_alert().expect("scored locally");
    assert!(!a.endpoint.rarity_certain);
    assert!(d.scorer_mut().poll_query().is_none(), "question withdrawn");
}

#[test]
fn local_only_detectors_are_unchanged() {
    let mut d = Detector::new(DetectConfig::default(), 9);
    let t0 = T0 + 3 * S;
    for i in 0..5714i64 {
        let t = t0 + i * 4 * S / 5714;
        d.ingest(
            t,
            ip("10.0.0.51"),
            ip("203.0.113.9"),
            50_000,
            443,
            6,
            1400,
            2,
        );
    }
    d.advance_to(T0 + 120 * S);
    let a = d.pop_alert().unwrap();
    assert!(a.endpoint.shared.is_none());
    assert!(d.scorer().global_stats().is_none());
    assert!(d.scorer_mut().poll_query().is_none());
}
