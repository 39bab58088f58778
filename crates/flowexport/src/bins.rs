//! One-second bins: flow records pro-rated over their own start–end span, sampled packets at
//! their arrival second, held until the watermark passes and then released in time order.
//!
//! A record's bytes and packets are spread over the seconds its span covers in proportion to
//! the overlap (as pmacct does), with cumulative integer shares so that the bins add up to the
//! record exactly. Nothing is dumped at the export instant.
//!
//! A second's entries are appended as they come (no hashing per record and second) and sorted
//! and merged by key when the second is released: the output order is the key order, never an
//! arrival or hash order.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::NS_PER_SEC;

/// A directional 5-tuple: what one bin entry is kept per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// Seconds released before the watermark because the held entries reached the cap.
    pub forced: u64,
    /// Records whose span was longer than the cap: spread over its last `max_span` seconds.
    pub clamped_spans: u64,
}

/// A key as plain integers, ordered as [`Key`]'s derived order (an IPv4 address before any
/// IPv6 one, then by octets; then protocol and ports): comparing two is a few integer
/// comparisons instead of matching two address enums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SortKey {
    src_v6: bool,
    src: u128,
    dst_v6: bool,
    dst: u128,
    /// Protocol, source port, destination port.
    rest: u64,
}

fn addr_bits(a: IpAddr) -> (bool, u128) {
    match a {
        IpAddr::V4(v) => (false, u128::from(u32::from(v))),
        IpAddr::V6(v) => (true, u128::from(v)),
    }
}

impl SortKey {
    fn key(&self) -> Key {
        let addr = |v6: bool, bits: u128| {
            if v6 {
                IpAddr::V6(bits.into())
            } else {
                // Only IPv4 addresses' 32 bits were stored.
                IpAddr::V4((bits as u32).into())
            }
        };
        Key {
            src: addr(self.src_v6, self.src),
            dst: addr(self.dst_v6, self.dst),
            proto: (self.rest >> 32) as u8,
            sport: (self.rest >> 16) as u16,
            dport: self.rest as u16,
        }
    }

    fn of(k: &Key) -> Self {
        let (fs, src) = addr_bits(k.src);
        let (fd, dst) = addr_bits(k.dst);
        Self {
            src_v6: fs,
            src,
            dst_v6: fd,
            dst,
            rest: u64::from(k.proto) << 32 | u64::from(k.sport) << 16 | u64::from(k.dport),
        }
    }
}

/// One entry of a held second.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: SortKey,
    volume: Volume,
}

/// Emptied per-second vectors kept for reuse.
const SPARE: usize = 4;

/// The bins held, by second, with a cap on the entries held.
#[derive(Debug)]
pub struct Bins {
    /// Per second, its entries in arrival order (consecutive entries of one key merged).
    held: BTreeMap<i64, Vec<Entry>>,
    /// Emptied vectors of released seconds, kept for the next ones (at most [`SPARE`]).
    spare: Vec<Vec<Entry>>,
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
            held: BTreeMap::new(),
            spare: Vec::new(),
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

    /// Entries held now.
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
        let span = (end - start).unsigned_abs();
        let share = |total: u64, upto: i64| -> u64 {
            // Cumulative share of `total` up to `upto` (start..=end): exact at both ends.
            let part = (upto - start).unsigned_abs();
            match total.checked_mul(part) {
                Some(num) => num / span,
                None => {
                    let num = u128::from(total) * u128::from(part);
                    u64::try_from(num / u128::from(span)).unwrap_or(total)
                }
            }
        };
        let (mut done_b, mut done_p) = (0u64, 0u64);
        for sec in first..=last {
            let upto = if sec == last {
                end
            } else {
                (sec + 1) * NS_PER_SEC
            };
            let (b, p) = (share(vol.bytes, upto), share(vol.packets, upto));
            let part = Volume {
                bytes: b - done_b,
                packets: p - done_p,
                samples: vol.samples,
                rate: vol.rate,
            };
            (done_b, done_p) = (b, p);
            if part.bytes > 0 || part.packets > 0 {
                self.add(sec, key, part);
            }
        }
    }

    /// Add `vol` to one second.
    pub fn add(&mut self, second: i64, key: Key, vol: Volume) {
        let mut second = second;
        if second < self.released_below {
            self.stats.late += 1;
            second = self.released_below;
        }
        let spare = &mut self.spare;
        let held = self
            .held
            .entry(second)
            .or_insert_with(|| spare.pop().unwrap_or_default());
        let key = SortKey::of(&key);
        match held.last_mut() {
            // sFlow samples and the pieces of one flow often come one after another.
            Some(last) if last.key == key => last.volume.add(&vol),
            _ => {
                held.push(Entry { key, volume: vol });
                self.entries += 1;
            }
        }
    }

    /// Release, in `out`, every second below `watermark_s` and, while more than the cap is
    /// held, the oldest seconds; entries of one second are sorted by key so the output never
    /// depends on hash order.
    pub fn release(&mut self, watermark_s: i64, out: &mut Vec<Bin>) {
        while let Some((&sec, _)) = self.held.first_key_value() {
            let due = sec < watermark_s;
            let over = self.entries > self.max_entries;
            if !due && !over {
                break;
            }
            if !due {
                self.stats.forced += 1;
            }
            self.pop_oldest(out);
        }
    }

    /// Release everything (end of input).
    pub fn release_all(&mut self, out: &mut Vec<Bin>) {
        while !self.held.is_empty() {
            self.pop_oldest(out);
        }
    }

    fn pop_oldest(&mut self, out: &mut Vec<Bin>) {
        let Some((sec, mut entries)) = self.held.pop_first() else {
            return;
        };
        self.entries -= entries.len();
        self.released_below = self.released_below.max(sec + 1);
        entries.sort_unstable_by_key(|e| e.key);
        let bin = |e: &Entry| Bin {
            second: sec,
            key: e.key.key(),
            volume: e.volume,
        };
        if let Some((&first, rest)) = entries.split_first() {
            let mut cur = first;
            for e in rest {
                if e.key == cur.key {
                    cur.volume.add(&e.volume);
                } else {
                    out.push(bin(&cur));
                    cur = *e;
                }
            }
            out.push(bin(&cur));
        }
        entries.clear();
        // The spare vectors together hold room for at most the cap.
        if self.spare.len() < SPARE && entries.capacity() <= self.max_entries / SPARE {
            self.spare.push(entries);
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
        out.clear();
        b.release_all(&mut out);
        assert_eq!(out.iter().map(|b| b.second).collect::<Vec<_>>(), vec![4, 8]);
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
