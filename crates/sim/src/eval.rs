//! Scoring a detector's alerts against a simulation's ground truth ([`crate::truth`]).
//!
//! # Matching rules
//!
//! All times are seconds since the epoch; `slack` (default 5 s) widens the truth windows.
//! The subscriber of an event is the event's own `src` when set, else the scenario's `src`.
//!
//! * **Burst events.** An event of a scenario expecting `burst` is *detected* when a `burst`
//!   alert has the same `src` and `dst` and its `[start_ts, end_ts]` overlaps
//!   `[event.start − slack, event.end + slack]`. Recall of a burst kind = detected events /
//!   events.
//! * **Beacon scenarios.** A scenario expecting `beacon` is *detected* when a `beacon` alert
//!   has the same `src`/`dst` and its `detected_ts` lies in
//!   `[first event start, last event end + slack]`. Recall = detected scenarios / scenarios.
//!   A missed beacon scenario is also counted as *burst only* when a `burst` alert of the pair
//!   overlaps `[first start − slack, last end + slack]`.
//! * **Alerts.** A `burst` alert is a true positive when it detects (as above) an event of a
//!   scenario expecting `burst`; a `beacon` alert when it detects a scenario expecting
//!   `beacon`. Every other alert is a false positive, attributed to the first decoy it matches
//!   (same `src`/`dst`, `[start_ts, max(end_ts, detected_ts)]` overlapping a decoy event ±
//!   slack), else to a positive scenario of the same pair with the wrong kind or time
//!   (`"<label> (wrong kind/time)"`), else to `background`. Precision = true positives /
//!   alerts, overall and per alert kind (none when there are no alerts).
//! * **Delay.** Per detected burst event: earliest matching alert's `detected_ts` − event end;
//!   per detected beacon scenario: earliest matching `detected_ts` − first event start. Median
//!   and maximum per scenario kind.
//! * **Scope.** A burst event with `should_detect: false` (cut off by the end of the capture,
//!   below the detector's gates, adversarial) and a beacon scenario with `should_detect: false`
//!   are *out of scope*: they are left out of `units`, `detected`, recall and delays and
//!   counted in `out_of_scope` (`out_of_scope_detected` when detected all the same). An alert
//!   that detects one is still a true positive: it found a real positive.
//! * **Rows.** One row per scenario kind; the two entries of a beacon-plus-bursts mission
//!   (`part_of: "burst_with_beacon"`) get their own rows `burst_with_beacon/beacon` and
//!   `burst_with_beacon/burst_periodic`. Overall recall combines every positive burst event
//!   and beacon scenario.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::truth::{Expect, Truth, TruthEvent, TruthScenario};

/// The fields of an alert JSON line (`burstwatch analyze --alerts`) that evaluation uses;
/// other fields are ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct AlertRecord {
    /// Alert id.
    #[serde(default)]
    pub id: String,
    /// `burst` or `beacon`.
    pub kind: String,
    /// Subscriber.
    pub src: IpAddr,
    /// Endpoint.
    pub dst: IpAddr,
    /// Endpoint port.
    #[serde(default)]
    pub dst_port: u16,
    /// Start of the alerted activity, s since the epoch.
    pub start_ts: f64,
    /// End of the alerted activity.
    pub end_ts: f64,
    /// When the detector decided.
    pub detected_ts: f64,
    /// Score.
    #[serde(default)]
    pub score: f64,
}

/// Parse alert JSON lines (blank lines skipped); the error names the line.
pub fn parse_alerts(text: &str) -> Result<Vec<AlertRecord>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Per scenario kind (report row).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct KindRow {
    /// Kind, or `part_of/kind` for mission parts.
    pub label: String,
    /// Expected alert kind.
    pub expect: Option<Expect>,
    /// Scenarios.
    pub scenarios: usize,
    /// Events.
    pub events: usize,
    /// Units recall is computed over: events (burst), scenarios (beacon); decoys: events.
    pub units: usize,
    /// Detected units (positives), or decoy events that drew any alert.
    pub detected: usize,
    /// detected / units for positives; `None` for decoys.
    pub recall: Option<f64>,
    /// Beacon rows: missed scenarios reported only as `burst`.
    pub burst_only: usize,
    /// Median detection delay, s.
    pub delay_median: Option<f64>,
    /// Maximum detection delay, s.
    pub delay_max: Option<f64>,
    /// Missed units: scenario id, with `#k` (1-based) for an event.
    pub missed: Vec<String>,
    /// Positive units the truth marks out of scope (`should_detect: false`): not in `units`.
    pub out_of_scope: usize,
    /// Out-of-scope units that were detected all the same.
    pub out_of_scope_detected: usize,
}

