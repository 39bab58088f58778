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

mod sweep;
pub use sweep::sweep;

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

pub(crate) fn overlaps(a0: f64, a1: f64, b0: f64, b1: f64) -> bool {
    a0 <= b1 && a1 >= b0
}

pub(crate) fn event_src(sc: &TruthScenario, e: &TruthEvent) -> IpAddr {
    e.src.unwrap_or(sc.src)
}

/// Does burst alert `a` detect event `e` of `sc`?
pub(crate) fn burst_hits(a: &AlertRecord, sc: &TruthScenario, e: &TruthEvent, slack: f64) -> bool {
    a.kind == "burst"
        && a.src == event_src(sc, e)
        && a.dst == sc.dst
        && overlaps(a.start_ts, a.end_ts, e.start_ts - slack, e.end_ts + slack)
}

/// Does alert `a`, of any kind, touch event `e` of `sc`: same subscriber and endpoint, and its
/// span up to its detection overlaps the event's, with `slack` s on either side?
pub(crate) fn touches(a: &AlertRecord, sc: &TruthScenario, e: &TruthEvent, slack: f64) -> bool {
    a.src == event_src(sc, e)
        && a.dst == sc.dst
        && overlaps(
            a.start_ts,
            a.end_ts.max(a.detected_ts),
            e.start_ts - slack,
            e.end_ts + slack,
        )
}

/// `[first start, last end]` of a scenario.
fn span(sc: &TruthScenario) -> Option<(f64, f64)> {
    let first = sc.events.iter().map(|e| e.start_ts).reduce(f64::min)?;
    let last = sc.events.iter().map(|e| e.end_ts).reduce(f64::max)?;
    Some((first, last))
}

/// Does beacon alert `a` detect beacon scenario `sc`?
pub(crate) fn beacon_hits(a: &AlertRecord, sc: &TruthScenario, slack: f64) -> bool {
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
    let group = if sc.part_of.is_some() {
        1
    } else if sc.tags.iter().any(|t| t == "adversarial") {
        2
    } else {
        0
    };
    (group, k)
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
                            _ => touches(a, sc, e, slack),
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
            sc.expect == Expect::None && sc.events.iter().any(|e| touches(a, sc, e, slack))
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
mod tests;
