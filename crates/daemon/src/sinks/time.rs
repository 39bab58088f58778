//! RFC 3339 timestamps for the Alertmanager API.

/// `unix_ns` as an RFC 3339 UTC timestamp with milliseconds, e.g. `2024-02-29T23:59:59.250Z`.
/// Dates before 1970 are clamped to the epoch.
pub fn rfc3339(unix_ns: i64) -> String {
    let ns = unix_ns.max(0);
    let secs = ns / 1_000_000_000;
    let millis = (ns % 1_000_000_000) / 1_000_000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant, "chrono-Compatible
/// Low-Level Date Algorithms", `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn known_instants() {
        // Values checked with `date -u -d @SECONDS +%FT%T`.
        for (ns, want) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (-5, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000_000_000, "2000-02-29T00:00:00.000Z"),
            (1_709_251_199_250_000_000, "2024-02-29T23:59:59.250Z"),
            (1_735_689_600_999_999_999, "2025-01-01T00:00:00.999Z"),
            (4_102_444_800_000_000_000, "2100-01-01T00:00:00.000Z"),
        ] {
            assert_eq!(rfc3339(ns), want, "{ns}");
        }
    }
}
