//! Closing a beacon candidate's last exchange on silence.
//!
//! An exchange closes when the pair's next one starts (see [`super::exchange`]), so the poll
//! that completes a beacon's evidence would otherwise wait for one more poll, and a beacon that
//! stops (the agent's task is done, the capture ends) would be judged only when the input ends
//! or never. Pairs that could already be beacons queue their open exchange here with a
//! deadline; once it has been silent for [`IDLE_CLOSE_NS`] it is closed and analysed.
//!
//! The queue is a FIFO in packet time (every entry has the same delay, so deadlines arrive in
//! order) and bounded: at [`IDLE_QUEUE_CAP`] entries new ones are dropped and counted, and such
//! an exchange is closed by its pair's next one, as before.

use std::collections::VecDeque;

use crate::key::Addr;

/// Silence after which a queued exchange is closed: at least the exchange gap, and long enough
/// for a slow answer to a poll to arrive within its exchange.
pub const IDLE_CLOSE_NS: i64 = 2_000_000_000;

/// Open exchanges waiting for their silence, at most.
pub const IDLE_QUEUE_CAP: usize = 1 << 16;

/// One open exchange waiting: its deadline, the pair, and the exchange's start (its identity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiting {
    pub due_ns: i64,
    pub key: (Addr, Addr),
    pub start: u32,
}

/// The queue.
#[derive(Debug, Default, Clone)]
pub(crate) struct IdleQueue {
    q: VecDeque<Waiting>,
    /// Entries refused at the cap.
    pub dropped: u64,
}

impl IdleQueue {
    /// Queue exchange `start` of pair `key`, last active at `ts`.
    pub fn push(&mut self, ts: i64, key: (Addr, Addr), start: u32) {
        if self.q.len() >= IDLE_QUEUE_CAP {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.q.push_back(Waiting {
            due_ns: ts.saturating_add(IDLE_CLOSE_NS),
            key,
            start,
        });
    }

    /// The next entry due at `now`, if any.
    pub fn pop_due(&mut self, now: i64) -> Option<Waiting> {
        if self.q.front().is_some_and(|w| w.due_ns <= now) {
            self.q.pop_front()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_out_when_due_in_order_and_the_queue_is_bounded() {
        let k = ([1u8; 16], [2u8; 16]);
        let mut q = IdleQueue::default();
        q.push(0, k, 1);
        q.push(10, k, 2);
        assert_eq!(q.pop_due(IDLE_CLOSE_NS - 1), None);
        assert_eq!(q.pop_due(IDLE_CLOSE_NS).map(|w| w.start), Some(1));
        assert_eq!(q.pop_due(IDLE_CLOSE_NS), None);
        assert_eq!(q.pop_due(IDLE_CLOSE_NS + 10).map(|w| w.start), Some(2));
        for i in 0..IDLE_QUEUE_CAP as u32 + 3 {
            q.push(0, k, i);
        }
        assert_eq!(q.dropped, 3);
    }
}
