//! Per-second traffic of alerted pairs, filled by a second pass over the inputs.
//!
//! The first pass does not know which pairs will alert, so the shell reads the inputs again
//! and hands every decoded packet to [`Timelines::add_packet`]; only packets of an alerted
//! pair inside one of its windows are counted. Exact, simple, and bounded: at most
//! [`MAX_TIMELINES`] windows of at most [`MAX_WINDOW_SECONDS`] seconds each. Counting does not
//! depend on packet order, so the pass may read files in parallel into copies of the plan and
//! [`Timelines::merge`] them.

use std::collections::HashMap;
use std::net::IpAddr;

use burstwatch_engine::Alert;

/// Alerts that get a timeline (highest score first).
pub const MAX_TIMELINES: usize = 1_000;
/// Seconds of context before and after an alert's span.
pub const MARGIN_SECONDS: i64 = 30;
/// Longest window; a longer span keeps its last part (the end of a beacon is where it alerted).
pub const MAX_WINDOW_SECONDS: i64 = 3_600;

const S: i64 = 1_000_000_000;

/// Counters of one second: bytes up, bytes down, packets up, packets down.
pub type Bin = [u64; 4];

/// The window of one alert.
#[derive(Debug, Clone)]
pub struct Window {
    /// Index of the alert in the list the windows were planned from.
    pub alert: usize,
    /// Subscriber.
    pub src: IpAddr,
    /// Endpoint.
    pub dst: IpAddr,
    /// First second of the window (seconds since the epoch).
    pub first_sec: i64,
    /// First and last second of the alert span.
    pub span: (i64, i64),
    /// One bin per second from `first_sec`.
    pub bins: Vec<Bin>,
}

impl Window {
    /// The window's seconds, `(second, bin)`.
    pub fn seconds(&self) -> impl Iterator<Item = (i64, &Bin)> + '_ {
        self.bins
            .iter()
            .enumerate()
            .map(move |(i, b)| (self.first_sec + i as i64, b))
    }
}

/// Every window, looked up by pair.
#[derive(Debug, Clone, Default)]
pub struct Timelines {
    /// Windows in alert order.
    pub windows: Vec<Window>,
    /// Looked up for every packet of the second pass inside a window: a fast keyed hash.
    by_pair: HashMap<(IpAddr, IpAddr), Vec<usize>, ahash::RandomState>,
    /// The seconds any window covers: sorted, disjoint `(first, last)` ranges.
    covered: Vec<(i64, i64)>,
}

impl Timelines {
    /// Windows for the first [`MAX_TIMELINES`] of `alerts` (pass them sorted by priority).
    pub fn plan(alerts: &[Alert]) -> Self {
        let mut t = Timelines::default();
        for (i, a) in alerts.iter().take(MAX_TIMELINES).enumerate() {
            let start = a.start_ns.div_euclid(S);
            let end = a.end_ns.div_euclid(S).max(start);
            let last = end.saturating_add(MARGIN_SECONDS);
            let first = start
                .saturating_sub(MARGIN_SECONDS)
                .max(last.saturating_sub(MAX_WINDOW_SECONDS - 1));
            let len = usize::try_from(last - first + 1).unwrap_or(0);
            t.by_pair
                .entry((a.src, a.dst))
                .or_default()
                .push(t.windows.len());
            t.windows.push(Window {
                alert: i,
                src: a.src,
                dst: a.dst,
                first_sec: first,
                span: (start, end),
                bins: vec![[0; 4]; len],
            });
        }
        let mut ranges: Vec<(i64, i64)> = t
            .windows
            .iter()
            .map(|w| (w.first_sec, w.first_sec + w.bins.len() as i64 - 1))
            .collect();
        ranges.sort_unstable();
        for r in ranges {
            match t.covered.last_mut() {
                Some(last) if r.0 <= last.1.saturating_add(1) => last.1 = last.1.max(r.1),
                _ => t.covered.push(r),
            }
        }
        t
    }

    /// Whether a packet at `ts_ns` can fall into any window: the second pass skips the
    /// others before decoding them.
    #[inline]
    pub fn wants(&self, ts_ns: i64) -> bool {
        self.overlaps(ts_ns, ts_ns)
    }

    /// The seconds any window covers: sorted, disjoint, inclusive `(first, last)` ranges.
    pub fn covered(&self) -> &[(i64, i64)] {
        &self.covered
    }

    /// Whether no window was planned (the second pass can be skipped).
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Whether any window covers a second between `first_ns` and `last_ns` (inclusive): a
    /// file whose packets all lie outside can be skipped.
    #[inline]
    pub fn overlaps(&self, first_ns: i64, last_ns: i64) -> bool {
        let (a, b) = (first_ns.div_euclid(S), last_ns.div_euclid(S));
        let i = self.covered.partition_point(|r| r.1 < a);
        self.covered.get(i).is_some_and(|r| r.0 <= b)
    }

    /// Add the counts of `other`, a copy of the same plan filled from other packets.
    pub fn merge(&mut self, other: &Timelines) {
        for (w, o) in self.windows.iter_mut().zip(&other.windows) {
            for (b, ob) in w.bins.iter_mut().zip(&o.bins) {
                for (x, y) in b.iter_mut().zip(ob) {
                    *x = x.saturating_add(*y);
                }
            }
        }
    }

