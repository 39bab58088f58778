//! The step every packet source shares: a captured frame decoded into the engine's input (or
//! counted as not IP, or as undecodable by reason), and decoded packets gathered into batches
//! for the engine thread.
//!
//! Files (`pipeline.rs`) and live interfaces (the daemon's capture threads) run the same
//! [`FrameDecoder`] and [`Batcher`]; only the loops around them differ: a file read has a
//! time window, a filter and progress, an interface has reopening, draining at shutdown and
//! kernel statistics. Nothing here allocates per packet: the decoder reuses one
//! [`PacketMeta`], and a batch's buffer comes back for reuse when the engine side returns it.

use std::sync::mpsc::Receiver;

use burstwatch_capture::Packet;
use burstwatch_wire::{decode, DecodeErrorCounts, Decoded, PacketMeta};

/// Decoded packets handed to the engine thread: capture time (ns) and metadata, in order.
pub type Batch = Vec<(i64, PacketMeta)>;

/// Packets per batch when reading files: large, for throughput (the reader never waits for
/// packets).
pub const FILE_BATCH: usize = 1024;
/// Packets per batch on a live interface: smaller, so that a slow link's packets reach the
/// engine soon (a partial batch is also handed over as soon as the interface goes quiet).
pub const LIVE_BATCH: usize = 256;

/// Frames that did not become engine input, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Undecoded {
    /// Frames without IP (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Undecodable frames by reason.
    pub errors: DecodeErrorCounts,
}

impl Undecoded {
    /// Add another set of counters to these.
    pub fn add(&mut self, other: &Self) {
        self.not_ip += other.not_ip;
        self.errors.add(&other.errors);
    }
}

/// Decodes frames into one reused [`PacketMeta`].
#[derive(Debug, Default)]
pub struct FrameDecoder {
    meta: PacketMeta,
}

impl FrameDecoder {
    /// Decode `pkt`: its metadata if it is an IP packet, else `None` with the cause counted in
    /// `undecoded`.
    #[inline]
    pub fn decode(&mut self, pkt: &Packet<'_>, undecoded: &mut Undecoded) -> Option<&PacketMeta> {
        match decode(pkt.link_type, pkt.data, &mut self.meta) {
            Ok(Decoded::Ip) => Some(&self.meta),
            Ok(Decoded::NotIp) => {
                undecoded.not_ip += 1;
                None
            }
            Err(e) => {
                undecoded.errors.count(&e);
                None
            }
        }
    }
}

/// Gathers decoded packets into batches of a fixed size.
#[derive(Debug)]
pub struct Batcher {
    batch: Batch,
    size: usize,
    /// Buffers the engine side gives back, emptied, for reuse.
    spare: Option<Receiver<Batch>>,
}

impl Batcher {
    /// Batches of `size` packets (at least 1); with `spare`, new batches reuse the buffers that
    /// come back on it.
    pub fn new(size: usize, spare: Option<Receiver<Batch>>) -> Self {
        let size = size.max(1);
        Batcher {
            batch: Vec::with_capacity(size),
            size,
            spare,
        }
    }

    /// Add one packet; returns the batch when it is full.
    #[inline]
    pub fn push(&mut self, ts_ns: i64, meta: &PacketMeta) -> Option<Batch> {
        self.batch.push((ts_ns, meta.clone()));
        if self.batch.len() >= self.size {
            self.take()
        } else {
            None
        }
    }

    /// The packets gathered so far, if any (a partial batch: end of input, a quiet link).
    pub fn take(&mut self) -> Option<Batch> {
        if self.batch.is_empty() {
            return None;
        }
        let next = self
            .spare
            .as_ref()
            .and_then(|rx| rx.try_recv().ok())
            .unwrap_or_else(|| Vec::with_capacity(self.size));
        Some(std::mem::replace(&mut self.batch, next))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use burstwatch_wire::LinkType;

    fn frame(data: &[u8]) -> Packet<'_> {
        Packet {
            ts_ns: 1,
            link_type: LinkType::ETHERNET,
            data,
            wire_len: data.len() as u32,
            interface: 0,
        }
    }

    /// An Ethernet frame with a minimal IPv4/UDP packet from 10.0.0.1 to 192.0.2.1.
    fn udp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[
            0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 192, 0, 2, 1,
        ]);
        f.extend_from_slice(&[0x30, 0x39, 0x01, 0xbb, 0, 8, 0, 0]);
        f
    }

    #[test]
    fn ip_frames_decode_and_the_rest_is_counted_by_cause() {
        let mut d = FrameDecoder::default();
        let mut u = Undecoded::default();
        let ip = udp_frame();
        let meta = d.decode(&frame(&ip), &mut u).unwrap();
        assert_eq!(meta.dport, 443);
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        assert!(d.decode(&frame(&arp), &mut u).is_none());
        assert!(d.decode(&frame(&ip[..20]), &mut u).is_none());
        assert_eq!(u.not_ip, 1);
        assert_eq!(u.errors.total(), 1);
        let mut sum = Undecoded::default();
        sum.add(&u);
        sum.add(&u);
        assert_eq!((sum.not_ip, sum.errors.total()), (2, 2));
    }

    #[test]
    fn batches_fill_to_their_size_and_reuse_returned_buffers() {
        let (back_tx, back_rx) = std::sync::mpsc::channel();
        let mut b = Batcher::new(3, Some(back_rx));
        let meta = PacketMeta::default();
        assert!(b.push(1, &meta).is_none());
        assert!(b.push(2, &meta).is_none());
        let full = b.push(3, &meta).unwrap();
        assert_eq!(full.iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(b.take().is_none(), "nothing gathered since");
        let mut returned = full;
        returned.clear();
        let ptr = returned.as_ptr();
        back_tx.send(returned).unwrap();
        b.push(4, &meta);
        // The next batch's buffer is the returned one.
        let partial = b.take().unwrap();
        assert_eq!(partial.len(), 1);
        assert!(b.push(5, &meta).is_none());
        let again = b.take().unwrap();
        assert_eq!(again.as_ptr(), ptr);
    }
}
