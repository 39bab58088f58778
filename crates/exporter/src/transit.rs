//! The transit share: how much of the traffic has neither side in the home networks.
//!
//! The detector counts such packets (direction `transit`, `burstwatch_bytes_total`) and scores
//! nothing of them. A large share usually means `detect.home_nets` does not cover the
//! subscribers (the default covers RFC 1918, CGNAT and IPv6 ULA only, not global IPv6 or public
//! IPv4 subscriber ranges), so [`TransitWatch`] looks at the share once per period and says so
//! in the log, at most once an hour.

use std::time::{Duration, Instant};

use crate::stats::DirectionStats;

/// Above this share of the IP bytes in transit, the home networks are suspect.
pub const HIGH_SHARE: f64 = 0.5;

/// A period ends after this long, once it holds [`MIN_PACKETS`]…
pub const PERIOD: Duration = Duration::from_secs(60);
/// …the packets a period needs before its share is judged.
pub const MIN_PACKETS: u64 = 1_000;
/// A period ends sooner when it holds this many packets (a busy link is judged in seconds).
pub const QUICK_PACKETS: u64 = 50_000;
/// A high share is logged again only after this long.
pub const REPEAT: Duration = Duration::from_secs(3600);

/// Index of `transit` in [`crate::stats::DIRECTIONS`].
const TRANSIT: usize = 3;

/// The share of `transit` in `total` (0 when there is no traffic).
pub fn share(transit: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        transit as f64 / total as f64
    }
}

/// The warning for a high transit share, naming the likely cause and the setting to change
/// (`key`, e.g. `detect.home_nets`).
pub fn advice(share: f64, key: &str) -> String {
    format!(
        "{:.1} % of the IP bytes had neither side in the home networks (transit, not scored): \
         {key} likely does not cover the subscribers (the default covers RFC 1918, CGNAT \
         100.64.0.0/10 and IPv6 ULA fc00::/7 only, not global IPv6 or public IPv4); set {key} \
         to the subscriber prefixes",
        share * 100.0
    )
}

/// One judged period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Period {
    /// Transit share of the period's IP bytes.
    pub share: f64,
    /// IP bytes in the period.
    pub bytes: u64,
    /// Packets in the period.
    pub packets: u64,
    /// Length of the period.
    pub seconds: f64,
}

/// What to say about a judged period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing: the share is low, or high and already logged within [`REPEAT`].
    Quiet,
    /// The share is high and was not logged within [`REPEAT`].
    High,
    /// The share was high in the period before and is no longer.
    Recovered,
}

/// Judges the transit share once per period from the running totals (fed once a second; never
/// on the packet path).
#[derive(Debug, Default)]
pub struct TransitWatch {
    /// Start of the current period and the totals then.
    start: Option<(Instant, DirectionStats)>,
    /// When a high share was last logged.
    warned: Option<Instant>,
    /// The last judged period's share was high.
    high: bool,
}

impl TransitWatch {
    /// Feed the totals at `now`; the period and its verdict when one ended.
    pub fn observe(&mut self, now: Instant, totals: &DirectionStats) -> Option<(Period, Verdict)> {
        let Some((t0, base)) = &self.start else {
            self.start = Some((now, totals.clone()));
            return None;
        };
        let delta = |a: &[u64; 4], b: &[u64; 4]| -> Option<(u64, u64)> {
            let mut sum = 0u64;
            for (x, y) in a.iter().zip(b) {
                sum = sum.saturating_add(x.checked_sub(*y)?);
            }
            Some((a[TRANSIT].checked_sub(b[TRANSIT])?, sum))
        };
        let (Some((_, packets)), Some((transit, bytes))) = (
            delta(&totals.packets, &base.packets),
            delta(&totals.bytes, &base.bytes),
        ) else {
            // Totals went backwards (a worker started again): a new period from here.
            self.start = Some((now, totals.clone()));
            return None;
        };
        let elapsed = now.saturating_duration_since(*t0);
        let ended = packets >= QUICK_PACKETS || (elapsed >= PERIOD && packets >= MIN_PACKETS);
        if !ended {
            return None;
        }
        self.start = Some((now, totals.clone()));
        let period = Period {
            share: share(transit, bytes),
            bytes,
            packets,
            seconds: elapsed.as_secs_f64(),
        };
        let was_high = self.high;
        self.high = period.share > HIGH_SHARE;
        let verdict = if self.high {
            let due = self
                .warned
                .is_none_or(|w| now.saturating_duration_since(w) >= REPEAT);
            if due {
                self.warned = Some(now);
                Verdict::High
            } else {
                Verdict::Quiet
            }
        } else if was_high {
            Verdict::Recovered
        } else {
            Verdict::Quiet
        };
        Some((period, verdict))
    }

