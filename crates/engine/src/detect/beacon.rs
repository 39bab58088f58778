//! Beacon analysis of a pair's recent exchanges, and how much evidence a beacon needs.
//!
//! The analysis follows RITA's beacon analysis (Active Countermeasures, `analysis/beacons.go`):
//! the timing of the exchanges and their data sizes are each scored by the mean of a Bowley
//! quartile-skewness score and a median-absolute-deviation score (`1 - MAD / median`).
//!
//! 1. Only small exchanges count (at most `beacon_max_event_bytes`); of those, an exchange
//!    larger than four times the median size plus 1000 bytes is a task between polls (an
//!    upload, a download of a module), not a poll, and is left out of the timing too.
//! 2. The intervals between the polls' starts give the period (their median); an interval near
//!    a multiple of the period counts as that many beats (a missed beat is not irregularity).
//! 3. The evidence needed depends on the period `P` (the rule, also in the configuration file):
//!    * exchanges: `beacon_min_events` up to `P` = 300 s, then two fewer per doubling of the
//!      period, but never fewer than 6 (a beacon of an hour would otherwise need ten hours);
//!    * timing regularity ([`timing_regularity`]): `beacon_min_regularity` from `P` = 30 s,
//!      rising towards faster beacons by half the distance to 1 at `P` = 1 s (log-linear:
//!      0.65 → 0.825 with the defaults), since fast periodic traffic (heartbeats, players,
//!      pollers) is common: a slow beacon may jitter by ±50 %, one of 1 s by about ±30 %;
//!    * three quarters of the intervals within ±50 % of the period ([`IN_BAND`]);
//!    * no beacon faster than `beacon_min_interval_seconds`.
//!
//! The alert reports the exchanges seen and what was needed (`events`, `events_needed`,
//! `regularity_needed` reasons), so a beacon in a short capture explains itself.

use super::config::DetectConfig;
use super::exchange::EVENT_RING;
use super::stats;

/// Share of a beacon's intervals (missed beats folded) that must lie within ±50 % of its
/// period: a few gaps may be odd, most may not (memoryless traffic has about a third there).
pub const IN_BAND: f64 = 0.75;

/// What the analysis found, kept with a beacon candidate (and in the learned state).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BeaconFacts {
    /// Regularity (0..1) of the polls' intervals, missed beats folded.
    pub regularity: f64,
    /// Share of the intervals (beats) within ±50 % of the period.
    pub in_band: f64,
    /// Regularity (0..1) of the polls' sizes.
    pub size_regularity: f64,
    /// Median interval, seconds.
    pub interval_s: f64,
    /// Median bytes of a poll.
    pub median_bytes: f64,
    /// Polls analysed.
    pub events: u32,
    /// Polls this period needs.
    pub events_needed: u32,
    /// Timing regularity this period needs.
    pub regularity_needed: f64,
}

impl BeaconFacts {
    /// Whether the evidence is enough for a beacon candidate.
    pub fn is_beacon(&self, cfg: &DetectConfig) -> bool {
        self.events >= self.events_needed
            && self.regularity >= self.regularity_needed
            && self.in_band >= IN_BAND
            && self.interval_s * 1e9 >= cfg.beacon_min_interval_ns as f64
    }
}

/// Exchanges needed by a beacon of period `period_s` (see the module docs).
pub fn events_needed(cfg: &DetectConfig, period_s: f64) -> u32 {
    let base = cfg.beacon_min_events;
    let floor = base.min(6);
    if period_s.is_nan() || period_s <= 300.0 {
        return base;
    }
    let fewer = (2.0 * (period_s / 300.0).log2()).round();
    let fewer = if fewer.is_finite() {
        fewer as u32
    } else {
        base
    };
    base.saturating_sub(fewer).max(floor)
}

/// Timing regularity needed by a beacon of period `period_s` (see the module docs).
pub fn regularity_needed(cfg: &DetectConfig, period_s: f64) -> f64 {
    let base = cfg.beacon_min_regularity;
    let fast = if period_s > 0.0 {
        ((30.0 / period_s).log10() / 30f64.log10()).clamp(0.0, 1.0)
    } else {
        1.0
    };
    base + 0.5 * (1.0 - base).max(0.0) * fast
}

