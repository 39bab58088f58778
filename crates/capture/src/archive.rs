//! [`Archive`]: many capture files (rotated archives) read as one stream in timestamp order.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use crate::file::PacketRef;
use crate::listing::{is_stream, InputList, STDIN};
use crate::{CaptureFile, FileIndex, Packet, ReadError};

/// Index points ([`FileIndex`]) shared out among an archive's files: at most 64 MiB of them.
const INDEX_POINTS_BUDGET: usize = 4 << 20;

/// Files kept open at once while merging; beyond it, the file whose next packet is due last
/// is parked (closed, its place and its next packet kept) and reopened when its turn comes.
const MAX_OPEN: usize = 64;

struct Entry {
    path: PathBuf,
    size: u64,
    first_ts: i64,
    /// Read once, front to back (standard input, a FIFO).
    stream: bool,
}

struct Slot {
    file: CaptureFile,
    cur: PacketRef,
    /// While the file is parked: the bytes of `cur` (its window is gone).
    saved: Option<Box<[u8]>>,
}

/// Many capture files merged into one stream in timestamp order.
///
/// At [`Archive::open`] every file is peeked (header and first packet, then closed) and the
/// files are ordered by their first timestamp. While reading, a file is opened only once the
/// merge reaches its first timestamp and closed at its end, so a rotated archive of hundreds
/// of files keeps one or two open at a time. Packets are merged by timestamp (k-way merge; ties
/// go to the file given first); a file whose own packets are out of order is merged as it is.
/// Files that overlap in time are all in the merge, but at most 64 are open at once: the one
/// whose next packet comes last is parked (closed, with that packet kept) and reopened where
/// it stopped when its turn comes. Streams (`-` for standard input, FIFOs) are read once,
/// front to back: they are opened at [`Archive::open`] and stay open.
pub struct Archive {
    entries: Vec<Entry>,
    /// Problems found while listing and peeking, delivered first.
    errors: VecDeque<ReadError>,
    /// Files not yet opened, by (first timestamp, input order).
    pending: VecDeque<usize>,
    /// Files in the merge (open or parked), indexed like `entries`.
    slots: Vec<Option<Slot>>,
    /// Files open right now (not parked): at most [`MAX_OPEN`] that can be parked.
    open: Vec<usize>,
    /// Heads of the open files: (timestamp, entry index).
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    /// File whose packet was handed out last: moved forward on the next call.
    last: Option<usize>,
    /// Per file, the earliest and latest timestamp handed out so far.
    spans: Vec<Option<(i64, i64)>>,
    /// Per file, where its seconds start (plain classic pcap files only).
    indexes: Vec<Option<FileIndex>>,
    bytes_total: u64,
    bytes_done: u64,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("files", &self.entries.len())
            .field("pending", &self.pending.len())
            .field("open", &self.heap.len())
            .finish()
    }
}

impl Archive {
    /// Opens files, directories and streams as one stream ([`InputList::list`] expands the
    /// directories). Never fails as a whole: a file that cannot be opened, or whose first
    /// packet cannot be read, becomes an error event at the start.
    pub fn open(inputs: &[PathBuf]) -> Archive {
        Archive::from_list(InputList::list(inputs))
    }

    /// Opens the files of a listing as one stream (its directory errors come first).
    pub fn from_list(list: InputList) -> Archive {
        let mut errors: VecDeque<ReadError> = list.errors.into_iter().collect();
        let paths = list.files;
        let mut entries = Vec::with_capacity(paths.len());
        let mut bytes_total = 0;
        let mut bytes_done = 0;
        let mut pending = Vec::new();
        let mut streams = Vec::new();
        for path in paths {
            let stream = is_stream(&path);
            let size = match stream {
                true => 0,
                false => fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            };
            bytes_total += size;
            let opened = if path.as_path() == Path::new(STDIN) {
                CaptureFile::stdin()
            } else {
                CaptureFile::open(&path)
            };
            let first = opened.and_then(|mut f| Ok(f.advance()?.map(|r| (r, f))));
            let idx = entries.len();
            match first {
                Ok(Some((r, file))) => {
                    if stream {
                        // A stream cannot be read twice: it stays open from here.
                        streams.push((
                            idx,
                            Slot {
                                file,
                                cur: r,
                                saved: None,
                            },
                        ));
                    }
                    pending.push((r.ts_ns, idx));
                    entries.push(Entry {
                        path,
                        size,
                        first_ts: r.ts_ns,
                        stream,
                    });
                }
                Ok(None) => {
                    bytes_done += size;
                    entries.push(Entry {
                        path,
                        size,
                        first_ts: 0,
                        stream,
                    });
                }
                Err(e) => {
                    bytes_done += size;
                    errors.push_back(e);
                    entries.push(Entry {
                        path,
                        size,
                        first_ts: 0,
                        stream,
                    });
                }
            }
        }
        pending.sort_unstable();
        let mut slots: Vec<Option<Slot>> = entries.iter().map(|_| None).collect();
        for (idx, slot) in streams {
            slots[idx] = Some(slot);
        }
        let spans = vec![None; entries.len()];
        let indexes = vec![None; entries.len()];
        Archive {
            entries,
            errors,
            pending: pending.into_iter().map(|(_, i)| i).collect(),
            slots,
            open: Vec::new(),
            heap: BinaryHeap::new(),
            last: None,
            spans,
            indexes,
            bytes_total,
            bytes_done,
        }
    }

