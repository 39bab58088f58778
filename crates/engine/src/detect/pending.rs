//! Candidates on hold until their emit time, given back in the order the scorer decides them:
//! by emit time, then start, subscriber, endpoint and kind, then arrival. A min-heap, so a
//! second in which nothing is due costs one comparison, not a pass over everything on hold.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::alert::AlertKind;
use super::event::Candidate;
use crate::key::Addr;

/// The candidates on hold.
#[derive(Default)]
pub(crate) struct Pending {
    heap: BinaryHeap<Reverse<Held>>,
    /// Arrival number of the next candidate: equal keys leave in arrival order.
    seq: u64,
}

struct Held {
    key: (i64, i64, Addr, Addr, AlertKind),
    seq: u64,
    cand: Box<Candidate>,
}

impl Held {
    fn order(&self) -> (&(i64, i64, Addr, Addr, AlertKind), u64) {
        (&self.key, self.seq)
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}

impl Eq for Held {}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> Ordering {
        self.order().cmp(&other.order())
    }
}

impl Pending {
    /// Put `cand` on hold.
    pub fn push(&mut self, cand: Box<Candidate>) {
        let key = (cand.emit_at, cand.start_ns, cand.home, cand.ext, cand.kind);
        self.heap.push(Reverse(Held {
            key,
            seq: self.seq,
            cand,
        }));
        self.seq = self.seq.wrapping_add(1);
    }

    /// The next candidate due at `now` (with `all`, the next one whatever its emit time).
    pub fn pop_due(&mut self, now: i64, all: bool) -> Option<Box<Candidate>> {
        let top = self.heap.peek()?;
        if !all && top.0.key.0 > now {
            return None;
        }
        self.heap.pop().map(|h| h.0.cand)
    }

    /// How many are on hold.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Every candidate on hold, in the order they would be decided.
    pub fn sorted(&self) -> Vec<&Candidate> {
        let mut held: Vec<&Held> = self.heap.iter().map(|h| &h.0).collect();
        held.sort_unstable();
        held.into_iter().map(|h| &*h.cand).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(emit_at: i64, start_ns: i64, home: u8) -> Box<Candidate> {
        let mut addr = [0u8; 16];
        addr[15] = home;
        Box::new(Candidate {
            emit_at,
            kind: AlertKind::Beacon,
            home: addr,
            ext: [9; 16],
            v4: false,
            detected_ns: start_ns,
            burst: None,
            beacon: None,
            beacon_facts: None,
            pair_first_seen_ns: 0,
            occurrence: 0,
            recurrence: 0.0,
            baseline_bytes: None,
            totals: (0, 0, 0, 0),
            proto_port: (6, 443),
            connections: Default::default(),
            start_ns,
            end_ns: start_ns,
        })
    }

    fn drain(p: &mut Pending, now: i64, all: bool) -> Vec<(i64, i64, u8)> {
        std::iter::from_fn(|| p.pop_due(now, all))
            .map(|c| (c.emit_at, c.start_ns, c.home[15]))
            .collect()
    }

    #[test]
    fn due_ones_leave_sorted_and_the_rest_stay() {
        let mut p = Pending::default();
        for (e, s, h) in [(30, 1, 1), (10, 5, 2), (10, 2, 3), (20, 0, 4), (10, 2, 0)] {
            p.push(cand(e, s, h));
        }
        assert_eq!(p.sorted().len(), 5);
        assert_eq!(drain(&mut p, 9, false), vec![]);
        assert_eq!(
            drain(&mut p, 10, false),
            vec![(10, 2, 0), (10, 2, 3), (10, 5, 2)]
        );
        assert_eq!(p.len(), 2);
        assert_eq!(drain(&mut p, 10, true), vec![(20, 0, 4), (30, 1, 1)]);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn equal_keys_leave_in_arrival_order() {
        let mut p = Pending::default();
        for beacons in [3, 1, 2] {
            let mut c = cand(5, 5, 5);
            c.occurrence = beacons;
            p.push(c);
        }
        let order: Vec<u32> = std::iter::from_fn(|| p.pop_due(5, false))
            .map(|c| c.occurrence)
            .collect();
        assert_eq!(order, vec![3, 1, 2]);
    }
}
