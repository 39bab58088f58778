//! Unit tests of the matching rules.
#![allow(clippy::unwrap_used)]
use super::*;
use crate::truth::ScenarioKind;

fn ev(s: f64, e: f64) -> TruthEvent {
    TruthEvent {
        start_ts: s,
        end_ts: e,
        bytes_out: 1,
        bytes_in: 1,
        src: None,
        cut: false,
        should_detect: true,
    }
}

fn sc(
    id: &str,
    kind: ScenarioKind,
    src: &str,
    dst: &str,
    events: Vec<TruthEvent>,
) -> TruthScenario {
    TruthScenario {
        id: id.into(),
        kind,
        expect: kind.expect(),
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        dst_port: 443,
        proto: "tcp".into(),
        flows: 1,
        part_of: None,
        mission: None,
        should_detect: kind.expect() != Expect::None,
        tags: Vec::new(),
        polls: None,
        period_s: None,
        jitter: None,
        events,
    }
}

fn alert(kind: &str, src: &str, dst: &str, s: f64, e: f64, d: f64) -> AlertRecord {
    AlertRecord {
        id: format!("{kind}-{s}"),
        kind: kind.into(),
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        dst_port: 443,
        start_ts: s,
        end_ts: e,
        detected_ts: d,
        score: 0.7,
    }
}

fn truth() -> Truth {
    let mut beacon_events: Vec<TruthEvent> = (0..14)
        .map(|k| ev(1000.0 + 20.0 * f64::from(k), 1000.5 + 20.0 * f64::from(k)))
        .collect();
    beacon_events.sort_by(|a, b| a.start_ts.total_cmp(&b.start_ts));
    let mut np = sc(
        "s0005",
        ScenarioKind::DecoyNewPopular,
        "10.0.0.9",
        "192.0.2.9",
        vec![ev(900.0, 905.0), ev(910.0, 915.0)],
    );
    np.events[1].src = Some("10.0.0.10".parse().unwrap());
    Truth {
        seed: 1,
        subscribers: 10,
        start_ts: 0.0,
        end_ts: 2000.0,
        scenarios: vec![
            sc(
                "s0001",
                ScenarioKind::BurstSingle,
                "10.0.0.1",
                "192.0.2.1",
                vec![ev(500.0, 510.0)],
            ),
            sc(
                "s0002",
                ScenarioKind::BurstPeriodic,
                "10.0.0.2",
                "192.0.2.2",
                vec![ev(600.0, 605.0), ev(700.0, 705.0), ev(800.0, 805.0)],
            ),
            sc(
                "s0003",
                ScenarioKind::Beacon,
                "10.0.0.3",
                "192.0.2.3",
                beacon_events,
            ),
            sc(
                "s0004",
                ScenarioKind::DecoyUploadPopular,
                "10.0.0.4",
                "198.51.100.1",
                vec![ev(400.0, 420.0)],
            ),
            np,
        ],
    }
}

#[test]
fn recall_precision_delay_and_attribution() {
    let t = truth();
    let alerts = vec![
        // Detects s0001 (delay 513 - 510 = 3).
        alert("burst", "10.0.0.1", "192.0.2.1", 500.2, 509.0, 513.0),
        // Detects s0002#1 and #3 (delays 5 and 1); #2 missed.
        alert("burst", "10.0.0.2", "192.0.2.2", 600.0, 605.0, 610.0),
        alert("burst", "10.0.0.2", "192.0.2.2", 800.0, 805.0, 806.0),
        // Second alert of the same event: still a TP, delay uses the earliest.
        alert("burst", "10.0.0.2", "192.0.2.2", 600.0, 605.0, 640.0),
        // Beacon detected at 1220 (delay 220).
        alert("beacon", "10.0.0.3", "192.0.2.3", 1000.0, 1220.0, 1220.0),
        // Burst on the beacon pair: FP, wrong kind.
        alert("burst", "10.0.0.3", "192.0.2.3", 1100.0, 1110.0, 1113.0),
        // Decoys.
        alert("burst", "10.0.0.4", "198.51.100.1", 401.0, 419.0, 423.0),
        alert("burst", "10.0.0.10", "192.0.2.9", 910.0, 915.0, 918.0),
        // Background.
        alert("burst", "10.0.0.7", "192.0.2.77", 10.0, 15.0, 18.0),
    ];
    let r = evaluate(&t, &alerts, 5.0);
    let row = |l: &str| r.rows.iter().find(|x| x.label == l).unwrap().clone();
    let single = row("burst_single");
    assert_eq!(
        (single.detected, single.units, single.recall),
        (1, 1, Some(1.0))
    );
    assert_eq!(single.delay_median, Some(3.0));
    let periodic = row("burst_periodic");
    assert_eq!((periodic.detected, periodic.units), (2, 3));
    assert_eq!(periodic.missed, vec!["s0002#2".to_owned()]);
    assert_eq!(periodic.delay_median, Some(3.0));
    assert_eq!(periodic.delay_max, Some(5.0));
    let beacon = row("beacon");
    assert_eq!((beacon.detected, beacon.units), (1, 1));
    assert_eq!(beacon.delay_max, Some(220.0));
    assert_eq!(r.positives, 5);
    assert_eq!(r.detected, 4);
    assert_eq!(r.recall, Some(0.8));
    assert_eq!((r.alerts.total, r.alerts.tp, r.alerts.fp), (9, 5, 4));
    assert_eq!((r.burst_alerts.total, r.burst_alerts.tp), (8, 4));
    assert_eq!(r.beacon_alerts.precision, Some(1.0));
    assert_eq!(r.fp_by_cause["decoy_upload_popular"], 1);
    assert_eq!(r.fp_by_cause["decoy_new_popular"], 1);
    assert_eq!(r.fp_by_cause["background"], 1);
    assert_eq!(r.fp_by_cause["beacon (wrong kind/time)"], 1);
    let dec = row("decoy_new_popular");
    assert_eq!((dec.detected, dec.units, dec.recall), (1, 2, None));
    assert_eq!(
        r.failures(Some(0.9), Some(0.5)),
        vec![
            "overall recall 0.800 < 0.9".to_owned(),
            "burst_periodic recall 0.667 < 0.9".to_owned()
        ]
    );
    assert!(r.failures(Some(0.5), Some(0.5)).is_empty());
    assert!(r.table().contains("burst_periodic"));
}

