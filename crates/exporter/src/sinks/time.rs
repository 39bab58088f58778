//! RFC 3339 timestamps for the Alertmanager API.

/// `unix_ns` as an RFC 3339 UTC timestamp with milliseconds (truncated), e.g.
/// `2024-02-29T23:59:59.250Z`. Dates before 1970 are clamped to the epoch.
pub fn rfc3339(unix_ns: i64) -> String {
    let ns = unix_ns.max(0);
    // Every i64 of nanoseconds (years 1677 to 2262) is a valid jiff timestamp.
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => jiff::fmt::temporal::DateTimePrinter::new()
            .precision(Some(3))
            .timestamp_to_string(&ts),
        Err(_) => "1970-01-01T00:00:00.000Z".to_string(),
    }
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
            (i64::MAX, "2262-04-11T23:47:16.854Z"),
        ] {
            assert_eq!(rfc3339(ns), want, "{ns}");
        }
    }
}
