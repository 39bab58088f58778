//! Detection limits (`burstwatch eval --sweep`): over one or more evaluated runs, the share of
//! positives found, binned by what each one was, and the alerts drawn by each decoy kind, as
//! markdown tables.
//!
//! * Bursts (every burst event not cut off by the end of its capture, in scope or not, to an
//!   endpoint in a rare prefix): by mean upstream rate × volume, and rate × duration, both from
//!   the truth (L3 bytes over first to last packet).
//! * Beacons: by period × jitter (as drawn) and period × polls written.
//! * Shapes: by truth tag (subscriber profile, endpoint, carriage, adversarial kind).
//! * Decoys: events, events with an alert of the same subscriber and endpoint, false alerts.
//!
//! A cell reads `found/all` with the share in per cent; `·` marks an empty cell.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{beacon_hits, burst_hits, evaluate, AlertRecord};
use crate::truth::{Expect, Truth};

/// Burst rate bins, Mbit/s (lower edges).
const RATE: [f64; 7] = [0.0, 1.0, 1.5, 3.0, 10.0, 30.0, 100.0];
/// Burst volume bins, MB.
const VOLUME: [f64; 6] = [0.0, 1.5, 2.0, 5.0, 20.0, 50.0];
/// Burst duration bins, s.
const DURATION: [f64; 5] = [0.0, 5.0, 15.0, 30.0, 60.0];
/// Beacon period bins, s.
const PERIOD: [f64; 5] = [0.0, 2.0, 10.0, 60.0, 600.0];
/// Beacon jitter bins, share of the period.
const JITTER: [f64; 5] = [0.0, 0.1, 0.25, 0.4, 0.5];
/// Beacon polls bins.
const POLLS: [f64; 5] = [0.0, 10.0, 15.0, 25.0, 40.0];

/// Index of the bin of `x` (the last lower edge at or below it).
fn bin(edges: &[f64], x: f64) -> usize {
    edges.iter().rposition(|e| x >= *e).unwrap_or(0)
}

/// Label of bin `i`: `a–b` or `≥ a`.
fn label(edges: &[f64], i: usize, unit: &str) -> String {
    let f = |x: f64| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            format!("{x}")
        }
    };
    match edges.get(i + 1) {
        Some(hi) if i == 0 => format!("< {}{unit}", f(*hi)),
        Some(hi) => format!("{}–{}{unit}", f(edges[i]), f(*hi)),
        None => format!("≥ {}{unit}", f(edges[i])),
    }
}

/// Found / all per cell of a two-way grid.
#[derive(Default)]
struct Grid {
    cells: BTreeMap<(usize, usize), (usize, usize)>,
}

impl Grid {
    fn add(&mut self, r: usize, c: usize, found: bool) {
        let e = self.cells.entry((r, c)).or_default();
        e.0 += usize::from(found);
        e.1 += 1;
    }

