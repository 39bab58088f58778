//! Packet time that the system clock stepped back under.
//!
//! A live capture stamps packets with the system clock. When that clock is stepped back (NTP
//! correcting a clock that ran fast, a virtual machine restored, a wrong time set by hand), every
//! later packet is older than what the engine has seen. The engine never moves time backwards,
//! so without this guard each such packet would count in the second the engine is at: every
//! pair's open bin would take all its traffic until the clock caught up again (an hour for a
//! one-hour step), nothing would time out or be alerted on meanwhile, and then each of those
//! bins would close as one second holding all of it, a false burst per busy pair.
//!
//! [`ClockStep`] tells a step from ordinary disorder (capture threads a little apart, a stray
//! packet with a wrong stamp): a packet more than [`STEP_NS`] behind the newest one is only
//! counted; [`CONFIRM`] such packets in a row are a step. From then on packet times get an
//! offset that puts the packet that confirms the step at the newest time seen, so the engine's
//! time goes on without a gap. Its alerts and flow records then carry times that far ahead of the new
//! clock; the daemon logs each step with its size, and the offset is a metric. The offset then
//! shrinks by one part in [`SLEW`] of the packet time that passes (engine time runs 0.5 %
//! slow), so times come back to the capture clock: an hour's step in about eight days. A
//! snapshot saved meanwhile holds the shifted time; the next process takes the rest of the
//! offset as a step of its own and goes on shrinking it. Right after a restart there is no
//! disorder to tolerate yet: until a packet reaches the restored snapshot's time, any packet
//! behind it counts toward a step, so that a rest of under [`STEP_NS`] is not piled up either.

/// How far behind the newest packet a packet must be to count toward a step (ns).
pub const STEP_NS: i64 = 30_000_000_000;
/// Packets in a row that far behind that make a step.
pub const CONFIRM: u32 = 64;
/// The offset shrinks by one nanosecond for every `SLEW` of packet time.
pub const SLEW: i64 = 200;

/// The offset applied to packet times and what led to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockStep {
    /// Newest time handed to the engine (ns), `None` before the first packet.
    newest: Option<i64>,
    /// Added to every packet time (ns): the steps taken, less what has shrunk since.
    offset_ns: i64,
    /// Started from a restored snapshot's time and no packet has reached it yet.
    resuming: bool,
    /// Packets in a row more than [`STEP_NS`] behind.
    behind: u32,
    /// The newest packet stamp (unshifted) while an offset shrinks (ns).
    last_stamp: Option<i64>,
    /// Steps taken.
    steps: u64,
}

/// A step just taken: how far back the clock went (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// How far behind the newest time the step's packets were (ns).
    pub back_ns: i64,
    /// The offset now applied to packet times (ns).
    pub offset_ns: i64,
}

impl ClockStep {
    /// A guard whose time starts at `resume_ns` (a restored snapshot's packet time), if any.
    pub fn new(resume_ns: Option<i64>) -> Self {
        Self {
            newest: resume_ns,
            resuming: resume_ns.is_some(),
            ..Self::default()
        }
    }