    /// The next event: a packet in global timestamp order, or the error of one file (reported
    /// once; packets of that file before the fault were delivered). `None` at the end.
    /// The packet borrows the archive until the next call.
    pub fn next_event(&mut self) -> Option<Result<Packet<'_>, ReadError>> {
        if let Some(e) = self.errors.pop_front() {
            return Some(Err(e));
        }
        // The file handed out last, moved to its next packet. While it stays ahead of every
        // other open file (always, for a single file) it goes on without a trip through the heap.
        let mut lead = None;
        if let Some(i) = self.last.take() {
            match self.step(i) {
                Ok(next) => lead = next.map(|ts| (ts, i)),
                Err(e) => return Some(Err(e)),
            }
        }
        // Open every pending file whose first packet is due before the current head.
        while let Some(&j) = self.pending.front() {
            let head = lead.into_iter().chain(self.heap.peek().map(|h| h.0)).min();
            if head.is_some_and(|head| head < (self.entries[j].first_ts, j)) {
                break;
            }
            self.pending.pop_front();
            if let Err(e) = self.start(j) {
                if let Some(l) = lead {
                    self.heap.push(Reverse(l));
                }
                return Some(Err(e));
            }
        }
        let (ts, i) = match lead {
            // Another file is ahead now: it leaves the heap, the last one takes its place.
            Some(l) => match self.heap.peek_mut() {
                Some(mut top) if top.0 < l => std::mem::replace(&mut *top, Reverse(l)).0,
                _ => l,
            },
            None => self.heap.pop()?.0,
        };
        self.last = Some(i);
        if let Some(span) = self.spans.get_mut(i) {
            *span = Some(span.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
        }
        let slot = self.slots.get(i)?.as_ref()?;
        Some(Ok(match &slot.saved {
            // A parked file's packet was kept when it was parked.
            Some(data) => Packet {
                ts_ns: slot.cur.ts_ns,
                link_type: slot.cur.link_type,
                data,
                wire_len: slot.cur.wire_len,
                interface: slot.cur.interface,
            },
            None => slot.file.packet(&slot.cur),
        }))
    }

