//! Detection settings (validated by the config crate; plain numbers here).

use crate::config::NS_PER_SEC;
use crate::net::{default_home_nets, PrefixSet};

/// Weights of the score's parts; they are normalised to sum to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// Burst peak rate relative to the host's own baseline.
    pub rate_jump: f64,
    /// Upstream volume of the burst.
    pub volume: f64,
    /// Share of the burst's bytes that went upstream.
    pub asymmetry: f64,
    /// How few subscribers talk to the endpoint.
    pub rarity: f64,
    /// How recently this host first talked to the endpoint.
    pub novelty: f64,
    /// Repetition and regularity of earlier bursts of the pair.
    pub recurrence: f64,
    /// How rarely the destination port is used across the population.
    pub port_rarity: f64,
    /// Watch-list hit (prefix, ASN or country).
    pub watchlist: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self {
            rate_jump: 0.15,
            volume: 0.10,
            asymmetry: 0.10,
            rarity: 0.30,
            novelty: 0.10,
            recurrence: 0.10,
            port_rarity: 0.05,
            watchlist: 0.10,
        }
    }
}

/// Lists that mark endpoints as watched (raise the score) or allowed (never alerted).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndpointLists {
    /// Prefixes.
    pub prefixes: PrefixSet,
    /// Autonomous system numbers (need an ASN database).
    pub asns: Vec<u32>,
    /// ISO 3166-1 alpha-2 country codes (need a country database).
    pub countries: Vec<String>,
}

impl EndpointLists {
    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty() && self.asns.is_empty() && self.countries.is_empty()
    }
}

/// Detection thresholds, caps and weights. Durations in ns of packet time, rates in bit/s.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectConfig {
    /// Subscriber prefixes: upstream is from inside them to outside.
    pub home_nets: PrefixSet,
    /// A burst must move at least this many bytes upstream.
    pub burst_min_bytes: u64,
    /// A burst lasts at most this long; longer high-rate periods are sustained transfers.
    pub burst_max_ns: i64,
    /// A second starts a burst only if the pair's upstream rate is at least this (the
    /// absolute floor under the subscriber-relative threshold).
    pub burst_rate_floor_bps: f64,
    /// ... and at least this many times the host's own p95 upstream rate (once it is known),
    pub burst_baseline_factor: f64,
    /// ... but never more than this fraction of the host's highest one-second upstream rate
    /// seen so far (a slow uplink can still burst; see `DetectConfig::burst_entry`).
    pub burst_peak_fraction: f64,
    /// A burst continues through seconds at this fraction of the entry rate or more.
    pub burst_continue_ratio: f64,
    /// A burst ends after this long below the continuation rate.
    pub burst_quiet_ns: i64,
    /// At least this share of the burst's bytes must go upstream.
    pub burst_min_upstream_ratio: f64,
    /// Seconds of host activity before its baseline is trusted.
    pub baseline_warmup_seconds: u32,
    /// An endpoint contacted by at most this many distinct subscribers is rare.
    pub rare_max_hosts: u32,
    /// ... and only if its prefix (all endpoints in it together) was contacted by at most this
    /// many distinct subscribers: an address of shared infrastructure whose neighbours many
    /// subscribers reach is not rare.
    pub rare_prefix_max_hosts: u32,
    /// Length of the IPv4 prefix whose subscribers are counted together (1..=32).
    pub prevalence_prefix_v4: u8,
    /// Length of the IPv6 prefix whose subscribers are counted together (1..=128).
    pub prevalence_prefix_v6: u8,
    /// Distinct subscribers are counted over this look-back.
    pub lookback_ns: i64,
    /// A pair first seen less than this long ago is new.
    pub novelty_ns: i64,
    /// Alerts are held this long after the event so that prevalence settles.
    pub alert_hold_ns: i64,
    /// Alerts need at least this score.
    pub alert_min_score: f64,
    /// Score bands for severity: `[medium, high, critical]` lower bounds (below: low).
    pub severity_bands: [f64; 3],
    /// Silence (no payload either way) before an upstream packet with payload that starts a
    /// new exchange of a pair (beacon analysis; see [`super::exchange`]).
    pub beacon_event_gap_ns: i64,
    /// Exchanges a beacon needs (up to a period of 300 s; slower ones need fewer, see
    /// [`super::beacon`]). `u32::MAX` turns beacon scoring off (flow export, whose records
    /// and samples keep no packet timing): exchanges are then not analysed at all.
    pub beacon_min_events: u32,
    /// Median bytes (both ways) of an event of a beacon, at most.
    pub beacon_max_event_bytes: u64,
    /// Median interval between beacon events, at least.
    pub beacon_min_interval_ns: i64,
    /// Minimum regularity (0..1) of a beacon's intervals (from a period of 30 s; faster ones
    /// need more, see [`super::beacon`]).
    pub beacon_min_regularity: f64,
    /// After a beacon alert, the pair is not alerted again as a beacon for this long.
    pub beacon_realert_ns: i64,
    /// Cap on tracked subscribers (least recently seen evicted, counted).
    pub max_hosts: usize,
    /// Cap on tracked (subscriber, endpoint) pairs.
    pub max_pairs: usize,
    /// Cap on tracked endpoints.
    pub max_endpoints: usize,
    /// Endpoints whose bursts raise the score.
    pub watch: EndpointLists,
    /// Endpoints never alerted (backup services, speed tests).
    pub allow: EndpointLists,
    /// Score weights.
    pub weights: Weights,
}