    /// The engine time of a packet stamped `ts`, and the step it completes, if it does.
    #[inline]
    pub fn place(&mut self, ts: i64) -> (i64, Option<Step>) {
        if self.offset_ns > 0 {
            match self.last_stamp {
                Some(last) if ts > last => {
                    // Packet time runs on: the offset shrinks by its share of that, never below
                    // zero, so engine time still never goes back. What a share leaves over
                    // counts with the next packet.
                    let shrink = (ts.saturating_sub(last) / SLEW).min(self.offset_ns);
                    self.offset_ns -= shrink;
                    self.last_stamp = Some(last.saturating_add(shrink.saturating_mul(SLEW)));
                }
                Some(_) => {}
                None => self.last_stamp = Some(ts),
            }
        }
        let t = ts.saturating_add(self.offset_ns);
        let Some(newest) = self.newest else {
            self.newest = Some(t);
            return (t, None);
        };
        let tolerated = if self.resuming { 0 } else { STEP_NS };
        if t >= newest.saturating_sub(tolerated) {
            self.behind = 0;
            self.resuming = false;
            self.newest = Some(newest.max(t));
            return (t, None);
        }
        self.behind += 1;
        if self.behind < CONFIRM {
            // Counted where the engine is (as it counts any older packet).
            return (t, None);
        }
        let back_ns = newest.saturating_sub(t);
        self.offset_ns = self.offset_ns.saturating_add(back_ns);
        self.last_stamp = Some(ts);
        self.behind = 0;
        self.resuming = false;
        self.steps += 1;
        (
            newest,
            Some(Step {
                back_ns,
                offset_ns: self.offset_ns,
            }),
        )
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The offset applied to packet times now (ns).
    pub fn offset_ns(&self) -> i64 {
        self.offset_ns
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_767_225_600 * S;

    /// Engine times of packets `ts`, in order.
    fn run(c: &mut ClockStep, ts: impl IntoIterator<Item = i64>) -> Vec<i64> {
        ts.into_iter().map(|t| c.place(t).0).collect()
    }

    #[test]
    fn ordinary_disorder_and_stray_packets_are_left_alone() {
        let mut c = ClockStep::new(None);
        let got = run(&mut c, [T0, T0 + S, T0 + S / 2, T0 - 20 * S, T0 + 2 * S]);
        assert_eq!(got, [T0, T0 + S, T0 + S / 2, T0 - 20 * S, T0 + 2 * S]);
        // A few packets an hour behind (wrong stamps), then the clock as before.
        let stray: Vec<i64> = (0..i64::from(CONFIRM) - 1)
            .map(|i| T0 - 3600 * S + i)
            .collect();
        assert_eq!(run(&mut c, stray.clone()), stray);
        assert_eq!(run(&mut c, [T0 + 3 * S]), [T0 + 3 * S]);
        assert_eq!((c.steps(), c.offset_ns()), (0, 0));
    }

    #[test]
    fn a_step_back_is_taken_after_its_confirmation_and_time_goes_on_from_the_newest() {
        let mut c = ClockStep::new(None);
        run(&mut c, (0..100).map(|i| T0 + i * S / 10));
        let newest = T0 + 99 * S / 10;
        // The clock steps back an hour; packets go on every 10 ms.
        let back = T0 + 10 * S - 3600 * S;
        let mut step = None;
        let mut times = Vec::new();
        for i in 0..200 {
            let (t, s) = c.place(back + i * S / 100);
            if s.is_some() {
                step = s;
            }
            times.push(t);
        }
        let at = (CONFIRM - 1) as usize;
        let s = step.expect("a step");
        assert_eq!(s.back_ns, newest - (back + at as i64 * S / 100));
        assert_eq!(c.steps(), 1);
        assert_eq!(times[at], newest, "the step's packet at the newest time");
        // After it, time goes on at the packets' pace less the offset's shrinking (0.5 %).
        for w in times[at..].windows(2) {
            assert_eq!(w[1] - w[0], S / 100 - S / 100 / SLEW);
        }
        let after = (times.len() - 1 - at) as i64;
        assert_eq!(c.offset_ns(), s.offset_ns - after * (S / 100 / SLEW));
        // A second step adds to the offset.
        let newest = *times.last().unwrap();
        let again: Vec<i64> = (0..i64::from(CONFIRM))
            .map(|i| back - 600 * S + i)
            .collect();
        let got = run(&mut c, again);
        assert_eq!(*got.last().unwrap(), newest);
        assert_eq!(c.steps(), 2);
    }

    #[test]
    fn the_offset_shrinks_with_packet_time_until_times_are_the_clocks_again() {
        let mut c = ClockStep::new(Some(T0));
        // A 100 s step, then a packet every millisecond.
        let back = T0 - 100 * S;
        let mut last = i64::MIN;
        let mut i = 0i64;
        loop {
            let (t, _) = c.place(back + i * S / 1000);
            assert!(
                t >= last,
                "engine time went back at packet {i}: {t} < {last}"
            );
            last = t;
            if c.steps() == 1 && c.offset_ns() == 0 {
                break;
            }
            i += 1;
            assert!(i < 30_000_000, "the offset did not shrink to zero");
        }
        // The step's 99.94 s of offset (100 s less its 63 confirming packets' time) go in 200
        // times that much packet time.
        let took = i * S / 1000;
        assert!((19_980 * S..=20_000 * S).contains(&took), "{took}");
        // From then on, times are the packets' own.
        assert_eq!(c.place(back + took + S).0, back + took + S);
    }

    #[test]
    fn a_restored_snapshots_time_counts_as_seen() {
        let mut c = ClockStep::new(Some(T0));
        let got = run(&mut c, (0..i64::from(CONFIRM)).map(|i| T0 - 7200 * S + i));
        assert_eq!(*got.last().unwrap(), T0);
        assert_eq!(c.steps(), 1);
        // A clock that moved forward meanwhile is taken as it is.
        let mut c = ClockStep::new(Some(T0));
        assert_eq!(c.place(T0 + 600 * S), (T0 + 600 * S, None));
        // What is left of an earlier step's offset after a restart (the snapshot holds shifted
        // time), less than STEP_NS: a step too, not a pile-up at the snapshot's time.
        let mut c = ClockStep::new(Some(T0));
        let got = run(&mut c, (0..i64::from(CONFIRM)).map(|i| T0 - 10 * S + i));
        assert_eq!(*got.last().unwrap(), T0);
        assert_eq!(c.steps(), 1);
        // Once a packet has reached the snapshot's time, 10 s behind is ordinary disorder.
        let mut c = ClockStep::new(Some(T0));
        c.place(T0 + S);
        let behind: Vec<i64> = (0..i64::from(CONFIRM)).map(|i| T0 - 9 * S + i).collect();
        assert_eq!(run(&mut c, behind.clone()), behind);
        assert_eq!(c.steps(), 0);
    }

    #[test]
    fn extreme_stamps_do_not_overflow() {
        let mut c = ClockStep::new(None);
        run(&mut c, [i64::MAX, i64::MAX]);
        for _ in 0..CONFIRM * 2 {
            c.place(i64::MIN);
        }
        c.place(0);
        assert!(c.steps() >= 1);
    }
}
