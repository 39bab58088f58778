//! Small statistics used by the detector: streaming quantiles, damped rates and the
//! regularity score of a series of event times.

/// A streaming quantile estimate in the log domain (log2(1 + x)), updated by stochastic
/// approximation: `q += step * (tau - [x < q])`. Robust to outliers, O(1) memory, and scale-free
/// because it works on orders of magnitude.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogQuantile {
    tau: f32,
    log_q: f32,
    samples: u32,
}

impl LogQuantile {
    /// Step of one update, in log2 units.
    const STEP: f32 = 0.08;

    /// An estimator for quantile `tau` (0..1).
    pub const fn new(tau: f32) -> Self {
        Self {
            tau,
            log_q: 0.0,
            samples: 0,
        }
    }

    /// Add one observation.
    #[inline]
    pub fn update(&mut self, x: f64) {
        let lx = (1.0 + x.max(0.0)).log2() as f32;
        if self.samples == 0 {
            self.log_q = lx;
        } else {
            // Larger steps while young so the estimate converges from the first sample.
            let step = Self::STEP * (1.0 + 8.0 / (1.0 + self.samples as f32));
            self.log_q += if lx < self.log_q {
                -step * (1.0 - self.tau)
            } else {
                step * self.tau
            } * 4.0;
            self.log_q = self.log_q.max(0.0);
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The current estimate (in the units of the observations).
    pub fn value(&self) -> f64 {
        f64::from(self.log_q).exp2() - 1.0
    }

    /// How many observations were seen.
    pub fn samples(&self) -> u32 {
        self.samples
    }
}

/// Median of a small slice (sorted in place).
pub fn median(v: &mut [f64]) -> f64 {
    quantile(v, 0.5)
}

/// Linear-interpolated quantile of a small slice (sorted in place). 0 for an empty slice.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    v[lo] * (1.0 - frac) + v[hi] * frac
}

/// Regularity of a series of intervals, in [0, 1]: 1 for perfectly periodic.
///
/// The score of RITA's beacon analysis (Active Countermeasures, `analysis/beacons.go`): the
/// mean of a symmetry score from Bowley's quartile skewness, `1 - |(Q1 + Q3 - 2 Q2) / (Q3 - Q1)|`,
/// and a dispersion score from the median absolute deviation relative to the median,
/// `1 - MAD / median` (each clamped to [0, 1]). The skewness term is weighted by the relative
/// interquartile range (full weight from 10 % of the median), so that a few milliseconds of
/// jitter around a fixed period do not read as asymmetry.
pub fn regularity(intervals: &[f64]) -> f64 {
    if intervals.len() < 2 {
        return 0.0;
    }
    let mut v: Vec<f64> = intervals.to_vec();
    let q1 = quantile(&mut v, 0.25);
    let q2 = quantile(&mut v, 0.5);
    let q3 = quantile(&mut v, 0.75);
    let skew_score = if q3 - q1 <= f64::EPSILON || q2 <= 0.0 {
        // A degenerate spread is perfectly symmetric.
        1.0
    } else {
        // The skew of a very tight distribution is the skew of clock jitter: weigh it by the
        // relative spread, in full from an interquartile range of 10 % of the median.
        let bowley = ((q1 + q3 - 2.0 * q2) / (q3 - q1)).abs();
        let weight = ((q3 - q1) / (0.1 * q2)).min(1.0);
        1.0 - bowley * weight
    };
    let mut dev: Vec<f64> = v.iter().map(|x| (x - q2).abs()).collect();
    let mad = median(&mut dev);
    let mad_score = if q2 <= 0.0 { 0.0 } else { 1.0 - (mad / q2) };
    ((skew_score.clamp(0.0, 1.0) + mad_score.clamp(0.0, 1.0)) / 2.0).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_quantile_tracks_median_and_high_quantile() {
        let mut p50 = LogQuantile::new(0.5);
        let mut p95 = LogQuantile::new(0.95);
        // A deterministic mix: mostly ~10 kB seconds, 1 in 20 at ~1 MB.
        for i in 0..4000u32 {
            let x = if i % 20 == 0 {
                1_000_000.0
            } else {
                8_000.0 + f64::from(i % 7) * 1_000.0
            };
            p50.update(x);
            p95.update(x);
        }
        let m = p50.value();
        assert!((6_000.0..16_000.0).contains(&m), "median {m}");
        let h = p95.value();
        assert!(h > m * 2.0, "p95 {h} should sit above the median {m}");
        assert_eq!(p50.samples(), 4000);
    }

    #[test]
    fn quantiles_of_small_slices() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(median(&mut v), 2.5);
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut v, 1.0), 4.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
    }

    #[test]
    fn regularity_separates_periodic_from_random() {
        let periodic = [60.0, 60.5, 59.5, 60.0, 60.2, 59.8, 60.1, 60.0];
        assert!(regularity(&periodic) > 0.95, "{}", regularity(&periodic));
        let random = [3.0, 140.0, 12.0, 75.0, 1.0, 300.0, 33.0, 8.0];
        assert!(regularity(&random) < 0.6, "{}", regularity(&random));
        assert_eq!(regularity(&[5.0]), 0.0);
        // Exactly periodic: zero spread is perfect.
        assert_eq!(regularity(&[30.0; 6]), 1.0);
    }
}