impl DetectConfig {
    /// The key of the prevalence prefix of an endpoint (its address masked to
    /// `prevalence_prefix_v4` or `prevalence_prefix_v6` bits), and the prefix length.
    #[inline]
    pub(crate) fn prevalence_prefix(&self, ext: &crate::key::Addr) -> (crate::key::Addr, u8) {
        let n = u128::from_be_bytes(*ext);
        let v4 = n >> 32 == 0xffff;
        let len = if v4 {
            self.prevalence_prefix_v4.clamp(1, 32)
        } else {
            self.prevalence_prefix_v6.clamp(1, 128)
        };
        let bits = u32::from(len) + if v4 { 96 } else { 0 };
        let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
        ((n & mask).to_be_bytes(), len)
    }
}

/// What set the rate a second needed to start a burst.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ThresholdBasis {
    /// The absolute floor (`burst_rate_floor_bps`): the subscriber is quiet or still warming up.
    #[default]
    Floor,
    /// `burst_baseline_factor` times the subscriber's p95 upstream rate.
    Baseline,
    /// `burst_peak_fraction` of the subscriber's highest one-second upstream rate (its baseline
    /// times the factor would be more than its uplink has shown it can carry).
    UplinkPeak,
}

impl ThresholdBasis {
    /// Stable lower-case name (alert JSON `rate_threshold.basis`).
    pub fn as_str(self) -> &'static str {
        match self {
            ThresholdBasis::Floor => "floor",
            ThresholdBasis::Baseline => "baseline",
            ThresholdBasis::UplinkPeak => "uplink_peak",
        }
    }
}

impl DetectConfig {
    /// Bytes in one second that start a burst for a subscriber with this baseline (p95 of its
    /// active seconds, `None` while warming up) and this highest one-second upstream byte count
    /// so far (`0`: none yet), and what set it.
    ///
    /// `max(floor, min(factor x p95, peak_fraction x peak))`: relative to the subscriber's own
    /// ordinary activity, capped by what its uplink has shown it can carry (a busy subscriber on
    /// a slow line can still burst), never below the absolute floor.
    #[inline]
    pub(crate) fn burst_entry(&self, baseline: Option<f64>, peak: u64) -> (f64, ThresholdBasis) {
        let floor = self.burst_rate_floor_bps / 8.0;
        let Some(b) = baseline else {
            return (floor, ThresholdBasis::Floor);
        };
        let relative = b * self.burst_baseline_factor;
        let cap = peak as f64 * self.burst_peak_fraction;
        let (rel, basis) = if peak > 0 && cap < relative {
            (cap, ThresholdBasis::UplinkPeak)
        } else {
            (relative, ThresholdBasis::Baseline)
        };
        if rel > floor {
            (rel, basis)
        } else {
            (floor, ThresholdBasis::Floor)
        }
    }
}

impl DetectConfig {
    /// Whether beacon scoring is off (`beacon_min_events == u32::MAX`).
    #[inline]
    pub fn beacons_off(&self) -> bool {
        self.beacon_min_events == u32::MAX
    }
}

impl Default for DetectConfig {
    /// The documented defaults; the caps are the shares of the default memory budget
    /// ([`crate::memory`]).
    fn default() -> Self {
        let caps = crate::memory::Caps::default();
        Self {
            home_nets: default_home_nets(),
            burst_min_bytes: 2_000_000,
            burst_max_ns: 60 * NS_PER_SEC,
            burst_rate_floor_bps: 1_000_000.0,
            burst_baseline_factor: 4.0,
            burst_peak_fraction: 0.5,
            burst_continue_ratio: 0.25,
            burst_quiet_ns: 3 * NS_PER_SEC,
            burst_min_upstream_ratio: 0.7,
            baseline_warmup_seconds: 30,
            rare_max_hosts: 3,
            rare_prefix_max_hosts: 7,
            prevalence_prefix_v4: 24,
            prevalence_prefix_v6: 48,
            lookback_ns: 3600 * NS_PER_SEC,
            novelty_ns: 3600 * NS_PER_SEC,
            alert_hold_ns: 60 * NS_PER_SEC,
            alert_min_score: 0.4,
            severity_bands: [0.65, 0.8, 0.9],
            beacon_event_gap_ns: NS_PER_SEC / 2,
            beacon_min_events: 10,
            beacon_max_event_bytes: 20_000,
            beacon_min_interval_ns: NS_PER_SEC,
            beacon_min_regularity: 0.65,
            beacon_realert_ns: 3600 * NS_PER_SEC,
            max_hosts: caps.max_hosts,
            max_pairs: caps.max_pairs,
            max_endpoints: caps.max_endpoints,
            watch: EndpointLists::default(),
            allow: EndpointLists::default(),
            weights: Weights::default(),
        }
    }
}
