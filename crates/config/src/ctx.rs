//! [`Ctx`]: the configuration text and its origin, and the value checkers every section uses
//! (seconds, counts, numbers, prefixes), each error naming file, line and key.

use burstwatch_engine::net::{Prefix, PrefixSet};
use burstwatch_engine::NS_PER_SEC;
use toml::Spanned;

use crate::ConfigError;

/// The longest timeout accepted: one week.
pub(crate) const MAX_SECONDS: f64 = 604_800.0;

/// Where the configuration text came from, for errors that name file, line and key; the
/// checkers every section uses.
pub(crate) struct Ctx<'a> {
    pub(crate) text: &'a str,
    pub(crate) origin: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(crate) fn invalid(&self, offset: usize, key: &str, message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line: self.line(offset),
            key: key.to_string(),
            message,
        }
    }

    pub(crate) fn seconds(
        &self,
        v: &Option<Spanned<f64>>,
        key: &str,
        default_ns: i64,
    ) -> Result<i64, ConfigError> {
        self.seconds_in(v, key, default_ns, 0.0, MAX_SECONDS)
    }

    /// Seconds within `(lo, hi]` (`[lo, hi]` when `lo > 0`), as nanoseconds. A value that
    /// rounds to 0 ns (1e-12) is refused rather than silently turned into "no time at all".
    pub(crate) fn seconds_in(
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

    pub(crate) fn count(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        default: usize,
        max: i64,
    ) -> Result<usize, ConfigError> {
        self.count_in(v, key, default, 1, max)
    }

    pub(crate) fn count_in(
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

    pub(crate) fn number(
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

    pub(crate) fn prefixes(
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
}