#[test]
fn slack_edges() {
    let t = truth();
    // Ends exactly `slack` before the event starts: matches; a hair earlier: does not.
    let at_edge = alert("burst", "10.0.0.1", "192.0.2.1", 480.0, 495.0, 498.0);
    let outside = alert("burst", "10.0.0.1", "192.0.2.1", 480.0, 494.999, 498.0);
    let r = evaluate(&t, &[at_edge], 5.0);
    assert_eq!(r.alerts.tp, 1);
    let r = evaluate(&t, std::slice::from_ref(&outside), 5.0);
    assert_eq!(r.alerts.tp, 0);
    assert_eq!(r.fp_by_cause["burst_single (wrong kind/time)"], 1);
    let r = evaluate(&t, &[outside], 6.0);
    assert_eq!(r.alerts.tp, 1);
    // Beacon: detected_ts up to last end + slack counts; before the first start does not.
    let last_end = 1000.5 + 20.0 * 13.0;
    let ok = alert(
        "beacon",
        "10.0.0.3",
        "192.0.2.3",
        1000.0,
        last_end + 5.0,
        last_end + 5.0,
    );
    let late = alert(
        "beacon",
        "10.0.0.3",
        "192.0.2.3",
        1000.0,
        last_end + 5.1,
        last_end + 5.1,
    );
    let early = alert("beacon", "10.0.0.3", "192.0.2.3", 990.0, 999.0, 999.0);
    assert_eq!(evaluate(&t, &[ok], 5.0).beacon_alerts.tp, 1);
    assert_eq!(evaluate(&t, &[late], 5.0).beacon_alerts.tp, 0);
    assert_eq!(evaluate(&t, &[early], 5.0).beacon_alerts.tp, 0);
    // A burst alert alone on a beacon scenario: missed, burst only.
    let b = alert("burst", "10.0.0.3", "192.0.2.3", 1100.0, 1110.0, 1113.0);
    let r = evaluate(&t, &[b], 5.0);
    let row = r.rows.iter().find(|x| x.label == "beacon").unwrap();
    assert_eq!((row.detected, row.burst_only), (0, 1));
    // Wrong subscriber or endpoint never matches.
    let other = alert("burst", "10.0.0.2", "192.0.2.1", 500.0, 510.0, 513.0);
    assert_eq!(evaluate(&t, &[other], 5.0).fp_by_cause["background"], 1);
    // No alerts: precision undefined and not a failure.
    let r = evaluate(&t, &[], 5.0);
    assert_eq!(r.alerts.precision, None);
    assert!(r.failures(None, Some(0.99)).is_empty());
    assert_eq!(r.recall, Some(0.0));
}

#[test]
fn out_of_scope_units_are_counted_apart_and_their_alerts_are_true() {
    let mut t = truth();
    t.scenarios[1].events[1].should_detect = false; // s0002#2
    t.scenarios[1].events[1].cut = true;
    t.scenarios[2].should_detect = false; // the beacon
    let alerts = vec![
        alert("burst", "10.0.0.2", "192.0.2.2", 600.0, 605.0, 610.0),
        alert("burst", "10.0.0.2", "192.0.2.2", 700.0, 705.0, 706.0),
    ];
    let r = evaluate(&t, &alerts, 5.0);
    let row = |l: &str| r.rows.iter().find(|x| x.label == l).unwrap().clone();
    let periodic = row("burst_periodic");
    assert_eq!((periodic.detected, periodic.units), (1, 2));
    assert_eq!(
        (periodic.out_of_scope_detected, periodic.out_of_scope),
        (1, 1)
    );
    assert_eq!(periodic.missed, vec!["s0002#3".to_owned()]);
    let beacon = row("beacon");
    assert_eq!(
        (beacon.units, beacon.out_of_scope, beacon.recall),
        (0, 1, None)
    );
    // s0001 and s0002#1 and #3 in scope: 1 of 3 found.
    assert_eq!((r.detected, r.positives), (1, 3));
    assert_eq!((r.alerts.tp, r.alerts.fp), (2, 0));
    assert!(r.table().contains("1/1"));
}

#[test]
fn alerts_parse_from_analyze_lines() {
    let text = r#"{"id":"00ab","kind":"burst","src":"10.1.2.3","dst":"192.0.2.44","dst_port":8443,"proto":"tcp","start_ts":1.5,"end_ts":2.5,"detected_ts":5.0,"bytes_out":10,"bytes_in":1,"score":0.7,"severity":"medium","reasons":[]}

{"id":"00ac","kind":"beacon","src":"fd00::1","dst":"2001:db8::1","dst_port":0,"proto":0,"start_ts":1.0,"end_ts":9.0,"detected_ts":9.0,"bytes_out":1,"bytes_in":1,"score":0.6,"severity":"low"}
"#;
    let a = parse_alerts(text).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a[1].src, "fd00::1".parse::<IpAddr>().unwrap());
    assert!(parse_alerts("{\"kind\":1}")
        .unwrap_err()
        .starts_with("line 1"));
}
