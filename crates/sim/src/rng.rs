//! A small seeded PRNG (xoshiro256++ seeded through SplitMix64) and the few distributions the
//! traffic model needs. Hand-rolled so the byte stream of a given seed never changes with a
//! dependency upgrade.

/// xoshiro256++ generator.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    s: [u64; 4],
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for `seed`, on the independent sub-stream `stream` (so that e.g. the address
    /// plan does not shift when the traffic model draws more or fewer numbers).
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut st = seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407);
        let s = [
            splitmix(&mut st),
            splitmix(&mut st),
            splitmix(&mut st),
            splitmix(&mut st),
        ];
        Self { s }
    }

    /// Next 64 random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Next 32 random bits.
    #[inline]
    pub(crate) fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in [0, 1).
    #[inline]
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) (n > 0), by multiply-shift.
    #[inline]
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [lo, hi).
    #[inline]
    pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// True with probability `p`.
    #[inline]
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Exponential with the given mean.
    #[inline]
    pub(crate) fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.f64()).ln()
    }

    /// Standard normal (Box-Muller, one of the pair).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64();
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with the given median and shape `sigma`, clamped to [lo, hi].
    pub(crate) fn lognormal(&mut self, median: f64, sigma: f64, lo: f64, hi: f64) -> f64 {
        (median * (sigma * self.normal()).exp()).clamp(lo, hi)
    }

    /// Geometric count of failures before a success, with the given mean.
    pub(crate) fn geometric(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        let p = 1.0 / (1.0 + mean);
        let u = 1.0 - self.f64();
        (u.ln() / (1.0 - p).ln()).floor().min(1e6) as u32
    }
}

/// Sampling of an index by weight, through a cumulative table and binary search.
#[derive(Clone, Debug)]
pub(crate) struct Weighted {
    cdf: Vec<f64>,
}

impl Weighted {
    /// Table for `weights` (not all zero).
    pub(crate) fn new(weights: impl IntoIterator<Item = f64>) -> Self {
        let mut acc = 0.0;
        let cdf = weights
            .into_iter()
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        Self { cdf }
    }

    /// Zipf weights 1/rank^s over `n` ranks (rank 1 first).
    pub(crate) fn zipf(n: usize, s: f64) -> Self {
        Self::new((1..=n).map(|r| (r as f64).powf(-s)))
    }

    /// A random index.
    #[inline]
    pub(crate) fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cdf.last().copied().unwrap_or(0.0);
        let x = rng.f64() * total;
        self.cdf
            .partition_point(|&c| c <= x)
            .min(self.cdf.len().saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_stable_and_distinct() {
        let mut a = Rng::new(1, 0);
        let mut b = Rng::new(1, 0);
        let mut c = Rng::new(1, 1);
        let (x, y, z) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(x, y);
        assert_ne!(x, z);
    }

    #[test]
    fn distributions_have_roughly_the_right_means() {
        let mut r = Rng::new(7, 0);
        let n = 100_000;
        let m = (0..n).map(|_| r.exp(3.0)).sum::<f64>() / n as f64;
        assert!((m - 3.0).abs() < 0.1, "{m}");
        let g = (0..n).map(|_| f64::from(r.geometric(2.0))).sum::<f64>() / n as f64;
        assert!((g - 2.0).abs() < 0.1, "{g}");
        let w = Weighted::new([1.0, 0.0, 3.0]);
        let hits = (0..n).filter(|_| w.sample(&mut r) == 2).count();
        assert!((hits as f64 / n as f64 - 0.75).abs() < 0.01);
        assert!((0..1000).all(|_| w.sample(&mut r) != 1));
    }
}
