//! A bounded map from IP fragment identity to the ports of its first fragment.
//!
//! Later fragments (offset > 0) carry no transport header. When the first fragment has been
//! seen, its ports are remembered here for `fragment_timeout` of packet time so the later ones
//! join the right flow. The map holds at most `cap` entries; the oldest is dropped (and
//! counted) when it is full.

use std::collections::VecDeque;

use ahash::RandomState;
use hashbrown::HashMap;

use crate::key::Addr;

/// Identity of a fragmented datagram (RFC 791 / RFC 8200: source, destination, protocol, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub(crate) src: Addr,
    pub(crate) dst: Addr,
    pub(crate) proto: u8,
    pub(crate) id: u32,
}

#[derive(Debug)]
pub(crate) struct FragMap {
    map: HashMap<FragKey, (u16, u16, i64), RandomState>,
    order: VecDeque<(FragKey, i64)>,
    cap: usize,
    timeout_ns: i64,
    pub(crate) evicted: u64,
}

impl FragMap {
    pub(crate) fn new(cap: usize, timeout_ns: i64, hasher: RandomState) -> Self {
        let cap = cap.max(1);
        let mut map = HashMap::with_hasher(hasher);
        let mut order = VecDeque::new();
        // Reserved for the cap (see `bytes_for`); skipped if the system refuses.
        let _ = map.try_reserve(crate::memory::index_capacity(cap));
        let _ = order.try_reserve_exact(2 * cap + 1);
        Self {
            map,
            order,
            cap,
            timeout_ns,
            evicted: 0,
        }
    }

    /// Remember the ports of a first fragment seen at `ts_ns`.
    pub(crate) fn insert(&mut self, key: FragKey, sport: u16, dport: u16, ts_ns: i64) {
        if !self.map.contains_key(&key) {
            while self.map.len() >= self.cap {
                match self.order.pop_front() {
                    Some((old, ts)) => {
                        if self.map.get(&old).is_some_and(|v| v.2 == ts) {
                            self.map.remove(&old);
                            self.evicted += 1;
                        }
                    }
                    None => break,
                }
            }
        }
        self.map.insert(key, (sport, dport, ts_ns));
        // Queue entries are superseded, not removed: bound the queue to a small multiple of the map.
        self.order.push_back((key, ts_ns));
        if self.order.len() > self.cap.saturating_mul(2) {
            self.compact();
        }
    }

    /// Ports of the datagram's first fragment, if remembered.
    pub(crate) fn get(&self, key: &FragKey) -> Option<(u16, u16)> {
        self.map.get(key).map(|&(s, d, _)| (s, d))
    }

    /// Forget entries older than the timeout.
    #[inline]
    pub(crate) fn expire(&mut self, now_ns: i64) {
        if self.order.is_empty() {
            return;
        }
        self.expire_some(now_ns);
    }

    fn expire_some(&mut self, now_ns: i64) {
        while let Some(&(key, ts)) = self.order.front() {
            if now_ns.saturating_sub(ts) <= self.timeout_ns {
                break;
            }
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|v| v.2 == ts) {
                self.map.remove(&key);
            }
        }
    }

    fn compact(&mut self) {
        let map = &self.map;
        self.order
            .retain(|(k, ts)| map.get(k).is_some_and(|v| v.2 == *ts));
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Heap bytes of a map with this cap, reserved when it is made: the index for twice the
    /// cap (as for the other tables, see [`crate::memory`]) and the order queue, which holds
    /// up to twice the cap (plus one) before it is compacted.
    pub(crate) fn bytes_for(cap: usize) -> usize {
        let cap = cap.max(1);
        let slot = std::mem::size_of::<(FragKey, (u16, u16, i64))>();
        crate::memory::index_bytes(cap, slot)
            + (2 * cap + 1) * std::mem::size_of::<(FragKey, i64)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: [1; 16],
            dst: [2; 16],
            proto: 17,
            id,
        }
    }

    #[test]
    fn remembers_then_expires() {
        let mut m = FragMap::new(4, 30, RandomState::with_seeds(1, 2, 3, 4));
        m.insert(key(1), 53, 4000, 100);
        assert_eq!(m.get(&key(1)), Some((53, 4000)));
        m.expire(130);
        assert_eq!(m.get(&key(1)), Some((53, 4000)));
        m.expire(131);
        assert_eq!(m.get(&key(1)), None);
    }

    #[test]
    fn stays_within_cap_and_counts_evictions() {
        let mut m = FragMap::new(3, 1_000, RandomState::with_seeds(1, 2, 3, 4));
        for i in 0..10 {
            m.insert(key(i), 1, 2, i64::from(i));
            assert!(m.len() <= 3);
            assert!(m.order.len() <= 6);
        }
        assert_eq!(m.evicted, 7);
        assert_eq!(m.get(&key(9)), Some((1, 2)));
        assert_eq!(m.get(&key(0)), None);
    }

    #[test]
    fn reinsert_refreshes_entry() {
        let mut m = FragMap::new(2, 10, RandomState::with_seeds(1, 2, 3, 4));
        m.insert(key(1), 1, 2, 0);
        m.insert(key(1), 1, 2, 8);
        m.expire(15);
        assert_eq!(m.get(&key(1)), Some((1, 2)));
    }
}
