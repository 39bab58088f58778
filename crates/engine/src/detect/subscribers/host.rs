//! A subscriber's own state: its upstream baseline and peak, and its hash in prevalence sets.

use crate::detect::config::{DetectConfig, ThresholdBasis};
use crate::detect::stats::LogQuantile;
use crate::key::Addr;

/// Subscriber state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct HostState {
    pub(super) sec: i64,
    /// Upstream bytes of the open second (saturating).
    pub(crate) bin_up: u32,
    /// Of those, the bytes of pairs kept out of the baseline (see [`HostState::add_upstream`]).
    #[serde(default)]
    pub(crate) bin_held: u32,
    pub(super) p50: Option<LogQuantile>,
    pub(super) p95: Option<LogQuantile>,
    pub(super) active_secs: u32,
    /// Highest one-second upstream byte count seen (saturating; bursts included): what the
    /// subscriber's uplink has shown it can carry.
    #[serde(default)]
    pub(super) peak_up: u32,
}

impl HostState {
    /// Roll to `ts`'s second and count upstream bytes there (what a packet does; tests).
    #[cfg(test)]
    pub(super) fn count_upstream(
        &mut self,
        ts: i64,
        bytes: u32,
        held: bool,
        burst_bytes: impl FnOnce(&Self) -> f64,
    ) {
        self.roll(ts.div_euclid(crate::detect::NS_PER_SEC), burst_bytes);
        self.add_upstream(bytes, held);
    }

    /// Make `sec` the open second, closing the one open before if it is older.
    ///
    /// Every packet of the subscriber, either direction, rolls it before its pair is looked
    /// at, so a pair's bin that opens takes (see `PairState::set_bin_thresholds`) a baseline
    /// and peak of every second of the subscriber before the bin's own, whichever packet of
    /// the second came first. `burst_bytes` is asked only when a second closes (it reads the
    /// baseline).
    ///
    /// A late packet (of a second before the open one, from input merged out of order) counts
    /// in the open second, as a pair's late packet counts in its open bin; only an empty
    /// second moves back (nothing to close), so that a subscriber's first second can be any.
    #[inline]
    pub(super) fn roll(&mut self, sec: i64, burst_bytes: impl FnOnce(&Self) -> f64) {
        if sec > self.sec || (sec < self.sec && self.bin_up == 0) {
            let threshold = burst_bytes(self);
            self.close_bin(threshold);
            self.sec = sec;
        }
    }

    /// Add upstream bytes to the open second. The baseline describes the subscriber's
    /// ordinary activity, so its own bursts must not raise the bar for its next ones: `held`
    /// bytes (of a pair in a burst or recently alerted, see [`PairState::held_from_baseline`])
    /// are left out of it, and so is a closed second whose other bytes reach the rate that
    /// starts a burst. The uplink peak counts every byte.
    #[inline]
    pub(super) fn add_upstream(&mut self, bytes: u32, held: bool) {
        self.bin_up = self.bin_up.saturating_add(bytes);
        if held {
            self.bin_held = self.bin_held.saturating_add(bytes);
        }
    }

    pub(super) fn close_bin(&mut self, burst_bytes: f64) {
        self.peak_up = self.peak_up.max(self.bin_up);
        let ordinary = self.bin_up.saturating_sub(self.bin_held);
        if ordinary > 0 && f64::from(ordinary) < burst_bytes {
            let x = f64::from(ordinary);
            self.p50.get_or_insert(LogQuantile::new(0.5)).update(x);
            self.p95.get_or_insert(LogQuantile::new(0.95)).update(x);
            self.active_secs = self.active_secs.saturating_add(1);
        }
        self.bin_up = 0;
        self.bin_held = 0;
    }

    /// The rate (bytes/s) a second needs to start a burst of this subscriber, and what set it
    /// (see [`DetectConfig::burst_entry`]).
    #[inline]
    pub(crate) fn burst_entry(&self, cfg: &DetectConfig) -> (f64, ThresholdBasis) {
        cfg.burst_entry(
            self.baseline_bytes(cfg.baseline_warmup_seconds),
            u64::from(self.peak_up),
        )
    }

    /// p95 of active-second upstream bytes, once warm.
    pub(crate) fn baseline_bytes(&self, warmup: u32) -> Option<f64> {
        if self.active_secs < warmup {
            return None;
        }
        self.p95.map(|q| q.value())
    }
}

/// Hash of a subscriber address as kept in endpoint prevalence sets (a fixed key: it must
/// not depend on the run, the shard or the machine).
pub(crate) fn host_hash(home: &Addr) -> u32 {
    use std::hash::Hasher as _;
    // Written to the state file: the algorithm and key are fixed, so a file written on one
    // machine or version is read the same on another.
    let mut h = siphasher::sip::SipHasher13::new_with_keys(HOST_HASH_KEY.0, HOST_HASH_KEY.1);
    h.write(home);
    (h.finish() >> 32) as u32
}

/// The fixed key of [`host_hash`] (part of the state file format: changing it is a new
/// `STATE_VERSION`).
const HOST_HASH_KEY: (u64, u64) = (0x6275_7273_7477_6174, 0x6368_2d68_6f73_7473);
