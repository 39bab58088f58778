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
    /// Only packets at or after this time (RFC 3339, e.g. 2026-11-21T10:00:00Z, or epoch
    /// seconds).
    #[arg(long, value_name = "TS", value_parser = parse_time)]
    pub since: Option<i64>,
    /// Only packets at or before this time (RFC 3339 or epoch seconds).
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

/// Parses a time given as RFC 3339 (`2026-11-21T10:00:00Z`, `2026-11-21T11:00:00.5+01:00`)
/// or as decimal seconds since the Unix epoch (`1763719200`, `1763719200.25`, read exactly),
/// to ns since the epoch.
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Some(ns) = parse_epoch(s) {
        return ns;
    }
    parse_rfc3339(s).with_context(|| {
        format!(
            "not a time (expected RFC 3339 such as 2026-11-21T10:00:00Z, or epoch seconds): {s}"
        )
    })
}

/// Decimal epoch seconds, read exactly (no floating point): `Some(Err)` when out of range.
fn parse_epoch(s: &str) -> Option<anyhow::Result<i64>> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |t: &str| t.bytes().all(|c| c.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (body.contains('.') && frac.is_empty()) {
        return None;
    }
    let mut frac_ns = 0i64;
    for (i, c) in frac.bytes().take(9).enumerate() {
        frac_ns += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
    }
    let ns = int
        .parse::<i64>()
        .ok()
        .and_then(|secs| secs.checked_mul(1_000_000_000))
        .and_then(|ns| ns.checked_add(frac_ns))
        .map(|ns| if neg { -ns } else { ns })
        .ok_or_else(|| anyhow::anyhow!("time out of range: {s}"));
    Some(ns)
}

fn parse_rfc3339(s: &str) -> anyhow::Result<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> anyhow::Result<i64> {
        let t = s.get(r).context("too short")?;
        anyhow::ensure!(t.bytes().all(|c| c.is_ascii_digit()), "digits expected");
        Ok(t.parse::<i64>()?)
    };
    anyhow::ensure!(b.len() >= 19, "too short");
    anyhow::ensure!(
        b[4] == b'-' && b[7] == b'-' && b[13] == b':' && b[16] == b':',
        "bad separators"
    );
    anyhow::ensure!(
        matches!(b[10], b'T' | b't' | b' '),
        "bad date/time separator"
    );
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    anyhow::ensure!(
        (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && sec <= 60,
        "field out of range"
    );
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                frac_ns = frac_ns * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        anyhow::ensure!(i > start, "empty fraction");
        for _ in (i - start)..9 {
            frac_ns *= 10;
        }
    }
    let offset_s = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            anyhow::ensure!(oh < 24 && om < 60, "offset out of range");
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => anyhow::bail!("missing or bad time zone (Z or +HH:MM)"),
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    Ok(secs * 1_000_000_000 + frac_ns)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "nan",
            "1e300",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
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
