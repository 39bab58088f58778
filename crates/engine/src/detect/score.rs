//! The score: a weighted mean of parts in [0, 1], each kept as a [`Reason`] with its measured
//! value and its contribution, then damped (never raised) while the look-back is still filling.

use super::alert::{AlertKind, Reason};
use super::beacon::BeaconFacts;
use super::config::{DetectConfig, ThresholdBasis};
use super::pair::BurstAcc;
use super::stats;

/// What the score is computed from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// Burst or beacon.
    pub kind: AlertKind,
    /// The burst (for bursts).
    pub burst: Option<&'a BurstAcc>,
    /// Beacon facts: (regularity, median interval s, median event bytes, events).
    pub beacon: Option<(f64, f64, f64, u32)>,
    /// Beacon: the whole analysis (size regularity, what the period needed), when known.
    pub beacon_facts: Option<BeaconFacts>,
    /// The subscriber's p95 upstream rate over active seconds, bit/s, once warm.
    pub baseline_bps: Option<f64>,
    /// Distinct subscribers that talked to the endpoint within the look-back.
    pub prevalence: u32,
    /// Seconds between the subscriber's first contact with the endpoint and the event.
    pub novelty_age_s: f64,
    /// Recurrence part (0..1) from earlier bursts of the pair.
    pub recurrence: f64,
    /// Events of this kind for the pair, this one included.
    pub occurrence: u32,
    /// Pairs that used the destination port (TCP/UDP), if it has one.
    pub port_pairs: Option<u32>,
    /// The most pairs any port has.
    pub port_max: u32,
    /// Whether the endpoint is on the watch list.
    pub watched: bool,
    /// How much of the look-back has passed since the start (0..1).
    pub lookback_fill: f64,
}

/// Recurrence of a pair's bursts from their start seconds (oldest first, this one last):
/// 0 for a first burst; rises with the count of bursts and with the regularity of their
/// spacing (RITA's Bowley-skew and MAD score on the intervals).
pub fn recurrence(starts: &[u32]) -> f64 {
    if starts.len() < 2 {
        return 0.0;
    }
    let intervals: Vec<f64> = starts
        .windows(2)
        .map(|w| f64::from(w[1].saturating_sub(w[0])))
        .collect();
    let count = ((starts.len() - 1) as f64 / 3.0).min(1.0);
    let regular = if intervals.len() >= 2 {
        stats::regularity(&intervals)
    } else {
        0.5
    };
    count * (0.5 + 0.5 * regular)
}

