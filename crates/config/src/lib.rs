//! # burstwatch-config
//!
//! Turns the TOML text of `burstwatch.toml` into validated settings for the engine. Every key
//! carries its unit in its name (`tcp_idle_timeout_seconds`, `max_flows`); every missing key
//! takes the documented default; every error names the file, the line and the key:
//!
//! ```
//! let err = burstwatch_config::Settings::parse("[flow]\nudp_idle_timeout_seconds = -5\n", "x.toml")
//!     .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "x.toml:2: flow.udp_idle_timeout_seconds: must be a number of seconds > 0 and <= 604800, got -5"
//! );
//! ```
#![forbid(unsafe_code)]

use std::path::Path;

use std::path::PathBuf;

mod cluster;
mod daemon;
mod limits;
mod locate;
mod sinks;
pub use cluster::ClusterSettings;
pub use daemon::{interface_name_error, Backend, DaemonSettings};
pub use limits::Limits;
pub use locate::{key_line, read_config_text, MAX_CONFIG_BYTES};
pub use sinks::{
    AuthSettings, HttpClientSettings, SyslogSettings, SyslogTransport, WebhookSettings,
};

use burstwatch_engine::detect::{DetectConfig, EndpointLists, Weights};
use burstwatch_engine::net::{Prefix, PrefixSet};
use burstwatch_engine::{FlowConfig, NS_PER_SEC};
use serde::Deserialize;
use toml::Spanned;

/// A configuration error: where it is and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// File name as given.
        path: String,
        /// The IO error (in the message, so not also a `source`).
        error: std::io::Error,
    },
    /// A syntax error, unknown key or wrong type, or a value out of range.
    #[error("{origin}:{line}: {key}{sep}{message}", sep = if key.is_empty() { "" } else { ": " })]
    Invalid {
        /// File name (or other origin) of the text.
        origin: String,
        /// 1-based line of the offending key or value.
        line: usize,
        /// Dotted key path, empty when the key is unknown to the parser's message.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// Flow-table timeouts and caps.
    pub flow: FlowConfig,
    /// Detection thresholds, caps, lists and weights.
    pub detect: DetectConfig,
    /// Endpoint enrichment databases.
    pub enrich: EnrichSettings,
    /// Live capture, outputs and state of `burstwatch daemon`.
    pub daemon: DaemonSettings,
    /// What pseudonymisation (`analyze --pseudonymize KEYFILE`) covers.
    pub privacy: PrivacySettings,
    /// The memory budget the caps come from.
    pub limits: Limits,
    /// Endpoint prevalence shared with other sensors (`[cluster]`).
    pub cluster: ClusterSettings,
}

/// What `--pseudonymize` maps when it is given (the key itself is never in the config).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrivacySettings {
    /// Also pseudonymise external endpoints, not only home-network (subscriber) addresses.
    pub pseudonymize_endpoints: bool,
    /// A key file that turns pseudonymisation on for every run with this config: the daemon's
    /// flow records, alerts and sinks, and `analyze` without `--pseudonymize`. Relative to the
    /// config file.
    pub key_file: Option<PathBuf>,
}

