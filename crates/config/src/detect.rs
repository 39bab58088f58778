//! The `[detect]` section: thresholds, home networks, endpoint lists and score weights into
//! the engine's [`DetectConfig`].

use burstwatch_engine::detect::{DetectConfig, EndpointLists, Weights};
use serde::Deserialize;
use toml::Spanned;

use crate::ctx::{Ctx, MAX_SECONDS};
use crate::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDetect {
    home_nets: Option<Spanned<Vec<String>>>,
    burst_min_bytes: Option<Spanned<i64>>,
    burst_max_seconds: Option<Spanned<f64>>,
    burst_rate_floor_bps: Option<Spanned<f64>>,
    burst_baseline_factor: Option<Spanned<f64>>,
    burst_peak_fraction: Option<Spanned<f64>>,
    burst_continue_ratio: Option<Spanned<f64>>,
    burst_quiet_seconds: Option<Spanned<f64>>,
    burst_min_upstream_ratio: Option<Spanned<f64>>,
    baseline_warmup_seconds: Option<Spanned<i64>>,
    rare_max_hosts: Option<Spanned<i64>>,
    rare_prefix_max_hosts: Option<Spanned<i64>>,
    prevalence_prefix_v4: Option<Spanned<i64>>,
    prevalence_prefix_v6: Option<Spanned<i64>>,
    lookback_seconds: Option<Spanned<f64>>,
    novelty_seconds: Option<Spanned<f64>>,
    alert_hold_seconds: Option<Spanned<f64>>,
    alert_min_score: Option<Spanned<f64>>,
    severity_medium_score: Option<Spanned<f64>>,
    severity_high_score: Option<Spanned<f64>>,
    severity_critical_score: Option<Spanned<f64>>,
    beacon_event_gap_seconds: Option<Spanned<f64>>,
    beacon_min_events: Option<Spanned<i64>>,
    beacon_max_event_bytes: Option<Spanned<i64>>,
    beacon_min_interval_seconds: Option<Spanned<f64>>,
    beacon_min_regularity: Option<Spanned<f64>>,
    beacon_realert_seconds: Option<Spanned<f64>>,
    pub(crate) max_hosts: Option<Spanned<i64>>,
    pub(crate) max_pairs: Option<Spanned<i64>>,
    pub(crate) max_endpoints: Option<Spanned<i64>>,
    watch: RawLists,
    allow: RawLists,
    weights: RawWeights,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLists {
    prefixes: Option<Spanned<Vec<String>>>,
    asns: Option<Spanned<Vec<i64>>>,
    countries: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWeights {
    rate_jump: Option<Spanned<f64>>,
    volume: Option<Spanned<f64>>,
    asymmetry: Option<Spanned<f64>>,
    rarity: Option<Spanned<f64>>,
    novelty: Option<Spanned<f64>>,
    recurrence: Option<Spanned<f64>>,
    port_rarity: Option<Spanned<f64>>,
    watchlist: Option<Spanned<f64>>,
}

impl Ctx<'_> {
    fn lists(&self, raw: &RawLists, section: &str) -> Result<EndpointLists, ConfigError> {
        let prefixes = self
            .prefixes(&raw.prefixes, &format!("{section}.prefixes"))?
            .unwrap_or_default();
        let mut asns = Vec::new();
        if let Some(v) = &raw.asns {
            for &a in v.get_ref() {
                let asn = u32::try_from(a).map_err(|_| {
                    self.invalid(
                        v.span().start,
                        &format!("{section}.asns"),
                        format!("not an AS number: {a}"),
                    )
                })?;
                asns.push(asn);
            }
        }
        let mut countries = Vec::new();
        if let Some(v) = &raw.countries {
            for c in v.get_ref() {
                if c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_alphabetic()) {
                    return Err(self.invalid(
                        v.span().start,
                        &format!("{section}.countries"),
                        format!("not an ISO 3166-1 alpha-2 code: {c:?}"),
                    ));
                }
                countries.push(c.to_ascii_uppercase());
            }
        }
        Ok(EndpointLists {
            prefixes,
            asns,
            countries,
        })
    }

    pub(crate) fn detect(&self, r: &RawDetect) -> Result<DetectConfig, ConfigError> {
        let d = DetectConfig::default();
        let secs = |v: &Option<Spanned<f64>>, key: &str, default: i64| {
            self.seconds(v, &format!("detect.{key}"), default)
        };
        let num = |v: &Option<Spanned<f64>>, key: &str, default: f64, lo: f64, hi: f64| {
            self.number(v, &format!("detect.{key}"), default, lo, hi)
        };
        let cnt = |v: &Option<Spanned<i64>>, key: &str, default: usize, max: i64| {
            self.count(v, &format!("detect.{key}"), default, max)
        };
        let bands = [
            num(
                &r.severity_medium_score,
                "severity_medium_score",
                d.severity_bands[0],
                0.0,
                1.0,
            )?,
            num(
                &r.severity_high_score,
                "severity_high_score",
                d.severity_bands[1],
                0.0,
                1.0,
            )?,
            num(
                &r.severity_critical_score,
                "severity_critical_score",
                d.severity_bands[2],
                0.0,
                1.0,
            )?,
        ];
        if !(bands[0] <= bands[1] && bands[1] <= bands[2]) {
            let at = r
                .severity_high_score
                .as_ref()
                .or(r.severity_critical_score.as_ref())
                .or(r.severity_medium_score.as_ref());
            return Err(self.invalid(
                at.map_or(0, |v| v.span().start),
                "detect.severity_*_score",
                format!(
                    "bands must rise: medium {} <= high {} <= critical {}",
                    bands[0], bands[1], bands[2]
                ),
            ));
        }
        let w = &r.weights;
        let dw = Weights::default();
        let wt = |v: &Option<Spanned<f64>>, key: &str, default: f64| {
            self.number(v, &format!("detect.weights.{key}"), default, 0.0, 100.0)
        };
        let weights = Weights {
            rate_jump: wt(&w.rate_jump, "rate_jump", dw.rate_jump)?,
            volume: wt(&w.volume, "volume", dw.volume)?,
            asymmetry: wt(&w.asymmetry, "asymmetry", dw.asymmetry)?,
            rarity: wt(&w.rarity, "rarity", dw.rarity)?,
            novelty: wt(&w.novelty, "novelty", dw.novelty)?,
            recurrence: wt(&w.recurrence, "recurrence", dw.recurrence)?,
            port_rarity: wt(&w.port_rarity, "port_rarity", dw.port_rarity)?,
            watchlist: wt(&w.watchlist, "watchlist", dw.watchlist)?,
        };
        let all = [
            &w.rate_jump,
            &w.volume,
            &w.asymmetry,
            &w.rarity,
            &w.novelty,
            &w.recurrence,
            &w.port_rarity,
            &w.watchlist,
        ];
        let sum = weights.rate_jump
            + weights.volume
            + weights.asymmetry
            + weights.rarity
            + weights.novelty
            + weights.recurrence
            + weights.port_rarity
            + weights.watchlist;
        if sum <= 0.0 {
            // Every score would be 0 (or NaN once normalised): nothing could ever alert.
            let at = all
                .iter()
                .find_map(|v| v.as_ref())
                .map_or(0, |v| v.span().start);
            return Err(self.invalid(
                at,
                "detect.weights",
                "every weight is 0: every score would be 0 and nothing could alert; \
                 give at least one part a weight > 0"
                    .into(),
            ));
        }
        Ok(DetectConfig {
            home_nets: self
                .prefixes(&r.home_nets, "detect.home_nets")?
                .unwrap_or(d.home_nets),
            burst_min_bytes: cnt(
                &r.burst_min_bytes,
                "burst_min_bytes",
                d.burst_min_bytes as usize,
                1 << 40,
            )? as u64,
            // Bursts are segmented in one-second bins: below a second, every burst would be
            // "too long" (max) or end in its first bin (quiet).
            burst_max_ns: self.seconds_in(
                &r.burst_max_seconds,
                "detect.burst_max_seconds",
                d.burst_max_ns,
                1.0,
                MAX_SECONDS,
            )?,
            burst_rate_floor_bps: num(
                &r.burst_rate_floor_bps,
                "burst_rate_floor_bps",
                d.burst_rate_floor_bps,
                1.0,
                1e13,
            )?,
            burst_baseline_factor: num(
                &r.burst_baseline_factor,
                "burst_baseline_factor",
                d.burst_baseline_factor,
                1.0,
                1e6,
            )?,
            burst_peak_fraction: num(
                &r.burst_peak_fraction,
                "burst_peak_fraction",
                d.burst_peak_fraction,
                0.0,
                1.0,
            )?,
            burst_continue_ratio: num(
                &r.burst_continue_ratio,
                "burst_continue_ratio",
                d.burst_continue_ratio,
                0.0,
                1.0,
            )?,
            burst_quiet_ns: self.seconds_in(
                &r.burst_quiet_seconds,
                "detect.burst_quiet_seconds",
                d.burst_quiet_ns,
                1.0,
                MAX_SECONDS,
            )?,
            burst_min_upstream_ratio: num(
                &r.burst_min_upstream_ratio,
                "burst_min_upstream_ratio",
                d.burst_min_upstream_ratio,
                0.0,
                1.0,
            )?,
            baseline_warmup_seconds: cnt(
                &r.baseline_warmup_seconds,
                "baseline_warmup_seconds",
                d.baseline_warmup_seconds as usize,
                1_000_000,
            )? as u32,
            rare_max_hosts: cnt(
                &r.rare_max_hosts,
                "rare_max_hosts",
                d.rare_max_hosts as usize,
                7,
            )? as u32,
            // The exact set holds 8 subscribers: 7 is the most that can still tell.
            rare_prefix_max_hosts: cnt(
                &r.rare_prefix_max_hosts,
                "rare_prefix_max_hosts",
                d.rare_prefix_max_hosts as usize,
                7,
            )? as u32,
            prevalence_prefix_v4: cnt(
                &r.prevalence_prefix_v4,
                "prevalence_prefix_v4",
                usize::from(d.prevalence_prefix_v4),
                32,
            )? as u8,
            prevalence_prefix_v6: cnt(
                &r.prevalence_prefix_v6,
                "prevalence_prefix_v6",
                usize::from(d.prevalence_prefix_v6),
                128,
            )? as u8,
            lookback_ns: secs(&r.lookback_seconds, "lookback_seconds", d.lookback_ns)?,
            novelty_ns: secs(&r.novelty_seconds, "novelty_seconds", d.novelty_ns)?,
            alert_hold_ns: secs(&r.alert_hold_seconds, "alert_hold_seconds", d.alert_hold_ns)?,
            alert_min_score: num(
                &r.alert_min_score,
                "alert_min_score",
                d.alert_min_score,
                0.0,
                1.0,
            )?,
            severity_bands: bands,
            beacon_event_gap_ns: secs(
                &r.beacon_event_gap_seconds,
                "beacon_event_gap_seconds",
                d.beacon_event_gap_ns,
            )?,
            beacon_min_events: self.count_in(
                &r.beacon_min_events,
                "detect.beacon_min_events",
                d.beacon_min_events as usize,
                // Regularity needs at least two intervals, so three exchanges.
                3,
                16,
            )? as u32,
            beacon_max_event_bytes: cnt(
                &r.beacon_max_event_bytes,
                "beacon_max_event_bytes",
                d.beacon_max_event_bytes as usize,
                1 << 32,
            )? as u64,
            beacon_min_interval_ns: secs(
                &r.beacon_min_interval_seconds,
                "beacon_min_interval_seconds",
                d.beacon_min_interval_ns,
            )?,
            beacon_min_regularity: num(
                &r.beacon_min_regularity,
                "beacon_min_regularity",
                d.beacon_min_regularity,
                0.0,
                1.0,
            )?,
            beacon_realert_ns: secs(
                &r.beacon_realert_seconds,
                "beacon_realert_seconds",
                d.beacon_realert_ns,
            )?,
            max_hosts: cnt(&r.max_hosts, "max_hosts", d.max_hosts, 1_000_000_000)?,
            max_pairs: cnt(&r.max_pairs, "max_pairs", d.max_pairs, 1_000_000_000)?,
            max_endpoints: cnt(
                &r.max_endpoints,
                "max_endpoints",
                d.max_endpoints,
                1_000_000_000,
            )?,
            watch: self.lists(&r.watch, "detect.watch")?,
            allow: self.lists(&r.allow, "detect.allow")?,
            weights,
        })
    }
}