/// Alert counts of one kind (or all).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AlertCounts {
    /// Alerts.
    pub total: usize,
    /// True positives.
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// tp / total (`None` without alerts).
    pub precision: Option<f64>,
}

impl AlertCounts {
    fn add(&mut self, tp: bool) {
        self.total += 1;
        if tp {
            self.tp += 1;
        } else {
            self.fp += 1;
        }
        self.precision = Some(self.tp as f64 / self.total as f64);
    }
}

/// One false-positive alert and what it was attributed to.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FalsePositive {
    /// Alert id.
    pub id: String,
    /// Alert kind.
    pub kind: String,
    /// Subscriber.
    pub src: IpAddr,
    /// Endpoint.
    pub dst: IpAddr,
    /// Score.
    pub score: f64,
    /// Decoy kind, `<label> (wrong kind/time)` or `background`.
    pub attributed_to: String,
}

/// The evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    /// Slack used, s.
    pub slack_seconds: f64,
    /// Per scenario kind.
    pub rows: Vec<KindRow>,
    /// Positive units (burst events + beacon scenarios).
    pub positives: usize,
    /// Detected positive units.
    pub detected: usize,
    /// detected / positives (`None` without positives).
    pub recall: Option<f64>,
    /// Burst alerts.
    pub burst_alerts: AlertCounts,
    /// Beacon alerts.
    pub beacon_alerts: AlertCounts,
    /// Alerts of unknown kind (always false positives).
    pub other_alerts: AlertCounts,
    /// All alerts.
    pub alerts: AlertCounts,
    /// False positives by attribution.
    pub fp_by_cause: BTreeMap<String, usize>,
    /// Every false positive.
    pub false_positives: Vec<FalsePositive>,
}

fn overlaps(a0: f64, a1: f64, b0: f64, b1: f64) -> bool {
    a0 <= b1 && a1 >= b0
}

fn event_src(sc: &TruthScenario, e: &TruthEvent) -> IpAddr {
    e.src.unwrap_or(sc.src)
}

/// Does burst alert `a` detect event `e` of `sc`?
fn burst_hits(a: &AlertRecord, sc: &TruthScenario, e: &TruthEvent, slack: f64) -> bool {
    a.kind == "burst"
        && a.src == event_src(sc, e)
        && a.dst == sc.dst
        && overlaps(a.start_ts, a.end_ts, e.start_ts - slack, e.end_ts + slack)
}

/// `[first start, last end]` of a scenario.
fn span(sc: &TruthScenario) -> Option<(f64, f64)> {
    let first = sc.events.iter().map(|e| e.start_ts).reduce(f64::min)?;
    let last = sc.events.iter().map(|e| e.end_ts).reduce(f64::max)?;
    Some((first, last))
}

