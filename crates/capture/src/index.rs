//! [`FileIndex`]: where each second of packet time starts in a classic pcap file, noted while
//! the file is read, so that a later pass over the same file can read only the byte ranges
//! that hold the seconds it wants.

/// Most points kept per file: past it the index halves its resolution (every other point goes,
/// the step between points doubles), so a file of any length costs at most 16 KiB.
pub const MAX_POINTS: usize = 1024;

/// Fewest points per file however many files an archive has (see [`FileIndex::with_limit`]).
pub const MIN_POINTS: usize = 16;

const NS: i64 = 1_000_000_000;

/// Seconds of packet time and the byte offsets where they start, in one file.
///
/// Each point `(s, o)` says: the record at byte `o` is the first of the file whose timestamp
/// second is at least `s`, and every record before it has an earlier second. This holds only
/// while the seconds of the file's records never go backwards; a file where they do is
/// marked unordered and must be read whole. Points are only noted for records read one after
/// the other from the start; a file that was not read to its end (a fault, a stop) is not
/// [complete](FileIndex::is_complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileIndex {
    points: Vec<(i64, u64)>,
    /// Most points kept (a power of two).
    limit: usize,
    /// Least distance in seconds between two points.
    step: i64,
    /// Second of the latest record noted.
    last_sec: Option<i64>,
    /// `[lo, hi)` in ns: records here need no work (the latest record's second; everything
    /// once the file is known to be out of order).
    quiet: (i64, i64),
    ordered: bool,
    complete: bool,
}

impl Default for FileIndex {
    fn default() -> Self {
        FileIndex::new()
    }
}

impl FileIndex {
    /// An empty index, for a file about to be read from its first record.
    pub fn new() -> FileIndex {
        FileIndex::with_limit(MAX_POINTS)
    }

    /// An empty index keeping at most `limit` points, rounded down to a power of two within
    /// `MIN_POINTS..=MAX_POINTS` (an archive of many files gives each fewer, so that the
    /// indexes of all of them stay within a fixed budget).
    pub fn with_limit(limit: usize) -> FileIndex {
        let limit = limit.clamp(MIN_POINTS, MAX_POINTS);
        FileIndex {
            limit: 1 << limit.ilog2(),
            points: Vec::new(),
            step: 1,
            last_sec: None,
            quiet: (i64::MAX, i64::MIN),
            ordered: true,
            complete: false,
        }
    }

    /// Note the record at byte `offset` with timestamp `ts_ns` (records in file order). Two
    /// comparisons for every record but the first of each second.
    #[inline]
    pub fn note(&mut self, ts_ns: i64, offset: u64) {
        if ts_ns >= self.quiet.0 && ts_ns < self.quiet.1 {
            return;
        }
        self.new_second(ts_ns, offset);
    }

    #[inline(never)]
    fn new_second(&mut self, ts_ns: i64, offset: u64) {
        if !self.ordered {
            return;
        }
        let sec = ts_ns.div_euclid(NS);
        match self.last_sec {
            Some(last) if sec < last => {
                self.ordered = false;
                self.points = Vec::new();
                self.quiet = (i64::MIN, i64::MAX);
                return;
            }
            Some(last) if sec == last => return,
            _ => {}
        }
        self.last_sec = Some(sec);
        let lo = sec.saturating_mul(NS);
        self.quiet = (lo, lo.saturating_add(NS));
        let due = self
            .points
            .last()
            .is_none_or(|&(s, _)| sec >= s.saturating_add(self.step));
        if !due {
            return;
        }
        if self.points.len() >= self.limit {
            // Keep points 0, 2, 4, ...: each still is the first record of its second.
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.step = self.step.saturating_mul(2);
            if self
                .points
                .last()
                .is_some_and(|&(s, _)| sec < s.saturating_add(self.step))
            {
                return;
            }
        }
        self.points.push((sec, offset));
    }

    /// The file was read to its clean end.
    pub fn set_complete(&mut self) {
        self.complete = true;
    }

    /// Whether the file was read to its clean end with its seconds in order: only then are
    /// its [`FileIndex::ranges`] known.
    pub fn is_complete(&self) -> bool {
        self.complete && self.ordered
    }

    /// The points, `(second, byte offset)`.
    pub fn points(&self) -> &[(i64, u64)] {
        &self.points
    }

    /// The byte ranges `[start, end)` that hold every record whose second lies in one of
    /// `seconds` (sorted, disjoint, inclusive `(first, last)` ranges), merged and in file
    /// order; `end` is `u64::MAX` for "to the end of the file". Ranges longer than `max_len`
    /// are cut at points, so that workers can share them out. `None` when the index is not
    /// [complete](FileIndex::is_complete): then the file must be read whole.
    pub fn ranges(&self, seconds: &[(i64, i64)], max_len: u64) -> Option<Vec<(u64, u64)>> {
        let merged = self.merged_ranges(seconds)?;
        let mut out = Vec::with_capacity(merged.len());
        for (start, end) in merged {
            let mut from = start;
            let i = self.points.partition_point(|&(_, o)| o <= start);
            for &(_, o) in self.points.get(i..).unwrap_or_default() {
                if o >= end {
                    break;
                }
                if o - from >= max_len {
                    out.push((from, o));
                    from = o;
                }
            }
            out.push((from, end));
        }
        Some(out)
    }

