//! One-second bins: flow records pro-rated over their own start–end span, sampled packets at
//! their arrival second, held until the watermark passes and then released in time order.
//!
//! A record's bytes and packets are spread over the seconds its span covers in proportion to
//! the overlap (as pmacct does), with cumulative integer shares so that the bins add up to the
//! record exactly. Nothing is dumped at the export instant.
//!
//! A record is held once, as a span, not once per second: spans wait by their first second,
//! and the spans under way are kept sorted by key. Releasing a second merges the spans that
//! start in it (sorted once) into those under way and walks them in key order, taking each
//! one's share of the second and adding up the shares of one key: one pass over what is under
//! way per second, no hashing or sorting per record and second. The output order is the key
//! order, never an arrival or hash order. Keys order by connection (both directions of one
//! connection, then the next connection between the same two addresses), so the engine meets
//! a pair's bins one after another and finds its entries still in the cache.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::NS_PER_SEC;

/// A directional 5-tuple: what one bin entry is kept per. Keys order by connection (see
/// [`Key::connection_order`]), so both directions of one connection, and every connection
/// between two addresses, are neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol number.
    pub proto: u8,
    /// Source port (0 where the protocol has none).
    pub sport: u16,
    /// Destination port (0 where the protocol has none).
    pub dport: u16,
}

impl Key {
    /// What keys are ordered by: the lower of the two addresses (an IPv4 address before any
    /// IPv6 one), the higher, protocol, the lower address's port, the higher one's, and last
    /// whether the key goes from the higher address to the lower.
    pub fn connection_order(&self) -> (IpAddr, IpAddr, u8, u16, u16, bool) {
        if self.src <= self.dst {
            (
                self.src, self.dst, self.proto, self.sport, self.dport, false,
            )
        } else {
            (self.dst, self.src, self.proto, self.dport, self.sport, true)
        }
    }
}

impl Ord for Key {
    fn cmp(&self, o: &Self) -> Ordering {
        self.connection_order().cmp(&o.connection_order())
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Estimated volume of one key in one second, with what it was estimated from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Volume {
    /// Estimated L3 bytes (sampled bytes × sampling rate).
    pub bytes: u64,
    /// Estimated packets (sampled packets × sampling rate).
    pub packets: u64,
    /// Flow records or sampled packets that contributed (each counted in every bin it touched).
    pub samples: u32,
    /// Highest sampling rate among them (1 = unsampled).
    pub rate: u32,
}

impl Volume {
    /// One sample (a record, or a sampled packet) of `bytes` and `packets` taken at 1 in
    /// `rate`: its counts scaled up by the rate.
    pub fn sampled(bytes: u64, packets: u64, rate: u32) -> Self {
        let r = u64::from(rate);
        Volume {
            bytes: bytes.saturating_mul(r),
            packets: packets.saturating_mul(r),
            samples: 1,
            rate,
        }
    }

    fn add(&mut self, o: &Volume) {
        self.bytes = self.bytes.saturating_add(o.bytes);
        self.packets = self.packets.saturating_add(o.packets);
        self.samples = self.samples.saturating_add(o.samples);
        self.rate = self.rate.max(o.rate);
    }
}

/// A released bin: one key's volume in the second starting at `second * 1e9` ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bin {
    /// Unix second of the bin.
    pub second: i64,
    /// The directional 5-tuple.
    pub key: Key,
    /// What was counted.
    pub volume: Volume,
}

/// What the bins counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BinStats {
    /// Bins whose second had already been released when they came: added to the oldest
    /// second still held instead.
    pub late: u64,
    /// The most seconds a late bin's own second was behind the oldest second still held: how
    /// much longer the hold would have had to be for none to be late.
    pub late_behind_s: u64,
    /// Seconds released before the watermark because the held entries reached the cap.
    pub forced: u64,
    /// Records whose span was longer than the cap: spread over its last `max_span` seconds.
    pub clamped_spans: u64,
}

