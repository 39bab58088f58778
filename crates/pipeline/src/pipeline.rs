//! Reading and decoding, on the calling thread or on a thread of their own.
//!
//! The engine needs one ordered stream of decoded packets. With `threads >= 2` the input is
//! read, filtered and decoded on a second thread and handed over in batches of
//! [`FILE_BATCH`] packets through a bounded channel; the batches' buffers go back to the
//! reader for reuse, so after warm-up nothing is allocated per packet. The engine sees exactly
//! the same sequence either way, so the output does not depend on the thread count. Decoding
//! and batching are the steps of `decode.rs`, which the daemon's live capture runs too.

use std::sync::mpsc;

use burstwatch_capture::{Archive, BpfFilter, Packet};
use burstwatch_wire::PacketMeta;

use crate::decode::{Batch, Batcher, FrameDecoder, Undecoded, FILE_BATCH};
use crate::progress::Progress;
use crate::select::Selection;
use crate::summary::Summary;

/// Batches in flight between the two threads (bounds the memory of the hand-over).
const IN_FLIGHT: usize = 8;

/// What the reader counts; merged into the run's [`Summary`] at the end.
#[derive(Debug, Default)]
pub struct ReadCounts {
    /// Frames read.
    pub frames: u64,
    /// Captured bytes of those frames.
    pub captured_bytes: u64,
    /// Frames dropped by the filter or the selection (`--since`, `--host`, ...).
    pub filtered: u64,
    /// Frames that are not IP or could not be decoded.
    pub undecoded: Undecoded,
    /// Input faults (each already reported on stderr).
    pub input_errors: u64,
    /// Earliest and latest capture time.
    pub span: Option<(i64, i64)>,
}

impl ReadCounts {
    /// Add these counts to a summary.
    pub fn merge_into(&self, sum: &mut Summary) {
        sum.frames += self.frames;
        sum.captured_bytes += self.captured_bytes;
        sum.filtered += self.filtered;
        sum.not_ip += self.undecoded.not_ip;
        sum.input_errors += self.input_errors;
        sum.decode_errors.add(&self.undecoded.errors);
        if let Some((first, last)) = self.span {
            sum.see_time(first);
            sum.see_time(last);
        }
    }
}

/// Read every packet of `archive` (through `filter` and `selection`), decode it, and call
/// `on_ip` with each selected IP packet in input order. Returns the reader's counts.
pub fn run(
    archive: &mut Archive,
    filter: Option<&mut BpfFilter>,
    selection: &Selection,
    progress: &mut Progress,
    threads: usize,
    mut on_ip: impl FnMut(i64, &PacketMeta),
) -> ReadCounts {
    if threads < 2 {
        return read(archive, filter, selection, progress, |ts, meta| {
            on_ip(ts, meta)
        });
    }
    let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(IN_FLIGHT);
    let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut batcher = Batcher::new(FILE_BATCH, Some(empty_rx));
            let counts = read(archive, filter, selection, progress, |ts, meta| {
                if let Some(full) = batcher.push(ts, meta) {
                    // The engine side only hangs up when it is gone; nothing left to do then.
                    let _ = full_tx.send(full);
                }
            });
            if let Some(rest) = batcher.take() {
                let _ = full_tx.send(rest);
            }
            counts
        });
        for mut batch in full_rx.iter() {
            for (ts, meta) in &batch {
                on_ip(*ts, meta);
            }
            batch.clear();
            let _ = empty_tx.send(batch);
        }
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The single-threaded reader loop.
fn read(
    archive: &mut Archive,
    filter: Option<&mut BpfFilter>,
    selection: &Selection,
    progress: &mut Progress,
    mut on_ip: impl FnMut(i64, &PacketMeta),
) -> ReadCounts {
    let mut decoder = FrameDecoder::default();
    let by_address = selection.has_addresses();
    frames(archive, filter, selection, progress, |pkt, c| match decoder
        .decode(pkt, &mut c.undecoded)
    {
        Some(meta) if by_address && !selection.addrs_ok(meta.src, meta.dst) => {
            c.filtered += 1;
        }
        Some(meta) => on_ip(pkt.ts_ns, meta),
        None => {}
    })
}

/// Every frame of `archive` in the selected time range that passes `filter`, handed to
/// `on_frame` with the counts (frames, bytes, input errors, filtered, span) kept here; an
/// unreadable part of a file is reported and counted, and reading goes on.
pub fn frames(
    archive: &mut Archive,
    mut filter: Option<&mut BpfFilter>,
    selection: &Selection,
    progress: &mut Progress,
    mut on_frame: impl FnMut(&Packet<'_>, &mut ReadCounts),
) -> ReadCounts {
    let mut c = ReadCounts::default();
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    loop {
        progress.packet(|| archive.bytes_consumed());
        let Some(event) = archive.next_event() else {
            break;
        };
        let pkt = match event {
            Ok(pkt) => pkt,
            Err(err) => {
                eprintln!("burstwatch: error: {err}");
                c.input_errors += 1;
                continue;
            }
        };
        c.frames += 1;
        c.captured_bytes += pkt.data.len() as u64;
        first = first.min(pkt.ts_ns);
        last = last.max(pkt.ts_ns);
        if !selection.time_ok(pkt.ts_ns) {
            c.filtered += 1;
            continue;
        }
        if let Some(f) = filter.as_deref_mut() {
            if !f.matches(&pkt) {
                c.filtered += 1;
                continue;
            }
        }
        on_frame(&pkt, &mut c);
    }
    if first <= last {
        c.span = Some((first, last));
    }
    c
}