/// MaxMind-format (`.mmdb`) databases for endpoint ASN and country.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnrichSettings {
    /// An ASN database (GeoLite2-ASN layout: `autonomous_system_number`).
    pub asn_database: Option<PathBuf>,
    /// A country database (GeoLite2-Country layout: `country.iso_code`).
    pub country_database: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    flow: RawFlow,
    #[serde(default)]
    detect: RawDetect,
    #[serde(default)]
    enrich: RawEnrich,
    #[serde(default)]
    daemon: daemon::RawDaemon,
    #[serde(default)]
    privacy: RawPrivacy,
    #[serde(default)]
    limits: limits::RawLimits,
    #[serde(default)]
    cluster: cluster::RawCluster,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawPrivacy {
    pseudonymize_endpoints: Option<bool>,
    key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEnrich {
    asn_database: Option<String>,
    country_database: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDetect {
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
    max_hosts: Option<Spanned<i64>>,
    max_pairs: Option<Spanned<i64>>,
    max_endpoints: Option<Spanned<i64>>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFlow {
    tcp_idle_timeout_seconds: Option<Spanned<f64>>,
    udp_idle_timeout_seconds: Option<Spanned<f64>>,
    icmp_idle_timeout_seconds: Option<Spanned<f64>>,
    other_idle_timeout_seconds: Option<Spanned<f64>>,
    active_timeout_seconds: Option<Spanned<f64>>,
    tcp_close_grace_seconds: Option<Spanned<f64>>,
    max_flows: Option<Spanned<i64>>,
    max_fragments: Option<Spanned<i64>>,
    fragment_timeout_seconds: Option<Spanned<f64>>,
}

/// The longest timeout accepted: one week.
const MAX_SECONDS: f64 = 604_800.0;

struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn invalid(&self, offset: usize, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line: self.line(offset),
            key: key.to_string(),
            message,
        }
    }

    fn seconds(
        &self,
        v: &Option<Spanned<f64>>,
        key: &str,
        default_ns: i64,
    ) -> Result<i64, ConfigError> {
        self.seconds_in(v, key, default_ns, 0.0, MAX_SECONDS)
    }

    /// Seconds within `(lo, hi]` (`[lo, hi]` when `lo > 0`), as nanoseconds. A value that
    /// rounds to 0 ns (1e-12) is refused rather than silently turned into "no time at all".
    fn seconds_in(
        &self,
        v: &Option<Spanned<f64>>,
        key: &str,
        default_ns: i64,
        lo: f64,
        hi: f64,
    ) -> Result<i64, ConfigError> {
        let Some(v) = v else { return Ok(default_ns) };
        let s = *v.get_ref();
        let at = v.span().start;
        let in_range = s.is_finite() && s <= hi && if lo > 0.0 { s >= lo } else { s > 0.0 };
        if !in_range {
            let low = if lo > 0.0 {
                format!(">= {lo}")
            } else {
                "> 0".to_string()
            };
            return Err(self.invalid(
                at,
                key,
                format!("must be a number of seconds {low} and <= {hi}, got {s}"),
            ));
        }
        let ns = (s * NS_PER_SEC as f64).round() as i64;
        if ns < 1 {
            return Err(self.invalid(
                at,
                key,
                format!("{s} seconds is less than a nanosecond (the clock's unit): it would be 0"),
            ));
        }
        Ok(ns)
    }

    fn count(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: usize,
        max: i64,
    ) -> Result<usize, ConfigError> {
        self.count_in(v, key, default, 1, max)
    }

    fn count_in(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: usize,
        min: i64,
        max: i64,
    ) -> Result<usize, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let n = *v.get_ref();
        if !(min..=max).contains(&n) {
            return Err(self.invalid(
                v.span().start,
                key,
                format!("must be an integer from {min} to {max}, got {n}"),
            ));
        }
        usize::try_from(n).map_err(|_| {
            self.invalid(
                v.span().start,
                key,
                format!("{n} does not fit this machine"),
            )
        })
    }
}

