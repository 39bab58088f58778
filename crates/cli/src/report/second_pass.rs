//! The report's second pass: the inputs read again to fill the alert timelines.
//!
//! It selects packets exactly as the first pass did (`pipeline::read`): the same expanded
//! inputs (globs, directories), the `--since`/`--until` window, the `--filter` expression and
//! the `--host`/`--endpoint` selectors, all on the same decoded addresses. Packets outside
//! every timeline window are skipped before the filter and the decoder, so the pass costs
//! little more than reading the files.

use burstwatch_capture::{Archive, BpfFilter};
use burstwatch_report::Timelines;
use burstwatch_wire::{decode, Decoded, PacketMeta};

use crate::progress::Progress;
use crate::select::Selection;

/// Count every selected packet of `archive` that falls into a window of `timelines`.
/// Read errors are skipped: the first pass reported them.
pub fn fill(
    timelines: &mut Timelines,
    archive: &mut Archive,
    mut filter: Option<&mut BpfFilter>,
    selection: &Selection,
    progress: &mut Progress,
) {
    let mut meta = PacketMeta::default();
    let by_address = selection.has_addresses();
    loop {
        progress.packet(|| archive.bytes_consumed());
        let Some(event) = archive.next_event() else {
            break;
        };
        let Ok(pkt) = event else { continue };
        if !timelines.wants(pkt.ts_ns) || !selection.time_ok(pkt.ts_ns) {
            continue;
        }
        if let Some(f) = filter.as_deref_mut() {
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
    progress.finish();
}
