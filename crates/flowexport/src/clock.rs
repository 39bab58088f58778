//! Record times onto the arrival clock.
//!
//! A record states its start and end in absolute milliseconds (IPFIX 152/153), in
//! milliseconds of the exporter's uptime (NetFlow v5/v9 FIRST/LAST_SWITCHED, IPFIX 22/21 with
//! the system init time of options data) or in microseconds before the export (IPFIX
//! 158/159). Each is moved onto the arrival clock through the datagram's own export time, so
//! an exporter whose wall clock is off still lands where its datagrams arrived. Uptime is an
//! unsigned 32-bit count of milliseconds (RFC 3954, RFC 7012) that wraps after 49.7 days: the
//! age of a record is the wrapping difference read as signed, so a record stamped a few
//! milliseconds after its export (clock jitter) is not taken for one 49.7 days old.
//!
//! **An exporter's own clock.** Some exporters' record times cannot be squared with their
//! export times: softflowd reading a capture file (`-r`) stamps the records with the
//! capture's packet times on an uptime counted from the moment it started, and the headers
//! with the wall clock, so a capture older than a few weeks gives records that look weeks
//! away from their export; nfdump's nfreplay sends a capture's records with their own
//! absolute times under headers a day before them. Their absolute time is lost (or not to be
//! trusted), but their times relative to each other are exact. A record more than
//! [`MAX_AGE_NS`] before its arrival, or more than [`MAX_AHEAD_NS`] after it (no record ends
//! after its export), is therefore placed by its exporter's own clock: the first such record of
//! an (exporter, domain, clock origin) pins its start to its arrival, and every later one keeps
//! its offset from that record. Bursts then keep their shape and their place among each other;
//! their times are those of the arrival. The start, not the end: a replay exports its records
//! as they expire, and the first to expire can be long (its end minutes after the starts of
//! records that come later), while the earliest start of a replay is close to the first
//! record's; records placed more than the hold before the arrivals would find their seconds
//! released already.

use crate::record::Flat;
use crate::NS_PER_SEC;

/// Record times further than this from the datagram's arrival are not believed: the record
/// is placed by its exporter's own clock instead.
pub(crate) const MAX_AGE_NS: i64 = 7 * 86_400 * NS_PER_SEC;

/// Record times later than this after the datagram's arrival are not believed either: a record
/// cannot end after its export, beyond the jitter of an exporter's two clocks (headers give the
/// export time to the second).
pub(crate) const MAX_AHEAD_NS: i64 = 600 * NS_PER_SEC;

/// Origins of one exporter's clock within this much of each other are the same origin (v9 and
/// v5 headers give the export time to the second).
const SAME_ORIGIN_MS: i64 = 60_000;

/// Where a record's times come from, per datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExportClock {
    /// Arrival time of the datagram (ns).
    pub arrival_ns: i64,
    /// The export instant in ms since 1970, from the header.
    pub export_ms: i64,
    /// The exporter's uptime at export, ms (v5, v9 headers).
    pub uptime_ms: Option<u32>,
    /// When the exporter's uptime began, ms since 1970 (IPFIX options data).
    pub sys_init_ms: Option<u64>,
}

/// A record's times on the exporter's clock, as stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stated {
    /// Milliseconds since 1970.
    Abs(i64),
    /// Milliseconds of uptime (wraps at 2^32).
    Uptime(u32),
}

impl Stated {
    /// Milliseconds from `o` to `self` on the same scale: wrapping for uptime.
    fn since(self, o: Stated) -> Option<i64> {
        match (self, o) {
            (Stated::Abs(a), Stated::Abs(b)) => a.checked_sub(b),
            (Stated::Uptime(a), Stated::Uptime(b)) => Some(i64::from(a.wrapping_sub(b) as i32)),
            _ => None,
        }
    }
}

/// The record that pinned an exporter's own clock to the arrival clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// The clock's origin (ms since 1970): system init or boot time for uptime, 0 for
    /// absolute times.
    origin_ms: i64,
    /// The pinned record's start as stated.
    start: Stated,
    /// The arrival it was pinned to (ns).
    at_ns: i64,
}

/// A record's place on the arrival clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// By its export time.
    Export(i64, i64),
    /// By its exporter's own clock ([`Anchor`]).
    OwnClock(i64, i64),
    /// No usable time.
    Untimed,
}

impl ExportClock {
    /// Absolute ms since 1970 → arrival clock.
    fn abs_at(&self, ms: i64) -> Option<i64> {
        let age_ms = self.export_ms.checked_sub(ms)?;
        self.arrival_ns.checked_sub(age_ms.checked_mul(1_000_000)?)
    }

    /// The exporter's uptime at export: the header's (v5, v9), or export time less system
    /// init (IPFIX), as the wrapping 32-bit count.
    fn uptime_at_export(&self) -> Option<(u32, i64)> {
        match (self.uptime_ms, self.sys_init_ms) {
            (Some(up), _) => Some((up, self.export_ms.saturating_sub(i64::from(up)))),
            (None, Some(init)) => {
                let init = i64::try_from(init).ok()?;
                Some((self.export_ms.wrapping_sub(init) as u32, init))
            }
            (None, None) => None,
        }
    }