fn clamp01(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Compute the score and its reasons.
pub fn score(cfg: &DetectConfig, i: &Inputs<'_>) -> (f64, Vec<Reason>) {
    let w = &cfg.weights;
    let rare_max = f64::from(cfg.rare_max_hosts.max(1));
    let rarity_part = if i.prevalence <= 1 {
        1.0
    } else {
        clamp01(1.0 - f64::from(i.prevalence - 1) / rare_max)
    };
    let novelty_part = clamp01(1.0 - i.novelty_age_s / (cfg.novelty_ns as f64 / 1e9).max(1.0));
    let watch_part = if i.watched { 1.0 } else { 0.0 };
    let port_part = match i.port_pairs {
        Some(n) => {
            clamp01(1.0 - (1.0 + f64::from(n)).ln() / (1.0 + f64::from(i.port_max.max(1))).ln())
        }
        None => 0.5,
    };
    // (name, value, part, weight)
    let mut parts: Vec<(&'static str, f64, f64, f64)> = Vec::with_capacity(10);
    match (i.kind, i.burst, i.beacon) {
        (AlertKind::Burst, Some(b), _) => {
            let peak_bps = b.peak_up as f64 * 8.0;
            // Against the subscriber's own p95 (or the floor while the baseline warms up), but
            // never against less than 1/40 of the floor, so that idle hosts do not get
            // unbounded jumps.
            let floor = cfg.burst_rate_floor_bps;
            let reference = i.baseline_bps.unwrap_or(floor).max(floor / 40.0);
            let jump = peak_bps / reference.max(1.0);
            parts.push(("rate_jump", jump, clamp01(jump.log10() / 2.0), w.rate_jump));
            let vol = b.vol.up as f64 / cfg.burst_min_bytes.max(1) as f64;
            parts.push((
                "volume",
                b.vol.up as f64,
                clamp01((1.0 + vol).log10() / 11f64.log10()),
                w.volume,
            ));
            let asym = b.vol.up as f64 / (b.vol.up + b.vol.down).max(1) as f64;
            parts.push(("asymmetry", asym, clamp01((asym - 0.5) / 0.5), w.asymmetry));
            parts.push(("rarity", f64::from(i.prevalence), rarity_part, w.rarity));
            parts.push(("novelty", i.novelty_age_s, novelty_part, w.novelty));
            parts.push((
                "recurrence",
                f64::from(i.occurrence),
                i.recurrence,
                w.recurrence,
            ));
            parts.push((
                "port_rarity",
                f64::from(i.port_pairs.unwrap_or(0)),
                port_part,
                w.port_rarity,
            ));
            parts.push(("watchlist", watch_part, watch_part, w.watchlist));
        }
        (_, _, Some((regularity, interval, _bytes, events))) => {
            // Timing and data-size regularity as RITA weighs them (equally), then who talks
            // to the endpoint. Candidates from state files written before the size score
            // existed count timing only.
            let reg_part = clamp01((regularity - 0.5) / 0.5);
            match i.beacon_facts {
                Some(f) => {
                    parts.push(("regularity", regularity, reg_part, 0.30));
                    let size_part = clamp01((f.size_regularity - 0.5) / 0.5);
                    parts.push(("size_regularity", f.size_regularity, size_part, 0.15));
                }
                None => parts.push(("regularity", regularity, reg_part, 0.45)),
            }
            parts.push(("interval", interval, 0.0, 0.0));
            parts.push(("rarity", f64::from(i.prevalence), rarity_part, 0.35));
            parts.push(("novelty", i.novelty_age_s, novelty_part, 0.1));
            parts.push(("watchlist", watch_part, watch_part, 0.1));
            if let Some(f) = i.beacon_facts {
                // What was seen against what this period needed (no weight: the evidence).
                parts.push(("events", f64::from(events), 0.0, 0.0));
                parts.push(("events_needed", f64::from(f.events_needed), 0.0, 0.0));
                parts.push(("regularity_needed", f.regularity_needed, 0.0, 0.0));
            }
        }
        _ => return (0.0, Vec::new()),
    }
    if let (AlertKind::Burst, Some(b)) = (i.kind, i.burst) {
        // Not a part of the score: the rate that started the burst, named by what set it.
        let name = match b.entry_basis {
            ThresholdBasis::Floor => "threshold_floor",
            ThresholdBasis::Baseline => "threshold_baseline",
            ThresholdBasis::UplinkPeak => "threshold_uplink_peak",
        };
        parts.push((name, b.entry_bytes * 8.0, 0.0, 0.0));
    }
    let total_w: f64 = parts.iter().map(|p| p.3).sum::<f64>().max(f64::EPSILON);
    let mut reasons: Vec<Reason> = parts
        .iter()
        .map(|&(name, value, part, weight)| Reason {
            name,
            value,
            contribution: weight * part / total_w,
        })
        .collect();
    let raw: f64 = reasons.iter().map(|r| r.contribution).sum();
    // While the look-back fills, prevalence may understate how common an endpoint is: damp.
    let damp = 0.85 + 0.15 * clamp01(i.lookback_fill);
    let score = clamp01(raw * damp);
    if damp < 1.0 {
        reasons.push(Reason {
            name: "warmup",
            value: clamp01(i.lookback_fill),
            contribution: score - raw,
        });
    }
    (score, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(up: u64, down: u64, peak: u64) -> BurstAcc {
        BurstAcc {
            vol: crate::detect::pair::Volume {
                up,
                down,
                ..Default::default()
            },
            peak_up: peak,
            ..BurstAcc::default()
        }
    }

    fn inputs(b: &BurstAcc) -> Inputs<'_> {
        Inputs {
            kind: AlertKind::Burst,
            burst: Some(b),
            beacon: None,
            beacon_facts: None,
            baseline_bps: Some(200_000.0),
            prevalence: 1,
            novelty_age_s: 0.0,
            recurrence: 0.0,
            occurrence: 1,
            port_pairs: Some(1),
            port_max: 10_000,
            watched: false,
            lookback_fill: 1.0,
        }
    }

    #[test]
    fn a_big_upstream_burst_to_a_new_rare_endpoint_scores_high_and_explains_itself() {
        let cfg = DetectConfig::default();
        let b = burst(20_000_000, 400_000, 4_000_000);
        let (s, reasons) = score(&cfg, &inputs(&b));
        assert!(s > 0.7, "{s}");
        let sum: f64 = reasons.iter().map(|r| r.contribution).sum();
        assert!((sum - s).abs() < 1e-9, "contributions add up to the score");
        assert!(reasons.iter().any(|r| r.name == "rarity" && r.value == 1.0));
    }

    #[test]
    fn common_endpoints_and_symmetric_traffic_score_lower() {
        let cfg = DetectConfig::default();
        let b = burst(20_000_000, 400_000, 4_000_000);
        let (rare, _) = score(&cfg, &inputs(&b));
        let mut i = inputs(&b);
        i.prevalence = 3;
        let (common, _) = score(&cfg, &i);
        assert!(common < rare);
        let sym = burst(20_000_000, 20_000_000, 4_000_000);
        let (s, _) = score(&cfg, &inputs(&sym));
        assert!(s < rare);
    }

    #[test]
    fn warmup_damps_and_never_inflates() {
        let cfg = DetectConfig::default();
        let b = burst(20_000_000, 400_000, 4_000_000);
        let (full, _) = score(&cfg, &inputs(&b));
        let mut i = inputs(&b);
        i.lookback_fill = 0.1;
        let (early, reasons) = score(&cfg, &i);
        assert!(early < full);
        let w = reasons
            .iter()
            .find(|r| r.name == "warmup")
            .map(|r| r.contribution);
        assert!(w.is_some_and(|c| c < 0.0));
    }

    #[test]
    fn recurrence_grows_with_regular_repetition() {
        assert_eq!(recurrence(&[100]), 0.0);
        let two = recurrence(&[100, 400]);
        let regular = recurrence(&[100, 400, 700, 1000, 1300]);
        let irregular = recurrence(&[100, 130, 900, 950, 2000]);
        assert!(two > 0.0 && two < regular);
        assert!(irregular < regular);
        assert!(regular > 0.9);
    }
}