/// Does beacon alert `a` detect beacon scenario `sc`?
fn beacon_hits(a: &AlertRecord, sc: &TruthScenario, slack: f64) -> bool {
    a.kind == "beacon"
        && a.src == sc.src
        && a.dst == sc.dst
        && span(sc).is_some_and(|(s, e)| a.detected_ts >= s && a.detected_ts <= e + slack)
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Sort key of a row label: kind order, then mission parts.
fn row_order(sc: &TruthScenario) -> (usize, usize) {
    let k = crate::truth::ScenarioKind::ALL
        .iter()
        .position(|k| *k == sc.kind)
        .unwrap_or(usize::MAX);
    (usize::from(sc.part_of.is_some()), k)
}

/// Evaluate `alerts` against `truth` with `slack` seconds.
pub fn evaluate(truth: &Truth, alerts: &[AlertRecord], slack: f64) -> Report {
    // (row order, label) -> (row, delays)
    type Rows = BTreeMap<((usize, usize), String), (KindRow, Vec<f64>)>;
    let mut rows: Rows = BTreeMap::new();
    for sc in &truth.scenarios {
        let label = sc.label();
        let (row, delays) = rows
            .entry((row_order(sc), label.clone()))
            .or_insert_with(|| {
                (
                    KindRow {
                        label,
                        expect: Some(sc.expect),
                        ..KindRow::default()
                    },
                    Vec::new(),
                )
            });
        row.scenarios += 1;
        row.events += sc.events.len();
        match sc.expect {
            Expect::Burst | Expect::None => {
                for (k, e) in sc.events.iter().enumerate() {
                    let in_scope = sc.expect == Expect::None || e.should_detect;
                    if in_scope {
                        row.units += 1;
                    } else {
                        row.out_of_scope += 1;
                    }
                    let hit = alerts
                        .iter()
                        .filter(|a| match sc.expect {
                            Expect::Burst => burst_hits(a, sc, e, slack),
                            _ => {
                                a.src == event_src(sc, e)
                                    && a.dst == sc.dst
                                    && overlaps(
                                        a.start_ts,
                                        a.end_ts.max(a.detected_ts),
                                        e.start_ts - slack,
                                        e.end_ts + slack,
                                    )
                            }
                        })
                        .map(|a| a.detected_ts)
                        .reduce(f64::min);
                    match hit {
                        Some(_) if !in_scope => row.out_of_scope_detected += 1,
                        None if !in_scope => {}
                        Some(t) => {
                            row.detected += 1;
                            if sc.expect == Expect::Burst {
                                delays.push(t - e.end_ts);
                            }
                        }
                        None if sc.expect == Expect::Burst => {
                            row.missed.push(format!("{}#{}", sc.id, k + 1));
                        }
                        None => {}
                    }
                }
            }
            Expect::Beacon => {
                let hit = alerts
                    .iter()
                    .filter(|a| beacon_hits(a, sc, slack))
                    .map(|a| a.detected_ts)
                    .reduce(f64::min);
                if !sc.should_detect {
                    row.out_of_scope += 1;
                    row.out_of_scope_detected += usize::from(hit.is_some());
                    continue;
                }
                row.units += 1;
                match (hit, span(sc)) {
                    (Some(t), Some((s, _))) => {
                        row.detected += 1;
                        delays.push(t - s);
                    }
                    _ => {
                        row.missed.push(sc.id.clone());
                        let burst = span(sc).is_some_and(|(s, e)| {
                            alerts.iter().any(|a| {
                                a.kind == "burst"
                                    && a.src == sc.src
                                    && a.dst == sc.dst
                                    && overlaps(a.start_ts, a.end_ts, s - slack, e + slack)
                            })
                        });
                        if burst {
                            row.burst_only += 1;
                        }
                    }
                }
            }
        }
    }
    let mut report = Report {
        slack_seconds: slack,
        ..Report::default()
    };
    for (_, (mut row, mut delays)) in rows {
        row.delay_max = delays.iter().copied().reduce(f64::max);
        row.delay_median = median(&mut delays);
        if row.expect != Some(Expect::None) {
            row.recall = (row.units > 0).then(|| row.detected as f64 / row.units as f64);
            report.positives += row.units;
            report.detected += row.detected;
        }
        report.rows.push(row);
    }
    report.recall =
        (report.positives > 0).then(|| report.detected as f64 / report.positives as f64);

    for a in alerts {
        let tp = match a.kind.as_str() {
            "burst" => truth.scenarios.iter().any(|sc| {
                sc.expect == Expect::Burst && sc.events.iter().any(|e| burst_hits(a, sc, e, slack))
            }),
            "beacon" => truth
                .scenarios
                .iter()
                .any(|sc| sc.expect == Expect::Beacon && beacon_hits(a, sc, slack)),
            _ => false,
        };
        report.alerts.add(tp);
        match a.kind.as_str() {
            "burst" => report.burst_alerts.add(tp),
            "beacon" => report.beacon_alerts.add(tp),
            _ => report.other_alerts.add(tp),
        }
        if tp {
            continue;
        }
        let decoy = truth.scenarios.iter().find(|sc| {
            sc.expect == Expect::None
                && sc.events.iter().any(|e| {
                    a.src == event_src(sc, e)
                        && a.dst == sc.dst
                        && overlaps(
                            a.start_ts,
                            a.end_ts.max(a.detected_ts),
                            e.start_ts - slack,
                            e.end_ts + slack,
                        )
                })
        });
        let cause = match decoy {
            Some(sc) => sc.kind.as_str().to_owned(),
            None => match truth.scenarios.iter().find(|sc| {
                sc.expect != Expect::None
                    && a.dst == sc.dst
                    && sc.events.iter().any(|e| a.src == event_src(sc, e))
            }) {
                Some(sc) => format!("{} (wrong kind/time)", sc.label()),
                None => "background".to_owned(),
            },
        };
        *report.fp_by_cause.entry(cause.clone()).or_default() += 1;
        report.false_positives.push(FalsePositive {
            id: a.id.clone(),
            kind: a.kind.clone(),
            src: a.src,
            dst: a.dst,
            score: a.score,
            attributed_to: cause,
        });
    }
    report
}

impl Report {
    /// Unmet targets, as messages (empty: all met). Recall is checked overall and per positive
    /// row; precision overall (no alerts: met).
    pub fn failures(&self, min_recall: Option<f64>, min_precision: Option<f64>) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(r) = min_recall {
            if let Some(x) = self.recall.filter(|x| *x < r) {
                out.push(format!("overall recall {x:.3} < {r}"));
            }
            for row in &self.rows {
                if let Some(x) = row.recall.filter(|x| *x < r) {
                    out.push(format!("{} recall {x:.3} < {r}", row.label));
                }
            }
        }
        if let Some(p) = min_precision {
            if let Some(x) = self.alerts.precision.filter(|x| *x < p) {
                out.push(format!("precision {x:.3} < {p}"));
            }
        }
        out
    }

    /// The report as a plain-text table.
    pub fn table(&self) -> String {
        let f3 = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
        let f1 = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<34} {:>6} {:>5} {:>6} {:>8} {:>7} {:>9} {:>9} {:>10} {:>12}",
            "scenario kind",
            "expect",
            "scen",
            "events",
            "detected",
            "recall",
            "delay_med",
            "delay_max",
            "burst_only",
            "out_of_scope"
        );
        for r in &self.rows {
            let expect = match r.expect {
                Some(Expect::Burst) => "burst",
                Some(Expect::Beacon) => "beacon",
                _ => "none",
            };
            let detected = if r.expect == Some(Expect::None) {
                format!("{} alrt", r.detected)
            } else {
                format!("{}/{}", r.detected, r.units)
            };
            let bo = if r.expect == Some(Expect::Beacon) {
                r.burst_only.to_string()
            } else {
                "-".to_owned()
            };
            let oos = if r.out_of_scope > 0 {
                format!("{}/{}", r.out_of_scope_detected, r.out_of_scope)
            } else {
                "-".to_owned()
            };
            let _ = writeln!(
                s,
                "{:<34} {:>6} {:>5} {:>6} {:>8} {:>7} {:>9} {:>9} {:>10} {:>12}",
                r.label,
                expect,
                r.scenarios,
                r.events,
                detected,
                f3(r.recall),
                f1(r.delay_median),
                f1(r.delay_max),
                bo,
                oos
            );
        }
        let _ = writeln!(
            s,
            "{:<34} {:>6} {:>5} {:>6} {:>8} {:>7}",
            "all positives",
            "",
            "",
            "",
            format!("{}/{}", self.detected, self.positives),
            f3(self.recall)
        );
        for r in self.rows.iter().filter(|r| !r.missed.is_empty()) {
            let _ = writeln!(s, "missed {}: {}", r.label, r.missed.join(" "));
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<10} {:>6} {:>6} {:>6} {:>9}",
            "alerts", "total", "TP", "FP", "precision"
        );
        for (name, c) in [
            ("burst", &self.burst_alerts),
            ("beacon", &self.beacon_alerts),
            ("other", &self.other_alerts),
            ("all", &self.alerts),
        ] {
            if name == "other" && c.total == 0 {
                continue;
            }
            let _ = writeln!(
                s,
                "{:<10} {:>6} {:>6} {:>6} {:>9}",
                name,
                c.total,
                c.tp,
                c.fp,
                f3(c.precision)
            );
        }
        if !self.fp_by_cause.is_empty() {
            let _ = writeln!(s, "false positives by cause:");
            for (cause, n) in &self.fp_by_cause {
                let _ = writeln!(s, "  {cause:<40} {n:>6}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
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
}