    /// Parks open files (the one whose packet is due last first) until one more can be
    /// opened within [`MAX_OPEN`]; `keep` is not parked. Streams are never parked.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, keep: usize) {
        while self.open.len() >= MAX_OPEN {
            let victim = self
                .open
                .iter()
                .enumerate()
                .filter(|&(_, &i)| i != keep)
                .filter_map(|(k, &i)| {
                    let slot = self.slots.get(i)?.as_ref()?;
                    slot.file.is_reopenable().then_some((slot.cur.ts_ns, i, k))
                })
                .max();
            let Some((_, i, k)) = victim else {
                return;
            };
            self.open.swap_remove(k);
            if let Some(slot) = self.slots.get_mut(i).and_then(Option::as_mut) {
                let data = slot.file.packet(&slot.cur).data;
                slot.saved = Some(data.into());
                slot.file.park();
            }
        }
    }

    /// Removes `i` from the open files.
    fn closed(&mut self, i: usize) {
        if let Some(k) = self.open.iter().position(|&o| o == i) {
            self.open.swap_remove(k);
        }
    }

    /// Opens file `j` (a stream is open already) and queues its first packet.
    #[cold]
    #[inline(never)]
    fn start(&mut self, j: usize) -> Result<(), ReadError> {
        if let Some(slot) = self.slots.get(j).and_then(Option::as_ref) {
            self.heap.push(Reverse((slot.cur.ts_ns, j)));
            self.open.push(j);
            return Ok(());
        }
        self.make_room(j);
        let mut file = match CaptureFile::open(&self.entries[j].path) {
            Ok(f) => f,
            Err(e) => {
                self.bytes_done += self.entries[j].size;
                return Err(e);
            }
        };
        let limit = INDEX_POINTS_BUDGET / self.entries.len().max(1);
        let mut index = file.is_indexable().then(|| FileIndex::with_limit(limit));
        let at = file.stream_offset();
        let first = file.advance();
        match first {
            Ok(Some(cur)) => {
                if let Some(ix) = index.as_mut() {
                    ix.note(cur.ts_ns, at);
                }
                self.indexes[j] = index;
                self.heap.push(Reverse((cur.ts_ns, j)));
                self.slots[j] = Some(Slot {
                    file,
                    cur,
                    saved: None,
                });
                self.open.push(j);
                Ok(())
            }
            Ok(None) => {
                if let Some(mut ix) = index {
                    ix.set_complete();
                    self.indexes[j] = Some(ix);
                }
                self.bytes_done += self.entries[j].size;
                Ok(())
            }
            Err(e) => {
                self.bytes_done += self.entries[j].size;
                Err(e)
            }
        }
    }

    /// Moves file `i` to its next packet (reopening it if it was parked) and returns that
    /// packet's timestamp (the caller queues it); closes the file at its end or fault.
    fn step(&mut self, i: usize) -> Result<Option<i64>, ReadError> {
        if self
            .slots
            .get(i)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.saved.is_some())
        {
            self.make_room(i);
            self.open.push(i);
        }
        let Some(slot) = self.slots.get_mut(i).and_then(Option::as_mut) else {
            return Ok(None);
        };
        slot.saved = None;
        let at = slot.file.stream_offset();
        let r = slot.file.advance();
        let index = self.indexes.get_mut(i).and_then(Option::as_mut);
        if let Ok(Some(cur)) = r {
            if let Some(ix) = index {
                ix.note(cur.ts_ns, at);
            }
            slot.cur = cur;
            return Ok(Some(cur.ts_ns));
        }
        if let (Ok(None), Some(ix)) = (&r, index) {
            ix.set_complete();
        }
        self.slots[i] = None;
        self.closed(i);
        self.bytes_done += self.entries[i].size;
        r.map(|_| None)
    }

    /// Number of capture files in the archive (after expanding directories).
    pub fn files(&self) -> usize {
        self.entries.len()
    }

    /// The files, in input order (after expanding directories).
    pub fn paths(&self) -> impl Iterator<Item = &Path> + '_ {
        self.entries.iter().map(|e| e.path.as_path())
    }

    /// Per file, in the order of [`Archive::paths`], the earliest and latest timestamp (ns) of
    /// the packets handed out so far; `None` for a file none came from. After a full read, a
    /// file whose span misses a time range holds no packet in it: a later pass over the same
    /// files may skip it.
    pub fn spans(&self) -> &[Option<(i64, i64)>] {
        &self.spans
    }

    /// Per file, in the order of [`Archive::paths`], where its seconds of packet time start:
    /// for plain classic pcap files that were opened, `None` for the others. After a full read,
    /// a later pass can read only the parts of a file that hold the seconds it wants
    /// ([`FileIndex::ranges`], [`CaptureFile::open_range`]).
    pub fn indexes(&self) -> &[Option<FileIndex>] {
        &self.indexes
    }

    /// Total size on disk of all files.
    pub fn bytes_total(&self) -> u64 {
        self.bytes_total
    }

    /// Bytes read so far: finished files count whole, open files by what they have read.
    pub fn bytes_consumed(&self) -> u64 {
        let open: u64 = self
            .slots
            .iter()
            .flatten()
            .map(|s| s.file.bytes_consumed())
            .sum();
        self.bytes_done + open
    }

    /// Number of files open right now (parked files not counted).
    pub fn open_files(&self) -> usize {
        self.open.len()
    }

    /// Whether any input is a stream (standard input, a FIFO), which can be read only once.
    pub fn has_streams(&self) -> bool {
        self.entries.iter().any(|e| e.stream)
    }
}