    /// [`Self::observe`], logged: every judged period at debug level, a warning for a high
    /// share, an info line when it fell back.
    pub fn check(&mut self, now: Instant, totals: &DirectionStats) -> Option<(Period, Verdict)> {
        let (p, verdict) = self.observe(now, totals)?;
        let share = format!("{:.3}", p.share);
        tracing::debug!(
            transit_share = %share,
            bytes = p.bytes,
            packets = p.packets,
            seconds = %format!("{:.0}", p.seconds),
            "transit share judged"
        );
        match verdict {
            Verdict::Quiet => {}
            Verdict::High => tracing::warn!(
                transit_share = %share,
                bytes = p.bytes,
                packets = p.packets,
                seconds = %format!("{:.0}", p.seconds),
                "{}",
                advice(p.share, "detect.home_nets")
            ),
            Verdict::Recovered => tracing::info!(
                transit_share = %share,
                "transit share back to {:.1} % of the IP bytes",
                p.share * 100.0
            ),
        }
        Some((p, verdict))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    fn totals(up: u64, transit: u64) -> DirectionStats {
        // One packet per 100 bytes.
        DirectionStats {
            packets: [up / 100, 0, 0, transit / 100],
            bytes: [up, 0, 0, transit],
        }
    }

    #[test]
    fn a_high_share_is_judged_after_a_period_and_repeated_only_hourly() {
        let t0 = Instant::now();
        let mut w = TransitWatch::default();
        assert_eq!(w.observe(t0, &totals(0, 0)), None);
        // 30 s in: not a period yet (and too few packets for a quick one).
        assert_eq!(
            w.observe(t0 + Duration::from_secs(30), &totals(10_000, 90_000)),
            None
        );
        let (p, v) = w
            .observe(t0 + Duration::from_secs(60), &totals(20_000, 180_000))
            .unwrap();
        assert_eq!(v, Verdict::High);
        assert!((p.share - 0.9).abs() < 1e-9);
        assert_eq!((p.bytes, p.packets), (200_000, 2_000));
        // Still high a minute later: not logged again within the hour.
        let v = w.observe(t0 + Duration::from_secs(120), &totals(40_000, 360_000));
        assert_eq!(v.map(|v| v.1), Some(Verdict::Quiet));
        let later = t0 + Duration::from_secs(60 + 3600);
        let v = w.observe(later, &totals(60_000, 540_000));
        assert_eq!(v.map(|v| v.1), Some(Verdict::High));
        // Fixed: one line saying so, then quiet.
        let fixed = totals(60_000 + 200_000, 540_000);
        let v = w.observe(later + Duration::from_secs(60), &fixed);
        assert_eq!(v.map(|v| v.1), Some(Verdict::Recovered));
        let more = totals(60_000 + 400_000, 540_000);
        let v = w.observe(later + Duration::from_secs(120), &more);
        assert_eq!(v.map(|v| v.1), Some(Verdict::Quiet));
    }

    #[test]
    fn a_busy_link_is_judged_before_the_minute_and_a_quiet_one_waits() {
        let t0 = Instant::now();
        let mut w = TransitWatch::default();
        w.observe(t0, &totals(0, 0));
        // 50 000 packets in two seconds: judged now.
        let v = w.observe(t0 + Duration::from_secs(2), &totals(0, 5_000_000));
        assert_eq!(v.map(|v| v.1), Some(Verdict::High));
        // A quiet link: a minute with fewer than 1000 packets is not judged yet.
        let mut q = TransitWatch::default();
        q.observe(t0, &totals(0, 0));
        assert_eq!(
            q.observe(t0 + Duration::from_secs(90), &totals(0, 50_000)),
            None
        );
        assert!(q
            .observe(t0 + Duration::from_secs(120), &totals(0, 100_000))
            .is_some());
    }

    #[test]
    fn covered_traffic_and_backward_totals_say_nothing() {
        let t0 = Instant::now();
        let mut w = TransitWatch::default();
        w.observe(t0, &totals(0, 0));
        let v = w.observe(t0 + Duration::from_secs(60), &totals(1_000_000, 100_000));
        assert_eq!(v.map(|v| v.1), Some(Verdict::Quiet));
        // A worker restarted: its totals began again; a new period, no underflow.
        assert_eq!(w.observe(t0 + Duration::from_secs(61), &totals(0, 0)), None);
        assert_eq!(share(0, 0), 0.0);
        assert!(advice(0.75, "detect.home_nets").starts_with("75.0 % "));
    }
}
