//! The `timestamp` field of every JSON line: RFC 3339 in UTC with microseconds
//! (`2026-12-04T18:19:22.123456Z`), beside the epoch-seconds fields.

use jiff::fmt::temporal::DateTimePrinter;
use jiff::Timestamp;
use serde::Serialize;

/// Always six decimals (truncated, as the epoch-seconds fields are) and a `Z`.
const PRINTER: DateTimePrinter = DateTimePrinter::new().precision(Some(6));

/// The instant `ns` (nanoseconds since the Unix epoch) as a jiff timestamp, cut to whole
/// microseconds (towards the past, as [`crate::flow_json::Ts`] does).
fn instant(ns: i64) -> Timestamp {
    // Every i64 of nanoseconds (years 1677 to 2262) is within jiff's range.
    Timestamp::from_microsecond(ns.div_euclid(1_000)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Append the text of `ns` (without quotes) to `out`.
pub fn write_rfc3339(out: &mut Vec<u8>, ns: i64) {
    // Printing into a Vec cannot fail.
    let _ = PRINTER.print_timestamp(&instant(ns), out);
}

/// The text of `ns`.
pub fn rfc3339(ns: i64) -> String {
    PRINTER.timestamp_to_string(&instant(ns))
}

/// An instant (ns since the epoch) that serializes as its RFC 3339 text.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub i64);

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&rfc3339(self.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn known_instants() {
        // Checked with `date -u -d @SECONDS +%FT%T.%6NZ`.
        for (ns, want) in [
            (0, "1970-01-01T00:00:00.000000Z"),
            (1_796_407_162_123_456_789, "2026-12-04T17:59:22.123456Z"),
            (951_782_400_000_001_000, "2000-02-29T00:00:00.000001Z"),
            // Before the epoch: cut towards the past, like the epoch-seconds fields.
            (-1_500, "1969-12-31T23:59:59.999998Z"),
            (i64::MAX, "2262-04-11T23:47:16.854775Z"),
            (i64::MIN, "1677-09-21T00:12:43.145224Z"),
        ] {
            assert_eq!(rfc3339(ns), want, "{ns}");
            let mut v = Vec::new();
            write_rfc3339(&mut v, ns);
            assert_eq!(String::from_utf8(v).unwrap(), want);
        }
        assert_eq!(
            serde_json::to_string(&Rfc3339(0)).unwrap(),
            "\"1970-01-01T00:00:00.000000Z\""
        );
    }
}
