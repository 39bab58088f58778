//! The report's second pass: the inputs read again to fill the alert timelines.
//!
//! It selects packets exactly as the first pass did (`pipeline::read`): the same files (the
//! first pass's [`burstwatch_capture::Archive`], without those whose packets all lay outside
//! every timeline window), the `--since`/`--until` window, the `--filter` expression and the
//! `--host`/`--endpoint` selectors, all on the same decoded addresses. Packets outside every
//! window are skipped before the filter and the decoder, so the pass costs little more than
//! reading the files.
//!
//! Of a plain pcap file whose packets the first pass found in time order, only the byte ranges
//! that hold the windows' seconds are read (the first pass noted where each second starts:
//! [`burstwatch_capture::FileIndex`]); other files (pcapng, gzip, out of order) are read whole.
//!
//! Timeline counts do not depend on packet order, so there is no merge by timestamp: each of
//! `threads` workers takes the next unread part (a byte range or a whole file), counts into its
//! own copy of the plan, and the copies are added up at the end.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use burstwatch_capture::{BpfFilter, CaptureFile};
use burstwatch_report::Timelines;
use burstwatch_wire::{decode, Decoded, PacketMeta};

use crate::progress::Progress;
use crate::select::Selection;

/// Byte ranges longer than this are cut (at the first pass's index points), so that the
/// workers share a large file evenly.
pub const PART_BYTES: u64 = 64 << 20;

/// Packets between two updates of the shared progress counters.
const PROGRESS_EVERY: u64 = 8_192;

/// One piece of work: a capture file, or a byte range of one.
#[derive(Debug, Clone)]
pub struct Part {
    /// The file.
    pub path: PathBuf,
    /// `[start, end)` of a plain pcap file (records only; `end` may be `u64::MAX`), or `None`
    /// for the whole file.
    pub range: Option<(u64, u64)>,
}

impl Part {
    /// Bytes to read, for progress.
    pub fn size(&self) -> u64 {
        let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        match self.range {
            Some((start, end)) => end.min(len).saturating_sub(start),
            None => len,
        }
    }

    fn open(&self) -> Result<CaptureFile, burstwatch_capture::ReadError> {
        match self.range {
            Some((start, end)) => CaptureFile::open_range(&self.path, start, end),
            None => CaptureFile::open(&self.path),
        }
    }
}

/// What the pass reads and keeps.
pub struct Pass<'a> {
    /// Files and parts of files to read.
    pub files: Vec<Part>,
    /// `--filter`, compiled again by each worker.
    pub filter: Option<&'a str>,
    /// `--since`/`--until`, `--host`/`--endpoint`.
    pub selection: &'a Selection,
    /// Workers (at least one).
    pub threads: usize,
}

/// Progress shared by the workers.
#[derive(Default)]
struct Shared {
    next_file: AtomicUsize,
    packets: AtomicU64,
    bytes: AtomicU64,
}

/// Count every selected packet of the files that falls into a window of `timelines`.
/// Read errors are skipped: the first pass reported them.
pub fn fill(
    timelines: &mut Timelines,
    pass: &Pass<'_>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let shared = Shared::default();
    let workers = pass.threads.clamp(1, pass.files.len().max(1));
    let plan: &Timelines = timelines;
    let filled = std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let done = done_tx.clone();
                let shared = &shared;
                scope.spawn(move || {
                    let r = worker(plan.clone(), pass, shared);
                    let _ = done.send(());
                    r
                })
            })
            .collect();
        drop(done_tx);
        // Show progress until every worker has hung up.
        while let Err(mpsc::RecvTimeoutError::Timeout) | Ok(()) =
            done_rx.recv_timeout(Duration::from_millis(200))
        {
            progress.set(
                shared.packets.load(Ordering::Relaxed),
                shared.bytes.load(Ordering::Relaxed),
            );
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<anyhow::Result<Vec<Timelines>>>()
    })?;
    progress.finish();
    let mut merged = filled.into_iter();
    if let Some(first) = merged.next() {
        *timelines = first;
        for t in merged {
            timelines.merge(&t);
        }
    }
    Ok(())
}

/// One worker: reads parts until none is left.
fn worker(mut timelines: Timelines, pass: &Pass<'_>, shared: &Shared) -> anyhow::Result<Timelines> {
    let mut filter = match pass.filter {
        Some(expr) => Some(BpfFilter::new(expr).with_context(|| format!("bad --filter '{expr}'"))?),
        None => None,
    };
    let selection = pass.selection;
    let by_address = selection.has_addresses();
    let mut meta = PacketMeta::default();
    while let Some(part) = pass
        .files
        .get(shared.next_file.fetch_add(1, Ordering::Relaxed))
    {
        let Ok(mut file) = part.open() else {
            continue;
        };
        let (mut packets, mut reported) = (0u64, 0u64);
        loop {
            if packets % PROGRESS_EVERY == 0 && packets > 0 {
                shared.packets.fetch_add(PROGRESS_EVERY, Ordering::Relaxed);
                let bytes = file.bytes_consumed();
                shared
                    .bytes
                    .fetch_add(bytes.saturating_sub(reported), Ordering::Relaxed);
                reported = bytes;
            }
            // A read error ends the file, as in the first pass.
            let Ok(Some(pkt)) = file.next_packet() else {
                break;
            };
            packets += 1;
            if !timelines.wants(pkt.ts_ns) || !selection.time_ok(pkt.ts_ns) {
                continue;
            }
            if let Some(f) = filter.as_mut() {
                if !f.matches(&pkt) {
                    continue;
                }
            }
            if let Ok(Decoded::Ip) = decode(pkt.link_type, pkt.data, &mut meta) {
                if !by_address || selection.addrs_ok(meta.src, meta.dst) {
                    timelines.add_packet(pkt.ts_ns, meta.src, meta.dst, meta.ip_len);
                }
            }
        }
        shared
            .packets
            .fetch_add(packets % PROGRESS_EVERY, Ordering::Relaxed);
        let bytes = file.bytes_consumed();
        shared
            .bytes
            .fetch_add(bytes.saturating_sub(reported), Ordering::Relaxed);
    }
    Ok(timelines)
}