/// Analyse recent exchanges (oldest first: start in centiseconds, bytes). `None` when fewer
/// than three polls are left to analyse.
pub fn analyze(cfg: &DetectConfig, exchanges: &[(u32, u32)]) -> Option<BeaconFacts> {
    let mut small = [(0u32, 0u32); EVENT_RING];
    let mut n = 0;
    for &e in exchanges.iter().take(EVENT_RING) {
        if u64::from(e.1) <= cfg.beacon_max_event_bytes {
            small[n] = e;
            n += 1;
        }
    }
    if n < 3 {
        return None;
    }
    let mut sizes = [0f64; EVENT_RING];
    for (s, e) in sizes.iter_mut().zip(&small[..n]) {
        *s = f64::from(e.1);
    }
    let median_small = stats::median(&mut sizes[..n]);
    let task = 4.0 * median_small + 1000.0;
    let mut polls = [(0u32, 0u32); EVENT_RING];
    let mut m = 0;
    for &e in &small[..n] {
        if f64::from(e.1) <= task {
            polls[m] = e;
            m += 1;
        }
    }
    if m < 3 {
        return None;
    }
    let polls = &polls[..m];
    let mut intervals = [0f64; EVENT_RING];
    for (iv, w) in intervals.iter_mut().zip(polls.windows(2)) {
        *iv = f64::from(w[1].0.saturating_sub(w[0].0)) / 100.0;
    }
    let k = m - 1;
    let mut sorted = intervals;
    let interval_s = stats::median(&mut sorted[..k]);
    // Missed beats: an interval near a multiple of the period counts as that many beats,
    // but only for a few intervals (a quarter, at least one): folding every long gap of
    // random traffic would make anything look periodic.
    let mut beats = [0f64; EVENT_RING];
    let mut folded = 0;
    for (b, &iv) in beats.iter_mut().zip(&intervals[..k]) {
        let n = (iv / interval_s.max(1e-9)).round().max(1.0);
        folded += usize::from(n > 1.0);
        *b = iv / n;
    }
    let beats = if folded <= (k / 4).max(1) {
        &beats[..k]
    } else {
        &intervals[..k]
    };
    let regularity = timing_regularity(beats);
    let in_band = beats
        .iter()
        .filter(|&&b| (b - interval_s).abs() <= 0.5 * interval_s)
        .count() as f64
        / k as f64;
    let mut poll_sizes = [0f64; EVENT_RING];
    for (s, e) in poll_sizes.iter_mut().zip(polls) {
        *s = f64::from(e.1);
    }
    let size_regularity = size_regularity(&mut poll_sizes[..m]);
    let median_bytes = stats::median(&mut poll_sizes[..m]);
    Some(BeaconFacts {
        regularity,
        in_band,
        size_regularity,
        interval_s,
        median_bytes,
        events: m as u32,
        events_needed: events_needed(cfg, interval_s),
        regularity_needed: regularity_needed(cfg, interval_s),
    })
}

/// Regularity of a beacon's intervals in [0, 1]: RITA's mean of a Bowley-skewness score and a
/// MAD score (see [`stats::regularity`]), with the skewness term given less weight the fewer
/// the intervals (full weight from 30): the quartiles of a dozen jittered intervals are
/// mostly noise, while the MAD score alone already separates jitter of ±50 % (0.75) from
/// random, memoryless traffic (about 0.3).
pub fn timing_regularity(intervals: &[f64]) -> f64 {
    let k = intervals.len();
    if k < 2 {
        return 0.0;
    }
    let mut v = [0f64; EVENT_RING];
    let n = k.min(EVENT_RING);
    v[..n].copy_from_slice(&intervals[..n]);
    let v = &mut v[..n];
    let q1 = stats::quantile(v, 0.25);
    let q2 = stats::quantile(v, 0.5);
    let q3 = stats::quantile(v, 0.75);
    let skew_score = if q3 - q1 <= f64::EPSILON || q2 <= 0.0 {
        1.0
    } else {
        let bowley = ((q1 + q3 - 2.0 * q2) / (q3 - q1)).abs();
        let spread = ((q3 - q1) / (0.1 * q2)).min(1.0);
        (1.0 - bowley * spread).clamp(0.0, 1.0)
    };
    let mut dev = [0f64; EVENT_RING];
    for (d, x) in dev.iter_mut().zip(v.iter()) {
        *d = (x - q2).abs();
    }
    let mad = stats::median(&mut dev[..n]);
    let mad_score = if q2 <= 0.0 {
        0.0
    } else {
        (1.0 - mad / q2).clamp(0.0, 1.0)
    };
    let w = (n as f64 / 30.0).min(1.0);
    ((w * skew_score + (2.0 - w) * mad_score) / 2.0).clamp(0.0, 1.0)
}