/// A key as plain integers, ordered by its connection first: the lower of its two endpoints
/// (an IPv4 address before any IPv6 one, then by octets), the higher, then protocol and their
/// ports, then direction. Both directions of a connection, and all connections between two
/// addresses, are neighbours in that order, so the engine finds the pair's state still in the
/// cache for all but the first of them. Comparing two is a few integer comparisons instead of
/// matching two address enums. 40 bytes: each address as its high and low halves, the two
/// family flags and the direction in `rest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SortKey {
    /// The lower endpoint's address.
    lo: [u64; 2],
    /// The higher endpoint's address.
    hi: [u64; 2],
    /// [`LO_V6`], [`HI_V6`], then protocol, the lower endpoint's port, the higher one's and
    /// [`SWAPPED`] in the low 41 bits ([`PORTS`]).
    rest: u64,
}

/// `SortKey::rest`: the lower address is IPv6.
const LO_V6: u64 = 1 << 63;
/// `SortKey::rest`: the higher address is IPv6.
const HI_V6: u64 = 1 << 62;
/// `SortKey::rest`: the key goes from the higher endpoint to the lower one.
const SWAPPED: u64 = 1;
/// `SortKey::rest`: protocol, ports and direction.
const PORTS: u64 = (1 << 41) - 1;