    /// Uptime ms → arrival clock.
    fn uptime_at(&self, up: u32) -> Option<i64> {
        let (now_up, _) = self.uptime_at_export()?;
        let age_ms = i64::from(now_up.wrapping_sub(up) as i32);
        self.arrival_ns.checked_sub(age_ms.checked_mul(1_000_000)?)
    }

    /// Microseconds before export → arrival clock.
    fn delta_at(&self, us: u64) -> Option<i64> {
        self.arrival_ns
            .checked_sub(i64::try_from(us).ok()?.checked_mul(1000)?)
    }

    fn stated(&self, abs: Option<u64>, up: Option<u64>) -> Option<Stated> {
        if let Some(ms) = abs.and_then(|m| i64::try_from(m).ok()) {
            return Some(Stated::Abs(ms));
        }
        let up = u32::try_from(up?).ok()?;
        self.uptime_at_export()?;
        Some(Stated::Uptime(up))
    }

    fn on_arrival(&self, s: Stated) -> Option<i64> {
        match s {
            Stated::Abs(ms) => self.abs_at(ms),
            Stated::Uptime(up) => self.uptime_at(up),
        }
    }

    fn near(&self, t: i64) -> bool {
        let ahead = t.saturating_sub(self.arrival_ns);
        (-MAX_AGE_NS..=MAX_AHEAD_NS).contains(&ahead)
    }