/// Regularity of data sizes as RITA scores it: the mean of `1 - |Bowley skewness|` (taken as 0
/// when the interquartile range is under 10 bytes or the median sits on a quartile) and
/// `(median - MAD) / median` (0 for a median under one byte), in [0, 1]. Sorts `v`.
pub fn size_regularity(v: &mut [f64]) -> f64 {
    if v.len() < 3 {
        return 0.0;
    }
    let q1 = stats::quantile(v, 0.25);
    let q2 = stats::quantile(v, 0.5);
    let q3 = stats::quantile(v, 0.75);
    let den = q3 - q1;
    let skew = if den >= 10.0 && q2 != q1 && q2 != q3 {
        (q1 + q3 - 2.0 * q2) / den
    } else {
        0.0
    };
    let skew_score = (1.0 - skew.abs()).clamp(0.0, 1.0);
    let mut dev = [0f64; EVENT_RING];
    let n = v.len().min(EVENT_RING);
    for (d, x) in dev.iter_mut().zip(v.iter()) {
        *d = (x - q2).abs();
    }
    let mad = stats::median(&mut dev[..n]);
    let mad_score = if q2 >= 1.0 {
        ((q2 - mad) / q2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (skew_score + mad_score) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(starts_s: &[f64], bytes: &[u32]) -> Vec<(u32, u32)> {
        starts_s
            .iter()
            .zip(bytes.iter().cycle())
            .map(|(&t, &b)| ((t * 100.0) as u32, b))
            .collect()
    }

    #[test]
    fn the_rule_asks_more_of_fast_beacons() {
        let cfg = DetectConfig::default();
        let base = cfg.beacon_min_events;
        assert_eq!(events_needed(&cfg, 1.0), base);
        assert_eq!(events_needed(&cfg, 300.0), base);
        assert!(events_needed(&cfg, 600.0) < base);
        assert_eq!(events_needed(&cfg, 86_400.0), base.min(6));
        let r1 = regularity_needed(&cfg, 1.0);
        let r30 = regularity_needed(&cfg, 30.0);
        assert!((r30 - cfg.beacon_min_regularity).abs() < 1e-12);
        let half = 0.5 * (1.0 - cfg.beacon_min_regularity);
        assert!(
            (r1 - (cfg.beacon_min_regularity + half)).abs() < 1e-9,
            "{r1}"
        );
        assert!(regularity_needed(&cfg, 3600.0) == r30);
        assert!(regularity_needed(&cfg, 2.2) > r30 && regularity_needed(&cfg, 2.2) < r1);
    }

    #[test]
    fn polls_with_uploads_between_them_are_still_a_beacon() {
        let cfg = DetectConfig::default();
        // Polls about every 45 s (30..60), 400..500 bytes; two 9 kB uploads in between.
        let mut ex = Vec::new();
        let gaps = [
            41.0, 52.0, 37.0, 58.0, 44.0, 49.0, 33.0, 55.0, 46.0, 40.0, 50.0,
        ];
        let mut t = 0.0;
        for (i, g) in gaps.iter().enumerate() {
            ex.push(((t * 100.0) as u32, 400 + (i as u32 * 37) % 100));
            if i == 3 || i == 7 {
                ex.push((((t + 12.0) * 100.0) as u32, 9_000));
            }
            t += g;
        }
        ex.push(((t * 100.0) as u32, 450));
        let f = analyze(&cfg, &ex).unwrap_or_else(|| panic!("no facts"));
        assert_eq!(f.events, 12);
        assert!(f.is_beacon(&cfg), "{f:?}");
        assert!(f.size_regularity > 0.8, "{f:?}");
    }

    #[test]
    fn a_fast_regular_beacon_passes_and_random_traffic_does_not() {
        let cfg = DetectConfig::default();
        let starts: Vec<f64> = (0..10).map(|i| f64::from(i) * 2.2).collect();
        let f = analyze(&cfg, &series(&starts, &[700])).unwrap_or_else(|| panic!("no facts"));
        assert!(f.is_beacon(&cfg), "{f:?}");
        assert_eq!(f.size_regularity, 1.0);
        let random = [
            0.0, 3.0, 143.0, 155.0, 230.0, 231.0, 531.0, 564.0, 572.0, 700.0,
        ];
        let f = analyze(&cfg, &series(&random, &[700])).unwrap_or_else(|| panic!("no facts"));
        assert!(!f.is_beacon(&cfg), "{f:?}");
        // Too few polls: seen, but not enough.
        let f = analyze(&cfg, &series(&starts[..6], &[700])).unwrap_or_else(|| panic!("none"));
        assert!(!f.is_beacon(&cfg) && f.events == 6, "{f:?}");
    }

    #[test]
    fn size_regularity_separates_fixed_from_scattered_sizes() {
        assert_eq!(size_regularity(&mut [500.0; 8]), 1.0);
        let mut scattered = [100.0, 9000.0, 350.0, 4000.0, 20.0, 12000.0, 800.0, 60.0];
        assert!(size_regularity(&mut scattered) < 0.5);
    }
}