    /// The grid as a markdown table; `rows` and `cols` are (bin edges, unit, axis name).
    fn markdown(
        &self,
        out: &mut String,
        title: &str,
        rows: (&[f64], &str, &str),
        cols: (&[f64], &str, &str),
    ) {
        let _ = writeln!(out, "{title}\n");
        let mut head = format!("| {} \\ {} |", rows.2, cols.2);
        let mut rule = String::from("|---|");
        for c in 0..cols.0.len() {
            let _ = write!(head, " {} |", label(cols.0, c, cols.1));
            rule.push_str("---|");
        }
        let _ = writeln!(out, "{head}\n{rule}");
        for r in 0..rows.0.len() {
            let mut line = format!("| {} |", label(rows.0, r, rows.1));
            for c in 0..cols.0.len() {
                let _ = write!(line, " {} |", cell(self.cells.get(&(r, c)).copied()));
            }
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
    }
}

fn cell(x: Option<(usize, usize)>) -> String {
    match x {
        Some((f, n)) if n > 0 => format!("{f}/{n} ({:.0} %)", 100.0 * f as f64 / n as f64),
        _ => "·".to_owned(),
    }
}

/// The detection-limit tables over `runs` (truth and alerts of each), with `slack` seconds.
pub fn sweep(runs: &[(Truth, Vec<AlertRecord>)], slack: f64) -> String {
    let (mut rate_vol, mut rate_dur) = (Grid::default(), Grid::default());
    let (mut per_jit, mut per_polls) = (Grid::default(), Grid::default());
    let mut shapes: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut decoys: BTreeMap<&'static str, (usize, usize, usize)> = BTreeMap::new();
    let mut scope = [(0usize, 0usize); 2]; // bursts, beacons in scope: (found, all)
    let mut alerts = (0usize, 0usize); // (true, all)
    for (truth, al) in runs {
        let report = evaluate(truth, al, slack);
        alerts.0 += report.alerts.tp;
        alerts.1 += report.alerts.total;
        for fp in &report.false_positives {
            if let Some(k) = crate::truth::ScenarioKind::ALL
                .iter()
                .find(|k| k.as_str() == fp.attributed_to)
            {
                decoys.entry(k.as_str()).or_default().2 += 1;
            }
        }
        for sc in &truth.scenarios {
            match sc.expect {
                Expect::Burst => {
                    for e in sc.events.iter().filter(|e| !e.cut) {
                        let found = al.iter().any(|a| burst_hits(a, sc, e, slack));
                        let secs = (e.end_ts - e.start_ts).max(1e-3);
                        let mbps = e.bytes_out as f64 * 8.0 / secs / 1e6;
                        let mb = e.bytes_out as f64 / 1e6;
                        // The grids show the gates: endpoints in a rare prefix only (one in
                        // shared infrastructure is not rare by design; see the shapes).
                        if !sc.tags.iter().any(|t| t == "shared_infra") {
                            let r = bin(&RATE, mbps);
                            rate_vol.add(r, bin(&VOLUME, mb), found);
                            rate_dur.add(r, bin(&DURATION, secs), found);
                        }
                        for t in &sc.tags {
                            let s = shapes.entry(format!("burst {t}")).or_default();
                            s.0 += usize::from(found);
                            s.1 += 1;
                        }
                        if e.should_detect {
                            scope[0].0 += usize::from(found);
                            scope[0].1 += 1;
                        }
                    }
                }
                Expect::Beacon => {
                    if sc.events.iter().any(|e| e.cut) {
                        continue;
                    }
                    let found = al.iter().any(|a| beacon_hits(a, sc, slack));
                    let period = sc.period_s.unwrap_or(0.0);
                    let p = bin(&PERIOD, period);
                    per_jit.add(p, bin(&JITTER, sc.jitter.unwrap_or(0.0)), found);
                    let polls = sc.polls.map_or(sc.events.len(), |n| n as usize);
                    per_polls.add(p, bin(&POLLS, polls as f64), found);
                    for t in &sc.tags {
                        let s = shapes.entry(format!("beacon {t}")).or_default();
                        s.0 += usize::from(found);
                        s.1 += 1;
                    }
                    if sc.should_detect {
                        scope[1].0 += usize::from(found);
                        scope[1].1 += 1;
                    }
                }
                Expect::None => {
                    let d = decoys.entry(sc.kind.as_str()).or_default();
                    for e in &sc.events {
                        d.0 += 1;
                        let hit = al.iter().any(|a| super::touches(a, sc, e, slack));
                        d.1 += usize::from(hit);
                    }
                }
            }
        }
    }
    let mut out = String::new();
    let seeds: Vec<String> = runs.iter().map(|r| r.0.seed.to_string()).collect();
    let _ = writeln!(
        out,
        "Runs: {} (seeds {}). In scope: bursts {}, beacons {}; alert precision {}.\n",
        runs.len(),
        seeds.join(", "),
        cell(Some(scope[0])),
        cell(Some(scope[1])),
        cell(Some(alerts))
    );
    rate_vol.markdown(
        &mut out,
        "Bursts to an endpoint in a rare prefix found, by mean upstream rate × volume:",
        (&RATE, " Mbit/s", "rate"),
        (&VOLUME, " MB", "volume"),
    );
    rate_dur.markdown(
        &mut out,
        "Bursts to an endpoint in a rare prefix found, by mean upstream rate × duration:",
        (&RATE, " Mbit/s", "rate"),
        (&DURATION, " s", "duration"),
    );
    per_jit.markdown(
        &mut out,
        "Beacons found, by period × jitter (± share of the period):",
        (&PERIOD, " s", "period"),
        (&JITTER, "", "jitter"),
    );
    per_polls.markdown(
        &mut out,
        "Beacons found, by period × polls:",
        (&PERIOD, " s", "period"),
        (&POLLS, "", "polls"),
    );
    let _ = writeln!(out, "Found, by shape:\n\n| shape | found |\n|---|---|");
    for (k, v) in &shapes {
        let _ = writeln!(out, "| {k} | {} |", cell(Some(*v)));
    }
    let _ = writeln!(
        out,
        "\nDecoys (must not alert):\n\n| decoy | events | events alerted | false alerts |\n|---|---|---|---|"
    );
    for (k, (n, hit, fp)) in &decoys {
        let _ = writeln!(out, "| {k} | {n} | {hit} | {fp} |");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_labels() {
        assert_eq!(bin(&RATE, 0.5), 0);
        assert_eq!(bin(&RATE, 1.5), 2);
        assert_eq!(bin(&RATE, 500.0), 6);
        assert_eq!(label(&RATE, 0, " Mbit/s"), "< 1 Mbit/s");
        assert_eq!(label(&RATE, 2, " Mbit/s"), "1.5–3 Mbit/s");
        assert_eq!(label(&RATE, 6, " Mbit/s"), "≥ 100 Mbit/s");
        assert_eq!(cell(Some((1, 4))), "1/4 (25 %)");
        assert_eq!(cell(None), "·");
    }
}
