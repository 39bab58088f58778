//! Packet selection shared by `analyze` and `carve`: a packet-time window and address
//! selectors, checked on the already-decoded metadata (no allocation per packet).

use std::net::IpAddr;

use anyhow::Context as _;
use burstwatch_engine::Prefix;

/// Which packets a run keeps: time within `[since, until]` and, when selectors are given, a
/// side in `hosts` and/or the other side in `endpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Earliest packet time kept (ns since the epoch, inclusive).
    pub since_ns: Option<i64>,
    /// Latest packet time kept (ns since the epoch, inclusive).
    pub until_ns: Option<i64>,
    /// Packets must have one side in one of these prefixes (none: any).
    pub hosts: Vec<Prefix>,
    /// Packets must have the other side in one of these prefixes (none: any).
    pub endpoints: Vec<Prefix>,
}

/// Command-line selectors of `analyze` (time window, hosts, endpoints).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SelectArgs {
    /// Only packets at or after this time (RFC 3339, e.g. 2026-11-21T10:00:00Z, a date alone
    /// for midnight UTC, or epoch seconds; between the years 1677 and 2262).
    #[arg(long, value_name = "TS", value_parser = parse_time)]
    pub since: Option<i64>,
    /// Only packets at or before this time (RFC 3339, a date or epoch seconds).
    #[arg(long, value_name = "TS", value_parser = parse_time)]
    pub until: Option<i64>,
    /// Only packets with a side in this address or prefix (repeatable).
    #[arg(long = "host", value_name = "ADDR|CIDR")]
    pub hosts: Vec<Prefix>,
    /// Only packets whose other side (with --host) or either side (alone) is in this address or
    /// prefix (repeatable).
    #[arg(long = "endpoint", value_name = "ADDR|CIDR")]
    pub endpoints: Vec<Prefix>,
}

impl SelectArgs {
    /// The selection these arguments describe.
    pub fn selection(&self) -> anyhow::Result<Selection> {
        if let (Some(s), Some(u)) = (self.since, self.until) {
            anyhow::ensure!(s <= u, "--since is after --until");
        }
        Ok(Selection {
            since_ns: self.since,
            until_ns: self.until,
            hosts: self.hosts.clone(),
            endpoints: self.endpoints.clone(),
        })
    }
}

fn any_contains(set: &[Prefix], ip: IpAddr) -> bool {
    set.iter().any(|p| p.contains(ip))
}

impl Selection {
    /// Whether the selection needs decoded addresses.
    pub fn has_addresses(&self) -> bool {
        !self.hosts.is_empty() || !self.endpoints.is_empty()
    }

    /// Whether a packet time lies in the window.
    #[inline]
    pub fn time_ok(&self, ts_ns: i64) -> bool {
        self.since_ns.is_none_or(|s| ts_ns >= s) && self.until_ns.is_none_or(|u| ts_ns <= u)
    }

    /// Whether a packet between `src` and `dst` (either direction) is selected by address.
    #[inline]
    pub fn addrs_ok(&self, src: IpAddr, dst: IpAddr) -> bool {
        let side = |host: IpAddr, other: IpAddr| {
            (self.hosts.is_empty() || any_contains(&self.hosts, host))
                && (self.endpoints.is_empty() || any_contains(&self.endpoints, other))
        };
        side(src, dst) || side(dst, src)
    }
}

/// Parses a time given as RFC 3339 (`2026-11-21T10:00:00Z`, `2026-11-21T11:00:00.5+01:00`),
/// as a date alone (`2026-11-21`, midnight UTC) or as decimal seconds since the Unix epoch
/// (`1763719200`, `1763719200.25`, read exactly), to ns since the epoch. Impossible dates
/// (`2026-02-31`) are refused, and so are times outside what packet times can hold (ns in
/// an i64: 1677-09-21T00:12:43.145224192Z to 2262-04-11T23:47:16.854775807Z).
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let ns = match parse_epoch(s) {
        Some(ns) => ns,
        None => parse_rfc3339(s)?,
    };
    i64::try_from(ns).map_err(|_| {
        anyhow::anyhow!(
            "{s} is out of range: times must lie between {} and {}",
            crate::summary::utc_ns(i64::MIN),
            crate::summary::utc_ns(i64::MAX)
        )
    })
}

/// Decimal epoch seconds, read exactly (no floating point), as ns; `None` if `s` is not a
/// decimal number.
fn parse_epoch(s: &str) -> Option<i128> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (body.contains('.') && frac.is_empty()) {
        return None;
    }
    let mut frac_ns = 0i128;
    for (i, c) in frac.bytes().take(9).enumerate() {
        frac_ns += i128::from(c - b'0') * 10i128.pow(8 - i as u32);
    }
    // Anything longer than 30 digits is out of range anyway: saturate.
    let secs = int.parse::<i128>().unwrap_or(i128::MAX / 4_000_000_000);
    let ns = secs.saturating_mul(1_000_000_000).saturating_add(frac_ns);
    Some(if neg { -ns } else { ns })
}