    /// Place record `f`: by its export time if that puts it less than [`MAX_AGE_NS`] before
    /// its arrival and less than [`MAX_AHEAD_NS`] after, else by its exporter's own clock
    /// through the anchor `anchor()` gives (called only then; `None`: no room for one). The
    /// anchor is set on first use, and again when the clock's origin changes or the record
    /// starts more than [`MAX_AGE_NS`] from the pinned one.
    pub(crate) fn place<'a>(
        &self,
        f: &Flat,
        anchor: impl FnOnce() -> Option<&'a mut Option<Anchor>>,
    ) -> Placed {
        let start = self.stated(f.start_abs_ms, f.start_uptime_ms);
        let end = self.stated(f.end_abs_ms, f.end_uptime_ms);
        let on_arrival = |s: Option<Stated>, delta: Option<u64>| {
            s.and_then(|s| self.on_arrival(s))
                .or_else(|| delta.and_then(|d| self.delta_at(d)))
        };
        let (s, e) = match (
            on_arrival(start, f.start_delta_us),
            on_arrival(end, f.end_delta_us),
        ) {
            (Some(s), Some(e)) => (s, e),
            (Some(t), None) | (None, Some(t)) => (t, t),
            (None, None) => return Placed::Untimed,
        };
        if self.near(s) && self.near(e) {
            return Placed::Export(s, e);
        }
        // Only stated times can be far: a delta is relative to the export already.
        let Some(end) = end.or(start) else {
            return Placed::Untimed;
        };
        let Some(anchor) = anchor() else {
            return Placed::Untimed;
        };
        let start = start.unwrap_or(end);
        let origin_ms = match end {
            Stated::Abs(_) => 0,
            Stated::Uptime(_) => self.uptime_at_export().map_or(0, |(_, o)| o),
        };
        let pinned = anchor.filter(|a| {
            a.origin_ms.abs_diff(origin_ms) <= SAME_ORIGIN_MS.unsigned_abs()
                && start
                    .since(a.start)
                    .is_some_and(|d| d.unsigned_abs() <= (MAX_AGE_NS / 1_000_000).unsigned_abs())
        });
        let a = pinned.unwrap_or(Anchor {
            origin_ms,
            start,
            at_ns: self.arrival_ns,
        });
        *anchor = Some(a);
        let at = |s: Stated| -> Option<i64> {
            a.at_ns
                .checked_add(s.since(a.start)?.checked_mul(1_000_000)?)
        };
        match (at(start), at(end)) {
            (Some(s), Some(e)) => Placed::OwnClock(s, e),
            _ => Placed::Untimed,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: i64 = 1_796_612_446_850; // ms since 1970
    const ARR: i64 = T * 1_000_000 + 3_000_000; // arrival 3 ms after export

    fn v9(up_at_export: u32) -> ExportClock {
        ExportClock {
            arrival_ns: ARR,
            export_ms: T,
            uptime_ms: Some(up_at_export),
            sys_init_ms: None,
        }
    }

    fn uptime(start: u32, end: u32) -> Flat {
        Flat {
            start_uptime_ms: Some(u64::from(start)),
            end_uptime_ms: Some(u64::from(end)),
            ..Flat::default()
        }
    }

    #[test]
    fn uptime_ages_are_signed_and_wrap() {
        let c = v9(5_000);
        let mut a = None;
        // 4 s to 1 s before export.
        assert_eq!(
            c.place(&uptime(1_000, 4_000), || Some(&mut a)),
            Placed::Export(ARR - 4_000_000_000, ARR - 1_000_000_000)
        );
        // Ending 2 ms after export: not 49.7 days old.
        assert_eq!(
            c.place(&uptime(4_000, 5_002), || Some(&mut a)),
            Placed::Export(ARR - 1_000_000_000, ARR + 2_000_000)
        );
        // Uptime wrapped between the record's start and the export.
        let c = v9(1_000);
        assert_eq!(
            c.place(&uptime(u32::MAX - 999, 500), || Some(&mut a)),
            Placed::Export(ARR - 2_000_000_000, ARR - 500_000_000)
        );
        assert_eq!(a, None);
    }

    #[test]
    fn ipfix_uptime_counts_from_system_init_and_wraps() {
        // softflowd reading a capture two days old: uptime counted from its start, the
        // packets two days earlier, so the stated uptime is negative, wrapped.
        let init = T - 150;
        let c = ExportClock {
            arrival_ns: ARR,
            export_ms: T,
            uptime_ms: None,
            sys_init_ms: Some(init as u64),
        };
        let two_days: i64 = 2 * 86_400_000;
        let start = (-two_days - 10_000) as u32;
        let end = (-two_days) as u32;
        let Placed::Export(s, e) = c.place(&uptime(start, end), || None) else {
            panic!("not placed by export time");
        };
        assert_eq!(e, ARR - (two_days + 150) * 1_000_000);
        assert_eq!(e - s, 10_000_000_000);
    }

    #[test]
    fn records_far_from_their_export_keep_their_offsets_on_the_exporters_clock() {
        // A capture 340 days old through softflowd -r: every uptime is weeks off.
        let c = v9(3);
        let base = 677_929_679u32;
        let mut a = None;
        let first = c.place(&uptime(base, base + 48_793), || Some(&mut a));
        assert_eq!(first, Placed::OwnClock(ARR, ARR + 48_793_000_000));
        // A later datagram, one second later on the arrival clock, whose record ended 250 s
        // after the first one ended on the exporter's clock: 250 s after it on ours.
        let later = ExportClock {
            arrival_ns: ARR + NS_PER_SEC,
            export_ms: T + 1000,
            uptime_ms: Some(1_003),
            sys_init_ms: None,
        };
        assert_eq!(
            later.place(&uptime(base + 240_000, base + 298_793), || Some(&mut a)),
            Placed::OwnClock(ARR + 240_000_000_000, ARR + 298_793_000_000)
        );
        // A restarted exporter (another origin) is pinned afresh.
        let restarted = ExportClock {
            arrival_ns: ARR + 600 * NS_PER_SEC,
            export_ms: T + 3_600_000,
            uptime_ms: Some(5),
            sys_init_ms: None,
        };
        assert_eq!(
            restarted.place(&uptime(base, base + 1_000), || Some(&mut a)),
            Placed::OwnClock(ARR + 600 * NS_PER_SEC, ARR + 601 * NS_PER_SEC)
        );
        // Without room for an anchor: no time.
        assert_eq!(c.place(&uptime(base, base), || None), Placed::Untimed);
    }

    #[test]
    fn records_ahead_of_their_export_by_more_than_jitter_are_placed_by_their_own_clock() {
        let c = v9(0);
        let abs = |s: i64, e: i64| Flat {
            start_abs_ms: Some(s as u64),
            end_abs_ms: Some(e as u64),
            ..Flat::default()
        };
        let mut a = None;
        // One second ahead (the header's export time is whole seconds): believed.
        assert_eq!(
            c.place(&abs(T, T + 1_000), || Some(&mut a)),
            Placed::Export(ARR, ARR + NS_PER_SEC)
        );
        assert_eq!(a, None);
        // A day ahead (nfreplay): pinned to the arrival.
        let day = 86_400_000;
        assert_eq!(
            c.place(&abs(T + day, T + day + 5_000), || Some(&mut a)),
            Placed::OwnClock(ARR, ARR + 5 * NS_PER_SEC)
        );
    }

    #[test]
    fn absolute_times_far_off_are_placed_by_their_own_clock_and_deltas_by_export() {
        let c = v9(0);
        let year_ago = T - 365 * 86_400_000;
        let f = Flat {
            start_abs_ms: Some(year_ago as u64),
            end_abs_ms: Some((year_ago + 2_000) as u64),
            ..Flat::default()
        };
        let mut a = None;
        assert_eq!(
            c.place(&f, || Some(&mut a)),
            Placed::OwnClock(ARR, ARR + 2_000_000_000)
        );
        let d = Flat {
            start_delta_us: Some(3_000_000),
            end_delta_us: Some(1_000_000),
            ..Flat::default()
        };
        assert_eq!(
            c.place(&d, || Some(&mut a)),
            Placed::Export(ARR - 3_000_000_000, ARR - 1_000_000_000)
        );
        assert_eq!(c.place(&Flat::default(), || Some(&mut a)), Placed::Untimed);
    }
}