    /// Count one packet if it belongs to an alerted pair's window.
    #[inline]
    pub fn add_packet(&mut self, ts_ns: i64, src: IpAddr, dst: IpAddr, ip_len: u32) {
        let (idxs, up) = match self.by_pair.get(&(src, dst)) {
            Some(idxs) => (idxs, true),
            None => match self.by_pair.get(&(dst, src)) {
                Some(idxs) => (idxs, false),
                None => return,
            },
        };
        let sec = ts_ns.div_euclid(S);
        for &w in idxs {
            let Some(win) = self.windows.get_mut(w) else {
                continue;
            };
            let Some(bin) = usize::try_from(sec - win.first_sec)
                .ok()
                .and_then(|o| win.bins.get_mut(o))
            else {
                continue;
            };
            let (b, p) = if up { (0, 2) } else { (1, 3) };
            bin[b] = bin[b].saturating_add(u64::from(ip_len));
            bin[p] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burstwatch_engine::detect::EndpointInfo;
    use burstwatch_engine::{AlertKind, Severity};

    fn alert(start_s: i64, end_s: i64) -> Alert {
        Alert {
            id: 1,
            kind: AlertKind::Burst,
            src: IpAddr::from([10, 0, 0, 1]),
            dst: IpAddr::from([192, 0, 2, 1]),
            dst_port: 443,
            proto: 6,
            start_ns: start_s * S,
            end_ns: end_s * S,
            detected_ns: end_s * S,
            bytes_out: 0,
            bytes_in: 0,
            packets_out: 0,
            packets_in: 0,
            peak_bps: 0.0,
            flows: 1,
            connections: Default::default(),
            occurrence: 1,
            score: 0.5,
            severity: Severity::Medium,
            reasons: Vec::new(),
            endpoint: EndpointInfo {
                prevalence: 1,
                popular: false,
                prefix_len: 24,
                prefix_prevalence: 1,
                prefix_popular: false,
                unseen: 0,
                prefix_unseen: 0,
                rarity_certain: true,
                first_seen_ns: None,
                asn: None,
                asn_prevalence: None,
                as_org: None,
                country: None,
                watched: false,
                shared: None,
            },
            baseline_bps: None,
            rate_threshold: None,
            pair_before: None,
            emitted_early: None,
            sampling: 0,
        }
    }

    #[test]
    fn counts_both_directions_inside_the_window_only() {
        let a = alert(1_000, 1_010);
        let mut t = Timelines::plan(std::slice::from_ref(&a));
        let w = &t.windows[0];
        assert_eq!(w.first_sec, 1_000 - MARGIN_SECONDS);
        assert_eq!(w.bins.len() as i64, 10 + 2 * MARGIN_SECONDS + 1);
        t.add_packet(1_005 * S + 7, a.src, a.dst, 1_000);
        t.add_packet(1_005 * S + 9, a.dst, a.src, 40);
        t.add_packet(1_005 * S, a.src, IpAddr::from([192, 0, 2, 2]), 99);
        t.add_packet(2_000 * S, a.src, a.dst, 99); // after the window
        let bins: Vec<_> = t.windows[0]
            .seconds()
            .filter(|(_, b)| b[2] + b[3] > 0)
            .collect();
        assert_eq!(bins, vec![(1_005, &[1_000, 40, 1, 1])]);
    }

    #[test]
    fn wants_exactly_the_seconds_of_some_window() {
        // Two overlapping windows and one apart.
        let t = Timelines::plan(&[
            alert(1_000, 1_010),
            alert(1_050, 1_060),
            alert(5_000, 5_000),
        ]);
        let m = MARGIN_SECONDS;
        for (sec, want) in [
            (1_000 - m - 1, false),
            (1_000 - m, true),
            (1_040, true),
            (1_060 + m, true),
            (1_060 + m + 1, false),
            (5_000 - m - 1, false),
            (5_000, true),
            (5_000 + m, true),
            (5_000 + m + 1, false),
            (i64::MIN / S, false),
        ] {
            assert_eq!(t.wants(sec * S), want, "second {sec}");
            assert_eq!(t.wants(sec * S + S - 1), want, "end of second {sec}");
        }
        assert!(!Timelines::plan(&[]).wants(0));
        // Spans: inside, across, touching and between the windows.
        let m = MARGIN_SECONDS;
        for (a, b, want) in [
            (1_000, 1_001, true),
            (0, 1_000 - m, true),
            (0, 1_000 - m - 1, false),
            (1_060 + m + 1, 5_000 - m - 1, false),
            (1_060 + m, 5_000 - m, true),
            (0, 10_000, true),
            (5_000 + m + 1, 10_000, false),
        ] {
            assert_eq!(t.overlaps(a * S, b * S + S - 1), want, "{a}..{b}");
        }
    }

    #[test]
    fn merged_copies_count_like_one() {
        let a = alert(1_000, 1_010);
        let plan = Timelines::plan(std::slice::from_ref(&a));
        let (mut one, mut x, mut y) = (plan.clone(), plan.clone(), plan);
        let packets = [
            (1_001 * S, a.src, a.dst, 100),
            (1_002 * S, a.dst, a.src, 40),
            (1_002 * S + 5, a.src, a.dst, 1_500),
        ];
        for (i, &(ts, src, dst, len)) in packets.iter().enumerate() {
            one.add_packet(ts, src, dst, len);
            if i % 2 == 0 { &mut x } else { &mut y }.add_packet(ts, src, dst, len);
        }
        x.merge(&y);
        assert_eq!(x.windows[0].bins, one.windows[0].bins);
        assert_eq!(one.windows[0].bins[32], [1_500, 40, 1, 1]);
    }

    #[test]
    fn long_spans_keep_their_end() {
        let t = Timelines::plan(&[alert(0, 100_000)]);
        let w = &t.windows[0];
        assert_eq!(w.bins.len() as i64, MAX_WINDOW_SECONDS);
        assert_eq!(
            w.first_sec + MAX_WINDOW_SECONDS - 1,
            100_000 + MARGIN_SECONDS
        );
    }
}