/// RFC 3339 with a `Z` or numeric offset, or a date alone (midnight UTC), as ns.
fn parse_rfc3339(s: &str) -> anyhow::Result<i128> {
    let expected = "expected RFC 3339 such as 2026-11-21T10:00:00Z, a date such as 2026-11-21, \
                    or epoch seconds";
    if s.len() == 10 {
        let date: jiff::civil::Date = s
            .parse()
            .with_context(|| format!("not a date ({expected}): {s}"))?;
        let ts = jiff::tz::Offset::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .with_context(|| format!("date out of range: {s}"))?;
        return Ok(ts.as_nanosecond());
    }
    let ts: jiff::Timestamp = s
        .parse()
        .with_context(|| format!("not a time ({expected}): {s}"))?;
    Ok(ts.as_nanosecond())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use crate::summary::utc;

    #[test]
    fn times_parse_in_both_forms() {
        let t = 1_700_000_000_123_456_000;
        assert_eq!(parse_time("2023-11-14T22:13:20.123456Z").unwrap(), t);
        assert_eq!(parse_time("2023-11-14t23:13:20.123456+01:00").unwrap(), t);
        assert_eq!(parse_time("2023-11-14 20:13:20.123456-02:00").unwrap(), t);
        // ISO 8601's basic offset form is read too.
        assert_eq!(parse_time("2023-11-14T23:13:20.123456+0100").unwrap(), t);
        assert_eq!(parse_time("1700000000.123456").unwrap(), t);
        assert_eq!(parse_time("1700000000").unwrap(), 1_700_000_000_000_000_000);
        assert_eq!(
            parse_time("1767225978.957767").unwrap(),
            1_767_225_978_957_767_000
        );
        assert_eq!(parse_time("-1.5").unwrap(), -1_500_000_000);
        assert_eq!(
            parse_time("2000-02-29T00:00:00Z").unwrap(),
            951_782_400_000_000_000
        );
        for ns in [
            0,
            951_782_400_000_000_000,
            1_767_226_020_104_233_000,
            -86_400_000_000_000,
        ] {
            assert_eq!(parse_time(&utc(ns)).unwrap(), ns, "{}", utc(ns));
        }
        for bad in [
            "",
            "yesterday",
            "2023-11-14T22:13:20",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20.Z",
            "nan",
            "1e300",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn impossible_dates_and_times_out_of_range_are_refused() {
        assert_eq!(
            parse_time("2026-02-28").unwrap(),
            parse_time("2026-02-28T00:00:00Z").unwrap()
        );
        for bad in [
            "2026-02-31",
            "2026-02-31T00:00:00Z",
            "2023-02-29T12:00:00Z",
            "2026-04-31T00:00:00+02:00",
            "2026-01-01T24:00:01Z",
            "2026-01-01T00:61:00Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        // The range of packet times: ns since the epoch in an i64.
        for (edge, ns) in [
            ("1677-09-21T00:12:43.145224192Z", i64::MIN),
            ("2262-04-11T23:47:16.854775807Z", i64::MAX),
            ("-9223372036.854775808", i64::MIN),
            ("9223372036.854775807", i64::MAX),
        ] {
            assert_eq!(parse_time(edge).unwrap(), ns, "{edge}");
        }
        for out in [
            "2300-01-01T00:00:00Z",
            "2262-04-11T23:47:16.854775808Z",
            "1677-09-21T00:12:43.145224191Z",
            "1600-01-01",
            "9223372036.854775808",
            "99999999999999999999999999999999999999999999",
            "-9223372037",
        ] {
            let e = parse_time(out).unwrap_err().to_string();
            assert!(
                e.contains("out of range") && e.contains("1677-09-21") && e.contains("2262-04-11"),
                "{out}: {e}"
            );
        }
    }

    #[test]
    fn selectors_match_either_direction() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let pre = |s: &str| s.parse::<Prefix>().unwrap();
        let all = Selection::default();
        assert!(all.addrs_ok(ip("1.1.1.1"), ip("2.2.2.2")) && all.time_ok(i64::MIN));
        let host = Selection {
            hosts: vec![pre("10.0.0.0/24")],
            ..Selection::default()
        };
        assert!(host.addrs_ok(ip("10.0.0.5"), ip("2.2.2.2")));
        assert!(host.addrs_ok(ip("2.2.2.2"), ip("10.0.0.5")));
        assert!(!host.addrs_ok(ip("10.0.1.5"), ip("2.2.2.2")));
        let pair = Selection {
            hosts: vec![pre("10.0.0.5")],
            endpoints: vec![pre("192.0.2.0/24")],
            ..Selection::default()
        };
        assert!(pair.addrs_ok(ip("10.0.0.5"), ip("192.0.2.9")));
        assert!(pair.addrs_ok(ip("192.0.2.9"), ip("10.0.0.5")));
        assert!(!pair.addrs_ok(ip("10.0.0.5"), ip("198.51.100.1")));
        assert!(!pair.addrs_ok(ip("10.0.0.6"), ip("192.0.2.9")));
        let ep = Selection {
            endpoints: vec![pre("2001:db8::/32")],
            ..Selection::default()
        };
        assert!(
            ep.addrs_ok(ip("fd00::1"), ip("2001:db8::1"))
                && !ep.addrs_ok(ip("fd00::1"), ip("2001:db9::1"))
        );
        let win = Selection {
            since_ns: Some(10),
            until_ns: Some(20),
            ..Selection::default()
        };
        assert!(!win.time_ok(9) && win.time_ok(10) && win.time_ok(20) && !win.time_ok(21));
    }
}
