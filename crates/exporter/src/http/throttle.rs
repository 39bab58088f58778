//! At most one log line per period for an event that can repeat thousands of times a second
//! (a connect flood), with the count of events each line stands for.

use std::time::{Duration, Instant};

/// Decides when an event is worth a log line.
#[derive(Debug)]
pub(super) struct Throttle {
    every: Duration,
    last_line: Option<Instant>,
    pending: u64,
}

impl Throttle {
    /// At most one line per `every`.
    pub(super) fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last_line: None,
            pending: 0,
        }
    }

    fn due(&self, now: Instant) -> bool {
        self.last_line
            .is_none_or(|t| now.saturating_duration_since(t) >= self.every)
    }

    fn take(&mut self, now: Instant) -> u64 {
        self.last_line = Some(now);
        std::mem::take(&mut self.pending)
    }

    /// `n` events happened: `Some(count)` when a line is due now, `count` being these events
    /// and those held back since the last line.
    pub(super) fn event(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.pending += n;
        self.due(now).then(|| self.take(now))
    }

    /// Called periodically: `Some(count)` when events were held back and a line is due.
    pub(super) fn flush(&mut self, now: Instant) -> Option<u64> {
        (self.pending > 0 && self.due(now)).then(|| self.take(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_it_stands_for() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut t = Throttle::new(Duration::from_secs(10));
        assert_eq!(t.event(1, t0), Some(1), "the first event is told at once");
        assert_eq!(t.flush(t0 + s), None);
        for i in 1..=1000 {
            assert_eq!(t.event(1, t0 + s * (i % 9)), None);
        }
        assert_eq!(t.flush(t0 + 9 * s), None, "not yet due");
        assert_eq!(t.event(2, t0 + 10 * s), Some(1002));
        assert_eq!(t.flush(t0 + 30 * s), None, "nothing held back");
        assert_eq!(t.event(1, t0 + 31 * s), Some(1));
        assert_eq!(t.event(1, t0 + 32 * s), None);
        assert_eq!(
            t.flush(t0 + 41 * s),
            Some(1),
            "held back events are told later"
        );
    }
}
