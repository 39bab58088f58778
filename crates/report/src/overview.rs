//! Whole-run traffic over time in a bounded number of bins.
//!
//! Bins start one second wide; when the run outgrows [`MAX_BINS`] bins, neighbours are merged
//! and the width doubles, so any run length fits in at most `MAX_BINS` bins.

/// Most bins kept.
pub const MAX_BINS: usize = 4096;

const S: i64 = 1_000_000_000;

/// Upstream and downstream bytes per time bin.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    origin_sec: Option<i64>,
    width: i64,
    /// (bytes up, bytes down) per bin.
    bins: Vec<(u64, u64)>,
}

impl Overview {
    /// An empty overview.
    pub fn new() -> Self {
        Self {
            origin_sec: None,
            width: 1,
            bins: Vec::new(),
        }
    }

    /// Count `bytes` at `ts_ns`, upstream or downstream. Packets before the first one counted
    /// (out-of-order inputs) go to the first bin.
    pub fn add(&mut self, ts_ns: i64, up: bool, bytes: u64) {
        let sec = ts_ns.div_euclid(S);
        let origin = *self.origin_sec.get_or_insert(sec);
        let mut idx = (sec.saturating_sub(origin).max(0) / self.width) as usize;
        while idx >= MAX_BINS {
            self.halve();
            idx = (sec.saturating_sub(origin).max(0) / self.width) as usize;
        }
        if idx >= self.bins.len() {
            self.bins.resize(idx + 1, (0, 0));
        }
        let b = &mut self.bins[idx];
        if up {
            b.0 = b.0.saturating_add(bytes);
        } else {
            b.1 = b.1.saturating_add(bytes);
        }
    }

    fn halve(&mut self) {
        self.bins = self
            .bins
            .chunks(2)
            .map(|c| c.iter().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1)))
            .collect();
        self.width = self.width.saturating_mul(2);
    }

    /// Bin width in seconds.
    pub fn width_seconds(&self) -> i64 {
        self.width
    }

    /// `(bin start in seconds since the epoch, bytes up, bytes down)` per bin.
    pub fn bins(&self) -> impl Iterator<Item = (i64, u64, u64)> + '_ {
        let origin = self.origin_sec.unwrap_or(0);
        self.bins
            .iter()
            .enumerate()
            .map(move |(i, b)| (origin + i as i64 * self.width, b.0, b.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_keeps_totals() {
        let mut o = Overview::new();
        let t0 = 1_700_000_000 * S;
        for i in 0..100_000i64 {
            o.add(t0 + i * S, i % 2 == 0, 10);
        }
        o.add(t0 - 50 * S, false, 7); // out of order: first bin
        let bins: Vec<_> = o.bins().collect();
        assert!(bins.len() <= MAX_BINS);
        assert_eq!(o.width_seconds(), 32);
        assert_eq!(bins[0].0, 1_700_000_000);
        let (up, down) = bins.iter().fold((0, 0), |a, b| (a.0 + b.1, a.1 + b.2));
        assert_eq!((up, down), (500_000, 500_007));
    }
}
