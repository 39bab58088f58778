//! Contacts waiting for the store, merged and bounded.
//!
//! Contacts are merged by (set, subscriber) to the newest second, and a set keeps at most
//! `cap + 1` subscribers per flush (the newest): one more than the store keeps is enough to
//! mark an endpoint popular. Past `max` distinct entries new ones are dropped and counted;
//! what the store could not take goes back in and leaves with the next flush.

use std::collections::HashMap;

use crate::tags::{SetKey, TAG_LEN};

/// One set's contacts: (subscriber tag, newest second).
pub type Members = Vec<([u8; TAG_LEN], u32)>;

/// Contacts not yet in the store.
#[derive(Debug)]
pub struct Backlog {
    sets: HashMap<SetKey, Members>,
    entries: usize,
    max: usize,
    cap: usize,
    /// Contacts dropped because the backlog was full.
    pub dropped: u64,
}

impl Backlog {
    /// A backlog of at most `max` distinct entries; sets of at most `cap + 1` members.
    pub fn new(max: usize, cap: usize) -> Self {
        Self {
            sets: HashMap::new(),
            entries: 0,
            max: max.max(1),
            cap: cap + 1,
            dropped: 0,
        }
    }

    /// Distinct (set, subscriber) entries waiting.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Add a contact of `tag` with set `key` at second `sec`.
    pub fn add(&mut self, key: SetKey, tag: [u8; TAG_LEN], sec: u32) {
        if let Some(members) = self.sets.get_mut(&key) {
            if let Some(m) = members.iter_mut().find(|m| m.0 == tag) {
                m.1 = m.1.max(sec);
                return;
            }
            if members.len() >= self.cap {
                // Full for this flush: keep the newest.
                if let Some(oldest) = members.iter_mut().min_by_key(|m| m.1) {
                    if oldest.1 < sec {
                        *oldest = (tag, sec);
                    }
                }
                return;
            }
            if self.entries >= self.max {
                self.dropped += 1;
                return;
            }
            members.push((tag, sec));
            self.entries += 1;
            return;
        }
        if self.entries >= self.max {
            self.dropped += 1;
            return;
        }
        self.sets.insert(key, vec![(tag, sec)]);
        self.entries += 1;
    }

    /// Take everything (the caller puts back what it could not write).
    pub fn take(&mut self) -> Vec<(SetKey, Members)> {
        self.entries = 0;
        self.sets.drain().collect()
    }

    /// Put back sets that could not be written.
    pub fn put_back(&mut self, sets: Vec<(SetKey, Members)>) {
        for (key, members) in sets {
            for (tag, sec) in members {
                self.add(key, tag, sec);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> SetKey {
        (b'e', [s.as_bytes()[0]; 8])
    }

    #[test]
    fn merges_bounds_and_counts_drops() {
        let mut b = Backlog::new(3, 8);
        b.add(k("a"), [1; 8], 10);
        b.add(k("a"), [1; 8], 12);
        b.add(k("a"), [1; 8], 11);
        b.add(k("b"), [1; 8], 10);
        b.add(k("a"), [2; 8], 10);
        assert_eq!((b.len(), b.dropped), (3, 0));
        b.add(k("c"), [1; 8], 10);
        b.add(k("a"), [3; 8], 10);
        assert_eq!((b.len(), b.dropped), (3, 2));
        let mut sets = b.take();
        assert!(b.is_empty());
        sets.sort();
        assert_eq!(sets[0], (k("a"), vec![([1; 8], 12), ([2; 8], 10)]));
        b.put_back(sets);
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn a_set_keeps_its_newest_members_beyond_the_cap() {
        let mut b = Backlog::new(100, 2);
        for i in 0..10u8 {
            b.add(k("a"), [i; 8], u32::from(i));
        }
        let sets = b.take();
        let mut secs: Vec<u32> = sets[0].1.iter().map(|m| m.1).collect();
        secs.sort();
        assert_eq!(secs, vec![7, 8, 9]);
    }
}
