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
mod ctx;
mod daemon;
mod detect;
use ctx::Ctx;
use detect::RawDetect;
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

use burstwatch_engine::detect::DetectConfig;
use burstwatch_engine::FlowConfig;
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
            export_flows: d.export_flows,
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
    use burstwatch_engine::NS_PER_SEC;

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
