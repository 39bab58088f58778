//! Exchanges: a pair's traffic cut into request/response rounds by silence, in one connection
//! or across many.
//!
//! An exchange starts with an upstream packet that carries payload after at least the gap
//! (`beacon_event_gap_seconds`) without payload either way; every payload packet after it,
//! both ways, belongs to it until the next such start. So a poll inside one long-lived
//! connection (HTTP keep-alive, WebSocket, long polling, MQTT, QUIC) is an exchange just like
//! a poll in a connection of its own, and a slow answer (the server thinking, or pushing) does
//! not start one. Packets without payload (pure ACKs, SYN/FIN/RST) and TCP keep-alive probes
//! (at most one byte) are not exchanges and neither start nor extend one: the operating
//! system's keep-alive timer is not a beacon.
//!
//! State is fixed per pair: the open exchange and a ring of the last [`EVENT_RING`] closed
//! ones (start and bytes); nothing is allocated per packet.

use super::ring::Ring;
use burstwatch_wire::proto::TCP;

/// Closed exchanges remembered per pair.
pub const EVENT_RING: usize = 16;

/// Whether a packet of protocol `proto` with `payload_len` transport payload bytes is part of
/// an exchange: TCP needs more than one byte (a keep-alive probe carries zero or one), other
/// protocols any payload.
#[inline]
pub fn carries_exchange(proto: u8, payload_len: u32) -> bool {
    match proto {
        TCP => payload_len > 1,
        _ => payload_len > 0,
    }
}

/// A pair's exchanges: the open one and a ring of recent closed ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchanges {
    /// Recent closed exchanges: start in centiseconds after the pair was first seen
    /// (saturating: 497 days) and bytes (both ways, payload-carrying packets).
    recent: Ring<(u32, u32), EVENT_RING>,
    /// Whether an exchange is open.
    open: bool,
    cur_start: u32,
    cur_bytes: u64,
    /// Last payload packet either way (ns), `i64::MIN` before the first.
    last_ns: i64,
    /// Exchanges closed since the pair was first seen.
    pub closed: u32,
}

impl Default for Exchanges {
    fn default() -> Self {
        Self {
            recent: Ring::default(),
            open: false,
            cur_start: 0,
            cur_bytes: 0,
            last_ns: i64::MIN,
            closed: 0,
        }
    }
}

impl Exchanges {
    /// Count one payload-carrying packet (see [`carries_exchange`]) of `bytes` at `ts`
    /// (`first_seen_ns`: the pair's origin for the stored starts). Returns `true` when it
    /// closed an exchange (by starting the next one).
    #[inline]
    pub fn add(&mut self, ts: i64, up: bool, bytes: u32, first_seen_ns: i64, gap_ns: i64) -> bool {
        let idle = self.last_ns == i64::MIN || ts.saturating_sub(self.last_ns) >= gap_ns;
        let mut closed = false;
        if up && (idle || !self.open) {
            if self.open {
                self.push();
                closed = true;
            }
            let cs = ts.saturating_sub(first_seen_ns).max(0) / 10_000_000;
            self.cur_start = u32::try_from(cs).unwrap_or(u32::MAX);
            self.cur_bytes = 0;
            self.open = true;
        }
        if self.open {
            self.cur_bytes = self.cur_bytes.saturating_add(u64::from(bytes));
        }
        self.last_ns = self.last_ns.max(ts);
        closed
    }

    /// Close the open exchange, if any (end of input). Returns whether one was closed.
    pub fn close(&mut self) -> bool {
        if !self.open {
            return false;
        }
        self.push();
        self.open = false;
        true
    }

    fn push(&mut self) {
        let bytes = u32::try_from(self.cur_bytes).unwrap_or(u32::MAX);
        self.recent.push((self.cur_start, bytes));
        self.closed = self.closed.saturating_add(1);
    }

    /// Whether an exchange is open.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Start of the open exchange (centiseconds after the pair was first seen), if one is.
    #[inline]
    pub fn open_start(&self) -> Option<u32> {
        self.open.then_some(self.cur_start)
    }

    /// Last payload packet either way (ns), `i64::MIN` before the first.
    pub fn last_ns(&self) -> i64 {
        self.last_ns
    }

    /// Recent closed exchanges, oldest first, into `out`: (start in centiseconds after the
    /// pair was first seen, bytes). Returns how many were written.
    pub fn recent(&self, out: &mut [(u32, u32); EVENT_RING]) -> usize {
        for (o, e) in out.iter_mut().zip(self.recent.iter()) {
            *o = e;
        }
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS_PER_SEC: i64 = 1_000_000_000;

    fn recent(x: &Exchanges) -> Vec<(u32, u32)> {
        let mut buf = [(0, 0); EVENT_RING];
        let n = x.recent(&mut buf);
        buf[..n].to_vec()
    }

    #[test]
    fn keep_alive_probes_and_acks_carry_no_exchange() {
        assert!(!carries_exchange(6, 0));
        assert!(!carries_exchange(6, 1));
        assert!(carries_exchange(6, 2));
        assert!(carries_exchange(17, 1));
        assert!(!carries_exchange(17, 0));
    }

    #[test]
    fn a_request_after_silence_starts_an_exchange_a_late_answer_does_not() {
        let mut x = Exchanges::default();
        // Poll at 0 s answered 3 s later (long-polling server), next poll at 30 s.
        assert!(!x.add(0, true, 300, 0, NS_PER_SEC / 2));
        assert!(!x.add(3 * NS_PER_SEC, false, 500, 0, NS_PER_SEC / 2));
        assert!(x.add(30 * NS_PER_SEC, true, 300, 0, NS_PER_SEC / 2));
        assert_eq!(recent(&x), vec![(0, 800)]);
        // An upstream packet shortly after the answer continues the exchange.
        assert!(!x.add(
            30 * NS_PER_SEC + NS_PER_SEC / 10,
            true,
            100,
            0,
            NS_PER_SEC / 2
        ));
        assert!(x.close());
        assert_eq!(recent(&x), vec![(0, 800), (3000, 400)]);
        assert_eq!(x.closed, 2);
        assert!(!x.close());
    }

    #[test]
    fn downstream_before_any_request_is_not_an_exchange() {
        let mut x = Exchanges::default();
        assert!(!x.add(0, false, 500, 0, NS_PER_SEC));
        assert!(!x.is_open());
        assert!(!x.add(NS_PER_SEC / 10, true, 100, 0, NS_PER_SEC));
        assert!(x.is_open());
        assert!(x.close());
        assert_eq!(recent(&x), vec![(10, 100)]);
    }

    #[test]
    fn the_ring_keeps_the_latest_exchanges() {
        let mut x = Exchanges::default();
        for i in 0..40 {
            x.add(i * 10 * NS_PER_SEC, true, 100, 0, NS_PER_SEC);
        }
        let r = recent(&x);
        assert_eq!(r.len(), EVENT_RING);
        assert_eq!(r[EVENT_RING - 1].0, 38 * 1000);
        assert_eq!(x.closed, 39);
    }
}