    fn merged_ranges(&self, seconds: &[(i64, i64)]) -> Option<Vec<(u64, u64)>> {
        if !self.is_complete() {
            return None;
        }
        let mut out: Vec<(u64, u64)> = Vec::new();
        let (Some(&(first_sec, _)), Some(&(_, last_off))) =
            (self.points.first(), self.points.last())
        else {
            // No record at all.
            return Some(out);
        };
        let last_sec = self.last_sec.unwrap_or(first_sec);
        for &(a, b) in seconds {
            if b < first_sec || a > last_sec {
                continue;
            }
            // The last point at or before `a`: every earlier record has a second below `a`.
            let i = self.points.partition_point(|&(s, _)| s <= a);
            let start = match i {
                0 => self.points[0].1,
                i => self.points[i - 1].1,
            };
            // The first point after `b`: it and every later record have a second above `b`.
            let j = self.points.partition_point(|&(s, _)| s <= b);
            let end = self.points.get(j).map_or(u64::MAX, |&(_, o)| o);
            debug_assert!(start <= last_off || end == u64::MAX);
            match out.last_mut() {
                Some(prev) if start <= prev.1 => prev.1 = prev.1.max(end),
                _ => out.push((start, end)),
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    fn index(records: &[(i64, u64)]) -> FileIndex {
        let mut ix = FileIndex::new();
        for &(sec, off) in records {
            ix.note(sec * NS + 123, off);
        }
        ix.set_complete();
        ix
    }

    #[test]
    fn ranges_cover_the_wanted_seconds_and_only_whole_seconds_around_them() {
        // Records of seconds 10, 10, 11, 13, 13, 14 at offsets 24, 40, 60, 80, 100, 120.
        let ix = index(&[(10, 24), (10, 40), (11, 60), (13, 80), (13, 100), (14, 120)]);
        assert_eq!(ix.points(), &[(10, 24), (11, 60), (13, 80), (14, 120)]);
        assert_eq!(ix.ranges(&[(11, 11)], u64::MAX), Some(vec![(60, 80)]));
        assert_eq!(ix.ranges(&[(12, 13)], u64::MAX), Some(vec![(60, 120)]));
        assert_eq!(
            ix.ranges(&[(14, 99)], u64::MAX),
            Some(vec![(120, u64::MAX)])
        );
        assert_eq!(ix.ranges(&[(0, 9), (15, 20)], u64::MAX), Some(vec![]));
        // Touching ranges merge.
        assert_eq!(
            ix.ranges(&[(0, 10), (11, 11)], u64::MAX),
            Some(vec![(24, 80)])
        );
    }

    #[test]
    fn out_of_order_or_unfinished_files_are_read_whole() {
        let mut ix = index(&[(10, 24), (12, 40), (11, 60)]);
        assert_eq!(ix.ranges(&[(11, 11)], u64::MAX), None);
        ix = FileIndex::new();
        ix.note(10 * NS, 24);
        assert_eq!(
            ix.ranges(&[(10, 10)], u64::MAX),
            None,
            "not read to its end"
        );
    }

    #[test]
    fn long_files_thin_out_and_stay_exact() {
        // One record per second for 10,000 s, 100 bytes each: thinned to at most MAX_POINTS.
        let records: Vec<(i64, u64)> = (0..10_000).map(|s| (s, 24 + 100 * s as u64)).collect();
        let ix = index(&records);
        assert!(ix.points().len() <= MAX_POINTS);
        // A small limit thins out sooner and is as exact.
        let mut small = FileIndex::with_limit(20);
        for &(sec, off) in &records {
            small.note(sec * NS, off);
        }
        small.set_complete();
        assert!((MIN_POINTS / 2..=MIN_POINTS).contains(&small.points().len()));
        let (start, end) = small.ranges(&[(5_000, 5_010)], u64::MAX).unwrap()[0];
        assert!(start <= 24 + 100 * 5_000 && 24 + 100 * 5_010 < end);
        for &(a, b) in &[(0, 0), (5_000, 5_010), (9_990, 9_999), (1_234, 4_321)] {
            let ranges = ix.ranges(&[(a, b)], u64::MAX).unwrap();
            assert_eq!(ranges.len(), 1);
            let (start, end) = ranges[0];
            // Every record of the seconds lies inside; the range starts and ends on records.
            for &(s, o) in &records {
                if (a..=b).contains(&s) {
                    assert!(
                        start <= o && o < end,
                        "second {s} at {o} outside {start}..{end}"
                    );
                }
            }
            assert!((start - 24) % 100 == 0);
            assert!(end == u64::MAX || (end - 24) % 100 == 0);
        }
        // Cut into pieces of about 50 kB at points, covering the same bytes.
        let whole = ix.ranges(&[(1_000, 8_999)], u64::MAX).unwrap();
        let cut = ix.ranges(&[(1_000, 8_999)], 50_000).unwrap();
        assert!(cut.len() >= 10, "{cut:?}");
        assert_eq!(cut.first().unwrap().0, whole[0].0);
        assert_eq!(cut.last().unwrap().1, whole[0].1);
        assert!(cut.windows(2).all(|w| w[0].1 == w[1].0));
        assert!(cut.iter().all(|&(a, b)| b - a < 50_000 + 100 * 16));
    }
}
