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

use burstwatch_engine::{FlowConfig, NS_PER_SEC};
use serde::Deserialize;
use toml::Spanned;

/// A configuration error: where it is and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File name as given.
        path: String,
        /// The IO error.
        source: std::io::Error,
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
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    /// Flow-table timeouts and caps.
    pub flow: FlowConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    flow: RawFlow,
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
        let Some(v) = v else { return Ok(default_ns) };
        let s = *v.get_ref();
        if !(s.is_finite() && s > 0.0 && s <= MAX_SECONDS) {
            return Err(self.invalid(
                v.span().start,
                key,
                format!("must be a number of seconds > 0 and <= {MAX_SECONDS}, got {s}"),
            ));
        }
        Ok((s * NS_PER_SEC as f64).round() as i64)
    }

    fn count(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: usize,
        max: i64,
    ) -> Result<usize, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let n = *v.get_ref();
        if !(1..=max).contains(&n) {
            return Err(self.invalid(
                v.span().start,
                key,
                format!("must be an integer from 1 to {max}, got {n}"),
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
        Ok(Settings { flow })
    }

    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: origin.clone(),
            source,
        })?;
        Self::parse(&text, &origin)
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
    fn the_shipped_example_config_is_valid_and_matches_the_defaults() {
        let text = include_str!("../../../config/burstwatch.toml");
        assert_eq!(
            Settings::parse(text, "burstwatch.toml").unwrap(),
            Settings::default()
        );
    }
}