impl Ord for SortKey {
    fn cmp(&self, o: &Self) -> Ordering {
        // Lazily: most keys differ in their lower address already.
        (self.rest & LO_V6)
            .cmp(&(o.rest & LO_V6))
            .then_with(|| self.lo.cmp(&o.lo))
            .then_with(|| (self.rest & HI_V6).cmp(&(o.rest & HI_V6)))
            .then_with(|| self.hi.cmp(&o.hi))
            .then_with(|| (self.rest & PORTS).cmp(&(o.rest & PORTS)))
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

fn addr_bits(a: IpAddr) -> (bool, [u64; 2]) {
    let (v6, bits) = match a {
        IpAddr::V4(v) => (false, u128::from(u32::from(v))),
        IpAddr::V6(v) => (true, u128::from(v)),
    };
    (v6, [(bits >> 64) as u64, bits as u64])
}

impl SortKey {
    /// A prefix of the key's order in one word: `a.rank() < b.rank()` implies `a < b`, and
    /// `a == b` implies equal ranks. An IPv6 lower address gives its top 63 bits; an IPv4
    /// one gives its 32 bits, then whether the higher address is IPv6, then the higher
    /// address's top 30 bits (of its 32 for IPv4, of its high word for IPv6).
    #[inline]
    fn rank(&self) -> u64 {
        if self.rest & LO_V6 != 0 {
            LO_V6 | self.lo[0] >> 1
        } else if self.rest & HI_V6 != 0 {
            // An IPv4 address keeps its 32 bits in the low word (the high one is 0).
            self.lo[1] << 31 | 1 << 30 | self.hi[0] >> 34
        } else {
            self.lo[1] << 31 | self.hi[1] >> 2
        }
    }

    fn key(&self) -> Key {
        let addr = |v6: bool, half: [u64; 2]| {
            let bits = u128::from(half[0]) << 64 | u128::from(half[1]);
            if v6 {
                IpAddr::V6(bits.into())
            } else {
                // Only IPv4 addresses' 32 bits were stored.
                IpAddr::V4((bits as u32).into())
            }
        };
        let r = self.rest;
        let (lo, hi) = (addr(r & LO_V6 != 0, self.lo), addr(r & HI_V6 != 0, self.hi));
        let (lo_port, hi_port) = ((r >> 17) as u16, (r >> 1) as u16);
        let proto = (r >> 33) as u8;
        if r & SWAPPED != 0 {
            Key {
                src: hi,
                dst: lo,
                proto,
                sport: hi_port,
                dport: lo_port,
            }
        } else {
            Key {
                src: lo,
                dst: hi,
                proto,
                sport: lo_port,
                dport: hi_port,
            }
        }
    }

    fn of(k: &Key) -> Self {
        let src = addr_bits(k.src);
        let dst = addr_bits(k.dst);
        let (lo, hi, lo_port, hi_port, swapped) = if src <= dst {
            (src, dst, k.sport, k.dport, 0)
        } else {
            (dst, src, k.dport, k.sport, SWAPPED)
        };
        let flags = if lo.0 { LO_V6 } else { 0 } | if hi.0 { HI_V6 } else { 0 } | swapped;
        Self {
            lo: lo.1,
            hi: hi.1,
            rest: flags
                | u64::from(k.proto) << 33
                | u64::from(lo_port) << 17
                | u64::from(hi_port) << 1,
        }
    }
}

/// `total * part / whole`, exact (whole > 0, part <= whole).
fn share(total: u64, part: u64, whole: u64) -> u64 {
    match total.checked_mul(part) {
        Some(num) => num / whole,
        None => {
            let num = u128::from(total) * u128::from(part);
            u64::try_from(num / u128::from(whole)).unwrap_or(total)
        }
    }
}

/// One record's volume held over its seconds, or one second's sampled packets.
#[derive(Debug, Clone, Copy)]
struct Span {
    key: SortKey,
    /// Start of the span (ns).
    start_ns: i64,
    /// Nanoseconds it covers (0: all of it goes to its one second).
    span_ns: u64,
    /// Its last second: the rest of its volume goes there.
    last: i64,
    /// Its bytes and packets in all; `samples` and `rate` go to every bin it touches.
    total: Volume,
    /// Bytes and packets given to the seconds before.
    given_bytes: u64,
    given_packets: u64,
}

impl Span {
    /// All of `vol` in second `second`.
    fn whole(key: SortKey, second: i64, vol: Volume) -> Self {
        Span {
            key,
            start_ns: second.saturating_mul(NS_PER_SEC),
            span_ns: 0,
            last: second,
            total: vol,
            given_bytes: 0,
            given_packets: 0,
        }
    }

    /// Its share of second `s` (not before its first, not after its last): its cumulative
    /// share up to the end of `s` (all of it in its last second) less what it gave before;
    /// `None` when that is nothing.
    #[inline]
    fn take(&mut self, s: i64) -> Option<Volume> {
        let (b, p) = if s >= self.last {
            (self.total.bytes, self.total.packets)
        } else {
            let part = ((s + 1) * NS_PER_SEC - self.start_ns).unsigned_abs();
            (
                share(self.total.bytes, part, self.span_ns),
                share(self.total.packets, part, self.span_ns),
            )
        };
        let v = Volume {
            bytes: b.saturating_sub(self.given_bytes),
            packets: p.saturating_sub(self.given_packets),
            samples: self.total.samples,
            rate: self.total.rate,
        };
        (self.given_bytes, self.given_packets) = (b, p);
        (v.bytes > 0 || v.packets > 0).then_some(v)
    }
}

/// Emptied vectors of released seconds kept for reuse.
const SPARE: usize = 16;

/// The bins held: spans waiting for their first second, and those under way, with a cap on
/// the (span, second) entries held.
#[derive(Debug)]
pub struct Bins {
    /// Spans by the second they start in (a late one: the next second to release), in arrival
    /// order (consecutive one-second entries of one key merged).
    pending: BTreeMap<i64, Vec<Span>>,
    /// Spans under way (started, not ended), sorted by key.
    active: Vec<Span>,
    /// The next `active`, built while a second is released.
    next: Vec<Span>,
    /// Emptied vectors of `pending`, kept for the next seconds (at most [`SPARE`]).
    spare: Vec<Vec<Span>>,
    /// Scratch: the spans starting in the second being released as (rank, index), sorted by
    /// their keys: a span is too large to move around cheaply, and the rank (see
    /// [`SortKey::rank`]) decides most comparisons without reading the span again.
    order: Vec<(u64, u32)>,
    /// (span, second) entries held: the seconds each held span has still to give.
    entries: usize,
    max_entries: usize,
    max_span_s: i64,
    /// Every second below this has been released.
    released_below: i64,
    stats: BinStats,
}

impl Bins {
    /// Bins holding at most `max_entries` (key, second) entries; a record spans at most
    /// `max_span_s` seconds.
    pub fn new(max_entries: usize, max_span_s: u32) -> Self {
        Self {
            pending: BTreeMap::new(),
            active: Vec::new(),
            next: Vec::new(),
            spare: Vec::new(),
            order: Vec::new(),
            entries: 0,
            max_entries: max_entries.max(1),
            max_span_s: i64::from(max_span_s.max(1)),
            released_below: i64::MIN,
            stats: BinStats::default(),
        }
    }

    /// What the bins counted.
    pub fn stats(&self) -> BinStats {
        self.stats
    }

    /// Entries held now: the seconds the held spans have still to give.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Add `vol` (its `bytes` and `packets` totals) spread over `[start_ns, end_ns]`.
    /// `samples` and `rate` go to every bin touched.
    pub fn add_span(&mut self, key: Key, start_ns: i64, end_ns: i64, vol: Volume) {
        let (mut start, end) = if end_ns < start_ns {
            (end_ns, start_ns)
        } else {
            (start_ns, end_ns)
        };
        let max_ns = self.max_span_s.saturating_mul(NS_PER_SEC);
        if end.saturating_sub(start) > max_ns {
            self.stats.clamped_spans += 1;
            start = end - max_ns;
        }
        let first = start.div_euclid(NS_PER_SEC);
        let last = end.div_euclid(NS_PER_SEC);
        if first == last {
            self.add(first, key, vol);
            return;
        }
        let mut span = Span {
            key: SortKey::of(&key),
            start_ns: start,
            span_ns: (end - start).unsigned_abs(),
            last,
            total: vol,
            given_bytes: 0,
            given_packets: 0,
        };
        let mut first = first;
        if first < self.released_below {
            // The seconds already released: their shares, each counted late, go to the next
            // second to release, as one entry beside the rest of the span.
            let mut late = Volume::default();
            let upto = last.min(self.released_below - 1);
            for sec in first..=upto {
                if let Some(v) = span.take(sec) {
                    self.note_late(sec);
                    late.add(&v);
                }
            }
            if late.bytes > 0 || late.packets > 0 {
                self.hold(Span::whole(span.key, self.released_below, late));
            }
            if last < self.released_below {
                return;
            }
            first = self.released_below;
        }
        self.entries += (last - first + 1) as usize;
        self.pending_at(first).push(span);
    }

    /// Add `vol` to one second.
    pub fn add(&mut self, second: i64, key: Key, vol: Volume) {
        let mut second = second;
        if second < self.released_below {
            self.note_late(second);
            second = self.released_below;
        }
        self.hold(Span::whole(SortKey::of(&key), second, vol));
    }

    /// A bin of second `sec`, already released, counted late.
    fn note_late(&mut self, sec: i64) {
        self.stats.late += 1;
        let behind = self.released_below.saturating_sub(sec).unsigned_abs();
        self.stats.late_behind_s = self.stats.late_behind_s.max(behind);
    }

    /// Hold a one-second entry, merged into the previous one when it has the same key (sFlow
    /// samples and the pieces of one flow often come one after another).
    fn hold(&mut self, span: Span) {
        let held = self.pending_at(span.last);
        match held.last_mut() {
            // A one-second entry of this second (a span starting here covers more).
            Some(last) if last.key == span.key && last.span_ns == 0 => {
                last.total.add(&span.total);
            }
            _ => {
                held.push(span);
                self.entries += 1;
            }
        }
    }

    fn pending_at(&mut self, second: i64) -> &mut Vec<Span> {
        let spare = &mut self.spare;
        self.pending
            .entry(second)
            .or_insert_with(|| spare.pop().unwrap_or_default())
    }

    /// The next second with something to release.
    fn next_second(&self) -> Option<i64> {
        if self.active.is_empty() {
            self.pending.first_key_value().map(|(&s, _)| s)
        } else {
            Some(self.released_below)
        }
    }

    /// Release, in `out`, every second below `watermark_s` and, while more than the cap is
    /// held, the oldest seconds; the bins of one second come in key order, so the output never
    /// depends on hash or arrival order.
    pub fn release(&mut self, watermark_s: i64, out: &mut Vec<Bin>) {
        while let Some(sec) = self.next_second() {
            let due = sec < watermark_s;
            let over = self.entries > self.max_entries;
            if !due && !over {
                break;
            }
            if !due {
                self.stats.forced += 1;
            }
            self.pop_second(sec, out);
        }
    }

    /// Release everything (end of input).
    pub fn release_all(&mut self, out: &mut Vec<Bin>) {
        while let Some(sec) = self.next_second() {
            self.pop_second(sec, out);
        }
    }

    /// Release second `sec`: the spans starting in it, sorted, merged into those under way;
    /// each gives its share, the shares of one key are added up into one bin.
    fn pop_second(&mut self, sec: i64, out: &mut Vec<Bin>) {
        let mut fresh = match self.pending.first_key_value() {
            Some((&s, _)) if s == sec => self.pending.pop_first().map(|(_, v)| v),
            _ => None,
        }
        .unwrap_or_default();
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        // At most the cap (`max_entries`, far below 2^32) plus one datagram's spans.
        // One pass in memory order over spans held since their second arrived (cold in cache
        // by now), then a sort that reads them again only for equal ranks.
        order.extend(fresh.iter().zip(0u32..).map(|(s, i)| (s.key.rank(), i)));
        order.sort_unstable_by(|&(rx, x), &(ry, y)| {
            rx.cmp(&ry)
                .then_with(|| fresh[x as usize].key.cmp(&fresh[y as usize].key))
        });
        let fresh_at = |f: usize| order.get(f).and_then(|&(_, i)| fresh.get(i as usize));
        let mut next = std::mem::take(&mut self.next);
        next.clear();
        let mut acc: Option<(SortKey, Volume)> = None;
        let mut emit = |acc: Option<(SortKey, Volume)>| {
            if let Some((k, volume)) = acc {
                out.push(Bin {
                    second: sec,
                    key: k.key(),
                    volume,
                });
            }
        };
        let (mut a, mut f) = (0, 0);
        while a < self.active.len() || f < order.len() {
            let from_active = match (self.active.get(a), fresh_at(f)) {
                (Some(x), Some(y)) => x.key <= y.key,
                (Some(_), None) => true,
                _ => false,
            };
            let mut span = if from_active {
                a += 1;
                self.active[a - 1]
            } else {
                f += 1;
                match fresh_at(f - 1) {
                    Some(&s) => s,
                    None => continue,
                }
            };
            self.entries = self.entries.saturating_sub(1);
            if let Some(v) = span.take(sec) {
                match &mut acc {
                    Some((k, sum)) if *k == span.key => sum.add(&v),
                    _ => emit(acc.replace((span.key, v))),
                }
            }
            if span.last > sec {
                next.push(span);
            }
        }
        emit(acc);
        self.next = std::mem::replace(&mut self.active, next);
        self.released_below = self.released_below.max(sec + 1);
        self.order = order;
        fresh.clear();
        // The spare vectors together hold room for at most the cap.
        if self.spare.len() < SPARE && fresh.capacity() <= self.max_entries / SPARE {
            self.spare.push(fresh);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> Key {
        Key {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            proto: 6,
            sport: 40000,
            dport: 443,
        }
    }

    fn vol(bytes: u64, packets: u64) -> Volume {
        Volume {
            bytes,
            packets,
            samples: 1,
            rate: 1,
        }
    }

    #[test]
    fn span_is_prorated_and_exact() {
        let mut b = Bins::new(1000, 3600);
        // 10.5 s .. 20.5 s: 10 s, 1000 bytes; the half seconds at both ends get 50 each.
        b.add_span(key(), 10_500_000_000, 20_500_000_000, vol(1000, 10));
        let mut out = Vec::new();
        b.release_all(&mut out);
        let secs: Vec<(i64, u64)> = out.iter().map(|b| (b.second, b.volume.bytes)).collect();
        assert_eq!(secs.first(), Some(&(10, 50)));
        assert_eq!(secs.last(), Some(&(20, 50)));
        assert_eq!(secs.len(), 11);
        assert!(secs[1..10].iter().all(|&(_, b)| b == 100));
        assert_eq!(out.iter().map(|b| b.volume.bytes).sum::<u64>(), 1000);
        assert_eq!(out.iter().map(|b| b.volume.packets).sum::<u64>(), 10);
    }

    #[test]
    fn instant_record_goes_to_one_bin_and_reversed_span_is_ordered() {
        let mut b = Bins::new(1000, 3600);
        b.add_span(key(), 5_000_000_000, 5_000_000_000, vol(7, 1));
        b.add_span(key(), 7_900_000_000, 6_100_000_000, vol(9, 3));
        let mut out = Vec::new();
        b.release_all(&mut out);
        assert_eq!(out[0].second, 5);
        assert_eq!(out[0].volume.bytes, 7);
        assert_eq!(out.iter().map(|b| b.volume.bytes).sum::<u64>(), 16);
        assert_eq!(out.last().unwrap().second, 7);
    }

    #[test]
    fn watermark_holds_and_late_bins_are_counted() {
        let mut b = Bins::new(1000, 3600);
        b.add(3, key(), vol(1, 1));
        b.add(8, key(), vol(1, 1));
        let mut out = Vec::new();
        b.release(5, &mut out);
        assert_eq!(out.len(), 1);
        b.add(2, key(), vol(1, 1)); // second 2 was released: goes to 4, counted
        assert_eq!(b.stats().late, 1);
        // Second 4 was the oldest held: second 2 came 2 s behind it.
        assert_eq!(b.stats().late_behind_s, 2);
        out.clear();
        b.release_all(&mut out);
        assert_eq!(out.iter().map(|b| b.second).collect::<Vec<_>>(), vec![4, 8]);
    }

    /// A second's bins come by connection: both directions of one, then the next between
    /// the same addresses, whichever address is lower and whatever the arrival order.
    #[test]
    fn both_directions_of_a_connection_come_together() {
        let rev = |k: Key| Key {
            src: k.dst,
            dst: k.src,
            sport: k.dport,
            dport: k.sport,
            ..k
        };
        let a = key();
        let b = Key { sport: 40001, ..a };
        // A subscriber above its endpoint in address order.
        let hi = Key {
            src: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            ..a
        };
        let mut bins = Bins::new(1 << 10, 60);
        for k in [rev(b), hi, a, rev(hi), b, rev(a)] {
            bins.add(5, k, vol(100, 1));
        }
        let mut out = Vec::new();
        bins.release_all(&mut out);
        let got: Vec<Key> = out.iter().map(|x| x.key).collect();
        assert_eq!(got, vec![a, rev(a), b, rev(b), rev(hi), hi]);
    }

    #[test]
    fn cap_forces_oldest_out() {
        let mut b = Bins::new(2, 3600);
        for s in 0..5 {
            b.add(s, key(), vol(1, 1));
        }
        let mut out = Vec::new();
        b.release(i64::MIN, &mut out);
        assert_eq!(b.len(), 2);
        assert_eq!(b.stats().forced, 3);
        assert_eq!(out.len(), 3);
    }

    fn any_key() -> impl proptest::strategy::Strategy<Value = Key> {
        use proptest::prelude::*;
        let addr = prop_oneof![
            // Few values, so that keys repeat and merge.
            (0u32..4).prop_map(|a| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + a))),
            any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
            (0u128..3).prop_map(|a| IpAddr::V6((0x2001_0db8_u128 << 96 | a).into())),
            any::<u128>().prop_map(|a| IpAddr::V6(a.into())),
        ];
        (addr.clone(), addr, 0u8..3, 0u16..3, any::<u16>()).prop_map(
            |(src, dst, proto, sport, dport)| Key {
                src,
                dst,
                proto,
                sport,
                dport,
            },
        )
    }

    proptest::proptest! {
        /// The integer form orders as the key does and gives the key back.
        #[test]
        fn sort_key_orders_as_the_key_and_round_trips(a in any_key(), b in any_key()) {
            proptest::prop_assert_eq!(SortKey::of(&a).key(), a);
            proptest::prop_assert_eq!(SortKey::of(&a).cmp(&SortKey::of(&b)), a.cmp(&b));
        }

        /// The rank is a prefix of the order: keys in order have ranks in order.
        #[test]
        fn rank_orders_as_the_key(a in any_key(), b in any_key()) {
            let (x, y) = (SortKey::of(&a), SortKey::of(&b));
            if x <= y {
                proptest::prop_assert!(x.rank() <= y.rank(), "{a:?} {b:?}");
            } else {
                proptest::prop_assert!(x.rank() >= y.rank(), "{a:?} {b:?}");
            }
        }

        /// Whatever the arrival order, released bins are those of a map by (second, key):
        /// sorted, merged, nothing lost.
        #[test]
        fn released_bins_equal_a_sorted_map(
            adds in proptest::collection::vec((0i64..4, any_key(), 0u64..1000, 1u32..5), 0..300),
        ) {
            let mut b = Bins::new(1 << 20, 3600);
            let mut model: BTreeMap<(i64, Key), Volume> = BTreeMap::new();
            for &(sec, key, bytes, rate) in &adds {
                let v = Volume { bytes, packets: 1, samples: 1, rate };
                b.add(sec, key, v);
                model.entry((sec, key)).or_default().add(&v);
            }
            let mut out = Vec::new();
            b.release_all(&mut out);
            let got: Vec<((i64, Key), Volume)> =
                out.iter().map(|x| ((x.second, x.key), x.volume)).collect();
            let want: Vec<((i64, Key), Volume)> = model.into_iter().collect();
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(b.len(), 0);
        }
    }

    /// Each span cut into its seconds' cumulative shares up front and added up by (second,
    /// key): the bins' output, computed the plain way.
    fn per_second_model(
        spans: &[(Key, i64, i64, u64, u64, u32)],
        max_span_s: i64,
    ) -> BTreeMap<(i64, Key), Volume> {
        let mut m: BTreeMap<(i64, Key), Volume> = BTreeMap::new();
        for &(key, a, b, bytes, packets, rate) in spans {
            let (mut start, end) = (a.min(b), a.max(b));
            start = start.max(end - max_span_s * NS_PER_SEC);
            let (first, last) = (start.div_euclid(NS_PER_SEC), end.div_euclid(NS_PER_SEC));
            let cum = |total: u64, upto: i64| -> u64 {
                if end == start {
                    return total;
                }
                let num = u128::from(total) * u128::from((upto - start) as u64);
                (num / u128::from((end - start) as u64)) as u64
            };
            let (mut gb, mut gp) = (0, 0);
            for sec in first..=last {
                let upto = if sec == last {
                    end
                } else {
                    (sec + 1) * NS_PER_SEC
                };
                let (cb, cp) = (cum(bytes, upto), cum(packets, upto));
                let part = Volume {
                    bytes: cb - gb,
                    packets: cp - gp,
                    samples: 1,
                    rate,
                };
                (gb, gp) = (cb, cp);
                if part.bytes > 0 || part.packets > 0 {
                    m.entry((sec, key)).or_default().add(&part);
                }
            }
        }
        m
    }

    fn any_span() -> impl proptest::strategy::Strategy<Value = (Key, i64, i64, u64, u64, u32)> {
        use proptest::prelude::*;
        let ns = 0i64..40 * NS_PER_SEC;
        let big = prop_oneof![0u64..5, 0u64..100_000, (u64::MAX / 4)..u64::MAX];
        (any_key(), ns.clone(), ns, big.clone(), big, 1u32..5)
    }

    proptest::proptest! {
        /// Spans held as spans give exactly the bins of cutting every record into seconds up
        /// front: same seconds, keys, volumes, samples and rates, in (second, key) order.
        #[test]
        fn spans_give_the_per_second_shares(
            spans in proptest::collection::vec(any_span(), 0..120),
            max_span in 1i64..60,
        ) {
            let mut b = Bins::new(1 << 20, max_span as u32);
            for &(key, a, e, bytes, packets, rate) in &spans {
                b.add_span(key, a, e, Volume { bytes, packets, samples: 1, rate });
            }
            let mut out = Vec::new();
            b.release_all(&mut out);
            let got: Vec<((i64, Key), Volume)> =
                out.iter().map(|x| ((x.second, x.key), x.volume)).collect();
            let want: Vec<((i64, Key), Volume)> =
                per_second_model(&spans, max_span).into_iter().collect();
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(b.len(), 0);
        }

        /// With releases between the records (late ones among them), and a small cap: bins
        /// come in time order, in key order within a second, one per (second, key); nothing
        /// is lost or made up; nothing is held at the end.
        #[test]
        fn interleaved_releases_keep_order_and_totals(
            ops in proptest::collection::vec(
                (any_span(), proptest::option::of(0i64..45)), 0..120),
            cap in 1usize..400,
        ) {
            let mut b = Bins::new(cap, 30);
            let mut out = Vec::new();
            let (mut bytes, mut packets) = (0u128, 0u128);
            for &((key, a, e, by, pk, rate), release) in &ops {
                b.add_span(key, a, e, Volume { bytes: by, packets: pk, samples: 1, rate });
                bytes += u128::from(by);
                packets += u128::from(pk);
                if let Some(w) = release {
                    b.release(w, &mut out);
                }
            }
            b.release_all(&mut out);
            proptest::prop_assert_eq!(b.len(), 0);
            for w in out.windows(2) {
                proptest::prop_assert!(
                    (w[0].second, w[0].key) < (w[1].second, w[1].key),
                    "{:?} then {:?}", w[0], w[1]
                );
            }
            let sum = |f: fn(&Bin) -> u64| out.iter().map(|x| u128::from(f(x))).sum::<u128>();
            proptest::prop_assert_eq!(sum(|x| x.volume.bytes), bytes);
            proptest::prop_assert_eq!(sum(|x| x.volume.packets), packets);
        }
    }

    #[test]
    fn a_late_span_gives_its_released_seconds_to_the_next_one_each_counted() {
        let mut b = Bins::new(1000, 3600);
        b.add(5, key(), vol(1, 1));
        let mut out = Vec::new();
        b.release(6, &mut out);
        assert_eq!(out.len(), 1);
        // 2.0 s .. 10.0 s, 800 bytes: seconds 2-5 were released (4 x 100, counted late) and go
        // to second 6 with its own 100; 7-9 get 100 each.
        b.add_span(key(), 2 * NS_PER_SEC, 10 * NS_PER_SEC, vol(800, 8));
        assert_eq!(b.stats().late, 4);
        // Its first second, 2, is 4 s behind second 6.
        assert_eq!(b.stats().late_behind_s, 4);
        out.clear();
        b.release_all(&mut out);
        let got: Vec<(i64, u64, u32)> = out
            .iter()
            .map(|x| (x.second, x.volume.bytes, x.volume.samples))
            .collect();
        assert_eq!(got, [(6, 500, 5), (7, 100, 1), (8, 100, 1), (9, 100, 1)]);
    }

    #[test]
    fn long_spans_are_clamped() {
        let mut b = Bins::new(100_000, 60);
        b.add_span(key(), 0, 3_600 * NS_PER_SEC, vol(6_000, 60));
        assert_eq!(b.stats().clamped_spans, 1);
        let mut out = Vec::new();
        b.release_all(&mut out);
        assert_eq!(out.first().unwrap().second, 3_540);
        assert_eq!(out.iter().map(|b| b.volume.bytes).sum::<u64>(), 6_000);
    }
}