impl Ctx<'_> {
    fn number(
        &self,
        v: &Option<Spanned<f64>>,
        key: &str,
        default: f64,
        lo: f64,
        hi: f64,
    ) -> Result<f64, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        if !(x.is_finite() && x >= lo && x <= hi) {
            return Err(self.invalid(
                v.span().start,
                key,
                format!("must be a number from {lo} to {hi}, got {x}"),
            ));
        }
        Ok(x)
    }

    fn prefixes(
        &self,
        v: &Option<Spanned<Vec<String>>>,
        key: &str,
    ) -> Result<Option<PrefixSet>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let mut out = Vec::new();
        for s in v.get_ref() {
            let p: Prefix = s
                .parse()
                .map_err(|e: burstwatch_engine::net::PrefixError| {
                    self.invalid(v.span().start, key, e.to_string())
                })?;
            out.push(p);
        }
        Ok(Some(PrefixSet::new(out)))
    }

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

    fn detect(&self, r: &RawDetect) -> Result<DetectConfig, ConfigError> {
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

impl Settings {
    /// Parse and validate TOML text; `origin` names it in errors (usually the file path).
    pub fn parse(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        let ctx = Ctx { text, origin };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            ctx.invalid(offset, "", e.message().trim().to_string())
        })?;
        let d = FlowConfig::default();
        let f = &raw.flow;
        let flow = FlowConfig {
            tcp_idle_ns: ctx.seconds(
                &f.tcp_idle_timeout_seconds,
                "flow.tcp_idle_timeout_seconds",
                d.tcp_idle_ns,
            )?,
            udp_idle_ns: ctx.seconds(
                &f.udp_idle_timeout_seconds,
                "flow.udp_idle_timeout_seconds",
                d.udp_idle_ns,
            )?,
            icmp_idle_ns: ctx.seconds(
                &f.icmp_idle_timeout_seconds,
                "flow.icmp_idle_timeout_seconds",
                d.icmp_idle_ns,
            )?,
            other_idle_ns: ctx.seconds(
                &f.other_idle_timeout_seconds,
                "flow.other_idle_timeout_seconds",
                d.other_idle_ns,
            )?,
            active_timeout_ns: ctx.seconds(
                &f.active_timeout_seconds,
                "flow.active_timeout_seconds",
                d.active_timeout_ns,
            )?,
            tcp_close_grace_ns: ctx.seconds(
                &f.tcp_close_grace_seconds,
                "flow.tcp_close_grace_seconds",
                d.tcp_close_grace_ns,
            )?,
            max_flows: ctx.count(&f.max_flows, "flow.max_flows", d.max_flows, 1_000_000_000)?,
            max_fragments: ctx.count(
                &f.max_fragments,
                "flow.max_fragments",
                d.max_fragments,
                100_000_000,
            )?,
            fragment_timeout_ns: ctx.seconds(
                &f.fragment_timeout_seconds,
                "flow.fragment_timeout_seconds",
                d.fragment_timeout_ns,
            )?,
        };
        let detect = ctx.detect(&raw.detect)?;
        let base = std::path::Path::new(origin)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        // Relative database paths are relative to the config file.
        let path = |p: &Option<String>| p.as_ref().map(|p| base.join(p));
        let enrich = EnrichSettings {
            asn_database: path(&raw.enrich.asn_database),
            country_database: path(&raw.enrich.country_database),
        };
        let daemon = ctx.daemon(&raw.daemon, base)?;
        let privacy = PrivacySettings {
            pseudonymize_endpoints: raw.privacy.pseudonymize_endpoints.unwrap_or(false),
            // Empty: no key (the shipped config's way of leaving it unset).
            key_file: path(&raw.privacy.key_file.clone().filter(|k| !k.is_empty())),
        };
        let overrides = burstwatch_engine::memory::CapOverrides {
            max_flows: f.max_flows.is_some().then_some(flow.max_flows),
            max_hosts: raw.detect.max_hosts.is_some().then_some(detect.max_hosts),
            max_pairs: raw.detect.max_pairs.is_some().then_some(detect.max_pairs),
            max_endpoints: raw
                .detect
                .max_endpoints
                .is_some()
                .then_some(detect.max_endpoints),
        };
        let cluster = ctx.cluster(
            &raw.cluster,
            base,
            daemon.sensor.as_ref(),
            privacy.key_file.as_ref(),
        )?;
        // The sensor's name in the store labels its alerts too, unless daemon.sensor names it.
        let mut daemon = daemon;
        if daemon.sensor.is_none() {
            daemon.sensor = cluster.sensor_id.clone();
        }
        let mut settings = Settings {
            flow,
            detect,
            enrich,
            daemon,
            privacy,
            limits: Limits::default(),
            cluster,
        };
        ctx.limits(&raw.limits, overrides, &mut settings)?;
        Ok(settings)
    }

    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = read_config_text(path)?;
        Self::parse(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    fn err(text: &str) -> String {
        Settings::parse(text, "t.toml").unwrap_err().to_string()
    }

    #[test]
    fn empty_text_gives_defaults() {
        assert_eq!(Settings::parse("", "t.toml").unwrap(), Settings::default());
    }

    #[test]
    fn values_are_converted_to_nanoseconds() {
        let s = Settings::parse(
            "[flow]\ntcp_idle_timeout_seconds = 1.5\nmax_flows = 10\n",
            "t",
        )
        .unwrap();
        assert_eq!(s.flow.tcp_idle_ns, 1_500_000_000);
        assert_eq!(s.flow.max_flows, 10);
        assert_eq!(s.flow.udp_idle_ns, 60 * NS_PER_SEC);
    }

    #[test]
    fn errors_name_key_and_line() {
        assert_eq!(
            err("# c\n[flow]\n\nmax_flows = 0\n"),
            "t.toml:4: flow.max_flows: must be an integer from 1 to 1000000000, got 0"
        );
        let unknown = err("[flow]\nmax_flow = 3\n");
        assert!(unknown.starts_with("t.toml:2: "), "{unknown}");
        assert!(unknown.contains("max_flow"), "{unknown}");
        let ty = err("[flow]\ntcp_idle_timeout_seconds = \"x\"\n");
        assert!(ty.starts_with("t.toml:2: "), "{ty}");
        let syntax = err("[flow\n");
        assert!(syntax.starts_with("t.toml:1: "), "{syntax}");
    }

    #[test]
    fn detection_keys_are_validated_with_their_line() {
        assert_eq!(
            err("[detect]\nhome_nets = [\"10.0.0.0/8\", \"bogus\"]\n"),
            "t.toml:2: detect.home_nets: not an IP prefix (expected e.g. 10.0.0.0/8 or 2001:db8::/32): bogus"
        );
        assert!(err("[detect]\nburst_continue_ratio = 1.5\n")
            .starts_with("t.toml:2: detect.burst_continue_ratio: "));
        assert!(err("[detect]\nseverity_high_score = 0.95\n").contains("bands must rise"));
        assert!(err("[detect.watch]\ncountries = [\"usa\"]\n")
            .starts_with("t.toml:2: detect.watch.countries: "));
        assert!(
            err("[detect.weights]\nrarity = -1\n").starts_with("t.toml:2: detect.weights.rarity: ")
        );
        let s = Settings::parse(
            "[detect]\nhome_nets = [\"198.18.0.0/15\"]\n[detect.allow]\nasns = [64500]\n",
            "t",
        )
        .unwrap();
        assert!(s.detect.home_nets.contains("198.18.1.1".parse().unwrap()));
        assert_eq!(s.detect.allow.asns, vec![64500]);
        let p = Settings::parse("[privacy]\npseudonymize_endpoints = true\n", "t").unwrap();
        assert!(p.privacy.pseudonymize_endpoints);
        assert_eq!(p.privacy.key_file, None);
        let k = Settings::parse("[privacy]\nkey_file = \"case.key\"\n", "/etc/bw/c.toml").unwrap();
        assert_eq!(k.privacy.key_file, Some(PathBuf::from("/etc/bw/case.key")));
        let e = Settings::parse("[privacy]\nkey_file = \"\"\n", "t").unwrap();
        assert_eq!(e.privacy.key_file, None);
        assert!(err("[privacy]\npseudonymize_endpoints = 1\n").starts_with("t.toml:2"));
    }

    #[test]
    fn values_that_would_silently_do_nothing_are_refused_with_their_line() {
        // Sub-nanosecond, negative, NaN and infinite seconds, in every section.
        for (text, key) in [
            (
                "[flow]\n\ntcp_idle_timeout_seconds = 1e-12\n",
                "flow.tcp_idle_timeout_seconds",
            ),
            (
                "[flow]\n\nactive_timeout_seconds = 4e-10\n",
                "flow.active_timeout_seconds",
            ),
            (
                "[detect]\n\nalert_hold_seconds = 1e-12\n",
                "detect.alert_hold_seconds",
            ),
            (
                "[detect]\n\nlookback_seconds = -1\n",
                "detect.lookback_seconds",
            ),
            (
                "[detect]\n\nnovelty_seconds = nan\n",
                "detect.novelty_seconds",
            ),
            (
                "[detect]\n\nbeacon_realert_seconds = inf\n",
                "detect.beacon_realert_seconds",
            ),
            (
                "[daemon]\n\nretry_seconds = 1e-12\n",
                "daemon.retry_seconds",
            ),
            // One-second bins: a burst cannot be shorter, nor end after less quiet.
            (
                "[detect]\n\nburst_max_seconds = 0.5\n",
                "detect.burst_max_seconds",
            ),
            (
                "[detect]\n\nburst_quiet_seconds = 0.2\n",
                "detect.burst_quiet_seconds",
            ),
            // Never retried in practice (a week before the first retry); the backoff caps at 60.
            (
                "[daemon]\n\nretry_seconds = 604800\n",
                "daemon.retry_seconds",
            ),
            ("[daemon]\n\nretry_seconds = 61\n", "daemon.retry_seconds"),
            // Regularity needs two intervals.
            (
                "[detect]\n\nbeacon_min_events = 2\n",
                "detect.beacon_min_events",
            ),
            // libpcap's int buffer size; headers that cannot fit; a port nobody can scrape.
            ("[daemon]\n\nbuffer_mib = 4096\n", "daemon.buffer_mib"),
            ("[daemon]\n\nsnaplen = 20\n", "daemon.snaplen"),
            (
                "[daemon]\n\nmetrics_bind = \"127.0.0.1:0\"\n",
                "daemon.metrics_bind",
            ),
        ] {
            let e = err(text);
            assert!(e.starts_with(&format!("t.toml:3: {key}: ")), "{text}: {e}");
        }
        assert!(
            err("[flow]\ntcp_idle_timeout_seconds = 1e-12\n").contains("less than a nanosecond")
        );
        // One nanosecond is the smallest value that means something.
        let s = Settings::parse("[flow]\ntcp_close_grace_seconds = 1e-9\n", "t").unwrap();
        assert_eq!(s.flow.tcp_close_grace_ns, 1);
        let s = Settings::parse("[daemon]\nretry_seconds = 60\n", "t").unwrap();
        assert_eq!(s.daemon.retry_seconds, 60.0);
    }

    #[test]
    fn all_zero_weights_are_refused() {
        let zero = "[detect.weights]\nrate_jump = 0\nvolume = 0\nasymmetry = 0\nrarity = 0\n\
                    novelty = 0\nrecurrence = 0\nport_rarity = 0\nwatchlist = 0\n";
        let e = err(zero);
        assert!(
            e.starts_with("t.toml:2: detect.weights: every weight is 0"),
            "{e}"
        );
        // One part left is enough.
        assert!(Settings::parse(&zero.replace("rarity = 0", "rarity = 1"), "t").is_ok());
        // Zero for some keys while the others keep their defaults is fine.
        assert!(Settings::parse("[detect.weights]\nrarity = 0\n", "t").is_ok());
    }

    #[test]
    fn the_shipped_example_config_is_valid_and_matches_the_defaults() {
        let text = include_str!("../../../config/burstwatch.toml");
        assert_eq!(
            Settings::parse(text, "burstwatch.toml").unwrap(),
            Settings::default()
        );
    }
}
