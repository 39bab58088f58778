//! The layout of a `TPACKET_V3` receive block, read from a byte slice.
//!
//! A block starts with a `tpacket_block_desc` (status, packet count, offset of the first
//! packet) and holds `num_pkts` packets, each a `tpacket3_hdr` followed at `tp_mac` by
//! `tp_snaplen` captured bytes, chained by `tp_next_offset`. Nothing here touches the ring: the
//! functions take the block as `&[u8]` and return validated byte ranges, so they are tested on
//! blocks built in memory and never trust an offset or a length from the header (a hostile or
//! buggy view ends the walk of that block, counted, instead of reading out of bounds).

use std::ops::Range;

/// `TP_STATUS_KERNEL`: the block belongs to the kernel.
pub(crate) const TP_STATUS_KERNEL: u32 = 0;
/// `TP_STATUS_USER`: the block was retired to user space.
pub(crate) const TP_STATUS_USER: u32 = 1;
/// `TP_STATUS_LOSING`: the kernel dropped packets since the last `PACKET_STATISTICS` read.
pub(crate) const TP_STATUS_LOSING: u32 = 1 << 2;
/// `TP_STATUS_VLAN_VALID`: `tp_vlan_tci` holds the 802.1Q tag the kernel took off the frame.
pub(crate) const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// `TP_STATUS_VLAN_TPID_VALID`: `tp_vlan_tpid` holds that tag's ethertype.
pub(crate) const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

/// Offset of `hdr.bh1.block_status` in `tpacket_block_desc`.
pub(crate) const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;
/// Size of `tpacket_block_desc` (with `tpacket_hdr_v1`).
pub(crate) const BLOCK_DESC_LEN: usize = 48;

const HDR_NEXT: usize = 0;
const HDR_SEC: usize = 4;
const HDR_NSEC: usize = 8;
const HDR_SNAPLEN: usize = 12;
const HDR_LEN: usize = 16;
const HDR_STATUS: usize = 20;
const HDR_MAC: usize = 24;
const HDR_VLAN_TCI: usize = 32;
const HDR_VLAN_TPID: usize = 36;
/// Size of `tpacket3_hdr`; the kernel's `sockaddr_ll` follows at this offset.
pub(crate) const FRAME_HDR_LEN: usize = 48;
/// Offset of `sll_pkttype` in `sockaddr_ll`.
const SLL_PKTTYPE: usize = 10;

/// `PACKET_OUTGOING`: a frame this host sent.
pub(crate) const PACKET_OUTGOING: u8 = 4;
/// Ethertype of an 802.1Q tag, used when the kernel gives no TPID.
const ETH_P_8021Q: u16 = 0x8100;

/// A block's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    /// Packets in the block.
    pub num_pkts: u32,
    /// Offset of the first packet's header from the block start.
    pub first: usize,
}

/// One packet of a block, its offsets checked against the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Captured bytes within the block (`tp_mac .. tp_mac + tp_snaplen` of this header).
    pub data: Range<usize>,
    /// On-wire length (`tp_len`).
    pub wire_len: u32,
    /// Kernel timestamp, ns since the epoch.
    pub ts_ns: i64,
    /// `tp_status` flags.
    pub status: u32,
    /// The 802.1Q tag the kernel took off the frame: (TPID, TCI).
    pub vlan: Option<(u16, u16)>,
    /// `sll_pkttype` of the `sockaddr_ll` after the header, if it lies within the block.
    pub pkttype: Option<u8>,
    /// Offset of the next packet's header (`None` for the block's last packet).
    pub next: Option<usize>,
}

/// Why a block or one of its packets could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadBlock {
    /// The block descriptor does not fit the block.
    ShortBlock,
    /// A packet header at this offset lies outside the block.
    HeaderOutside(usize),
    /// The captured bytes of the packet at this offset lie outside the block.
    DataOutside(usize),
    /// More packets were announced but the chain ends (or goes backwards) at this offset.
    BadNext(usize),
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    let bytes = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}

/// The descriptor of `block`.
pub(crate) fn block_header(block: &[u8]) -> Result<BlockHeader, BadBlock> {
    if block.len() < BLOCK_DESC_LEN {
        return Err(BadBlock::ShortBlock);
    }
    let num_pkts = u32_at(block, BLOCK_NUM_PKTS).ok_or(BadBlock::ShortBlock)?;
    let first = u32_at(block, BLOCK_FIRST_PKT).ok_or(BadBlock::ShortBlock)? as usize;
    Ok(BlockHeader { num_pkts, first })
}

/// The packet whose header starts at `off` in `block`; `more` says whether the block announces
/// packets after this one (then `tp_next_offset` must lead forward, inside the block).
pub(crate) fn frame_at(block: &[u8], off: usize, more: bool) -> Result<Frame, BadBlock> {
    let hdr = off
        .checked_add(FRAME_HDR_LEN)
        .and_then(|end| block.get(off..end))
        .ok_or(BadBlock::HeaderOutside(off))?;
    let field = |at| u32_at(hdr, at).ok_or(BadBlock::HeaderOutside(off));
    let next_rel = field(HDR_NEXT)? as usize;
    let sec = field(HDR_SEC)?;
    let nsec = field(HDR_NSEC)?;
    let snaplen = field(HDR_SNAPLEN)? as usize;
    let wire_len = field(HDR_LEN)?;
    let status = field(HDR_STATUS)?;
    let mac = u16_at(hdr, HDR_MAC).ok_or(BadBlock::HeaderOutside(off))? as usize;
    let tci = field(HDR_VLAN_TCI)?;
    let tpid = u16_at(hdr, HDR_VLAN_TPID).ok_or(BadBlock::HeaderOutside(off))?;

    // The captured bytes start after the header and end inside the block.
    let start = off
        .checked_add(mac)
        .filter(|_| mac >= FRAME_HDR_LEN)
        .ok_or(BadBlock::DataOutside(off))?;
    let end = start
        .checked_add(snaplen)
        .filter(|&e| e <= block.len())
        .ok_or(BadBlock::DataOutside(off))?;
    let next = if more {
        let n = off
            .checked_add(next_rel)
            .filter(|&n| next_rel >= FRAME_HDR_LEN && n < block.len())
            .ok_or(BadBlock::BadNext(off))?;
        Some(n)
    } else {
        None
    };
    let vlan = (status & TP_STATUS_VLAN_VALID != 0 || tci != 0).then(|| {
        let tpid = if tpid != 0 || status & TP_STATUS_VLAN_TPID_VALID != 0 {
            tpid
        } else {
            ETH_P_8021Q
        };
        (tpid, (tci & 0xffff) as u16)
    });
    let pkttype = block.get(off + FRAME_HDR_LEN + SLL_PKTTYPE).copied();
    Ok(Frame {
        data: start..end,
        wire_len,
        ts_ns: i64::from(sec) * 1_000_000_000 + i64::from(nsec),
        status,
        vlan,
        pkttype,
        next,
    })
}

/// `frame` with its 802.1Q tag put back after the two MAC addresses (as it was on the wire),
/// written to `out`. Frames too short to hold two addresses are copied unchanged.
pub(crate) fn restore_vlan(frame: &[u8], (tpid, tci): (u16, u16), out: &mut Vec<u8>) {
    out.clear();
    match frame.split_at_checked(12) {
        Some((macs, rest)) => {
            out.extend_from_slice(macs);
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&tci.to_be_bytes());
            out.extend_from_slice(rest);
        }
        None => out.extend_from_slice(frame),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    /// The offsets above are the kernel's (as the libc crate declares the structs).
    #[test]
    fn offsets_match_the_kernel_structs() {
        use std::mem::{offset_of, size_of};
        assert_eq!(size_of::<libc::tpacket3_hdr>(), FRAME_HDR_LEN);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_next_offset), HDR_NEXT);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_sec), HDR_SEC);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_nsec), HDR_NSEC);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_snaplen), HDR_SNAPLEN);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_len), HDR_LEN);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_status), HDR_STATUS);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_mac), HDR_MAC);
        let hv1 = offset_of!(libc::tpacket3_hdr, hv1);
        assert_eq!(
            hv1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci),
            HDR_VLAN_TCI
        );
        assert_eq!(
            hv1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid),
            HDR_VLAN_TPID
        );
        assert_eq!(size_of::<libc::tpacket_block_desc>(), BLOCK_DESC_LEN);
        let hdr = offset_of!(libc::tpacket_block_desc, hdr);
        assert_eq!(
            hdr + offset_of!(libc::tpacket_hdr_v1, block_status),
            BLOCK_STATUS
        );
        assert_eq!(
            hdr + offset_of!(libc::tpacket_hdr_v1, num_pkts),
            BLOCK_NUM_PKTS
        );
        assert_eq!(
            hdr + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt),
            BLOCK_FIRST_PKT
        );
        assert_eq!(offset_of!(libc::sockaddr_ll, sll_pkttype), SLL_PKTTYPE);
        assert_eq!(libc::TP_STATUS_USER, TP_STATUS_USER);
        assert_eq!(libc::TP_STATUS_LOSING, TP_STATUS_LOSING);
        assert_eq!(libc::TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_VALID);
        assert_eq!(libc::TP_STATUS_VLAN_TPID_VALID, TP_STATUS_VLAN_TPID_VALID);
        assert_eq!(libc::PACKET_OUTGOING, PACKET_OUTGOING);
    }

    /// One packet to put in a synthetic block.
    pub(crate) struct Pkt<'a> {
        pub bytes: &'a [u8],
        pub wire_len: u32,
        pub ts: (u32, u32),
        pub status: u32,
        pub vlan: (u32, u16),
    }

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    fn put16(b: &mut [u8], at: usize, v: u16) {
        b[at..at + 2].copy_from_slice(&v.to_ne_bytes());
    }

    /// A block laid out as the kernel lays it out: descriptor, then each packet's header,
    /// `sockaddr_ll`, captured bytes, aligned to 16.
    pub(crate) fn block(pkts: &[Pkt<'_>], size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        put32(&mut b, BLOCK_STATUS, TP_STATUS_USER);
        put32(&mut b, BLOCK_NUM_PKTS, pkts.len() as u32);
        put32(&mut b, BLOCK_FIRST_PKT, BLOCK_DESC_LEN as u32);
        let mut off = BLOCK_DESC_LEN;
        for (i, p) in pkts.iter().enumerate() {
            let mac = FRAME_HDR_LEN + 32; // header, sockaddr_ll, alignment
            let len = (mac + p.bytes.len()).next_multiple_of(16);
            let next = if i + 1 == pkts.len() { 0 } else { len };
            put32(&mut b, off + HDR_NEXT, next as u32);
            put32(&mut b, off + HDR_SEC, p.ts.0);
            put32(&mut b, off + HDR_NSEC, p.ts.1);
            put32(&mut b, off + HDR_SNAPLEN, p.bytes.len() as u32);
            put32(&mut b, off + HDR_LEN, p.wire_len);
            put32(&mut b, off + HDR_STATUS, p.status);
            put16(&mut b, off + HDR_MAC, mac as u16);
            put32(&mut b, off + HDR_VLAN_TCI, p.vlan.0);
            put16(&mut b, off + HDR_VLAN_TPID, p.vlan.1);
            b[off + FRAME_HDR_LEN + SLL_PKTTYPE] = 0;
            b[off + mac..off + mac + p.bytes.len()].copy_from_slice(p.bytes);
            off += len;
        }
        b
    }

    /// Every packet of `block`, in order, or the first error.
    fn walk(block: &[u8]) -> Result<Vec<Frame>, BadBlock> {
        let h = block_header(block)?;
        let mut out = Vec::new();
        let mut off = h.first;
        for left in (0..h.num_pkts).rev() {
            let f = frame_at(block, off, left > 0)?;
            off = f.next.unwrap_or(0);
            out.push(f);
        }
        Ok(out)
    }

    fn pkt(bytes: &[u8]) -> Pkt<'_> {
        Pkt {
            bytes,
            wire_len: bytes.len() as u32 + 100,
            ts: (1_700_000_000, 123_456_789),
            status: TP_STATUS_USER,
            vlan: (0, 0),
        }
    }

    #[test]
    fn walks_every_packet_with_its_bytes_lengths_and_time() {
        let a = [1u8; 60];
        let b = [2u8; 99];
        let c = [3u8; 14];
        let mut p3 = pkt(&c);
        p3.ts = (1, 2);
        let blk = block(&[pkt(&a), pkt(&b), p3], 4096);
        let frames = walk(&blk).unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(&blk[frames[0].data.clone()], &a);
        assert_eq!(&blk[frames[1].data.clone()], &b);
        assert_eq!(&blk[frames[2].data.clone()], &c);
        assert_eq!(frames[1].wire_len, 199);
        assert_eq!(frames[0].ts_ns, 1_700_000_000_123_456_789);
        assert_eq!(frames[2].ts_ns, 1_000_000_002);
        assert_eq!(frames[0].vlan, None);
        assert_eq!(frames[0].pkttype, Some(0));
        assert_eq!(frames[2].next, None);
    }

    #[test]
    fn an_empty_or_short_block_is_no_packet_or_an_error() {
        let blk = block(&[], 4096);
        assert_eq!(walk(&blk).unwrap(), vec![]);
        assert_eq!(block_header(&blk[..20]), Err(BadBlock::ShortBlock));
    }

    #[test]
    fn offsets_outside_the_block_are_refused() {
        let a = [1u8; 60];
        let good = block(&[pkt(&a), pkt(&a)], 4096);
        let first = BLOCK_DESC_LEN;

        // First packet beyond the end of the block.
        let mut b = good.clone();
        put32(&mut b, BLOCK_FIRST_PKT, 4090);
        assert_eq!(walk(&b), Err(BadBlock::HeaderOutside(4090)));
        put32(&mut b, BLOCK_FIRST_PKT, u32::MAX);
        assert_eq!(walk(&b), Err(BadBlock::HeaderOutside(u32::MAX as usize)));

        // Captured bytes running past the block (snaplen), or starting inside the header (mac).
        let mut b = good.clone();
        put32(&mut b, first + HDR_SNAPLEN, 5000);
        assert_eq!(walk(&b), Err(BadBlock::DataOutside(first)));
        let mut b = good.clone();
        put32(&mut b, first + HDR_SNAPLEN, u32::MAX);
        assert_eq!(walk(&b), Err(BadBlock::DataOutside(first)));
        let mut b = good.clone();
        put16(&mut b, first + HDR_MAC, 8);
        assert_eq!(walk(&b), Err(BadBlock::DataOutside(first)));
        let mut b = good.clone();
        put16(&mut b, first + HDR_MAC, u16::MAX);
        assert_eq!(walk(&b), Err(BadBlock::DataOutside(first)));

        // A chain that stops, loops on itself or leaves the block while packets remain.
        for next in [0, 8, 4096, u32::MAX] {
            let mut b = good.clone();
            put32(&mut b, first + HDR_NEXT, next);
            assert_eq!(walk(&b), Err(BadBlock::BadNext(first)), "next {next}");
        }

        // More packets announced than present: the walk stops at the first bad one.
        let mut b = good.clone();
        put32(&mut b, BLOCK_NUM_PKTS, 3);
        assert!(matches!(walk(&b), Err(BadBlock::BadNext(_))));

        // The whole block in a slice shorter than the kernel said: still no read outside.
        assert!(walk(&good[..first + FRAME_HDR_LEN + 40]).is_err());
    }

    #[test]
    fn every_cut_of_a_block_is_read_without_panic() {
        let a = [7u8; 200];
        let good = block(&[pkt(&a), pkt(&a), pkt(&a)], 2048);
        for cut in 0..good.len() {
            let _ = walk(&good[..cut]);
        }
        // Every single byte changed to every value of interest.
        for at in 0..BLOCK_DESC_LEN + 2 * FRAME_HDR_LEN {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = good.clone();
                b[at] = v;
                if let Ok(frames) = walk(&b) {
                    for f in frames {
                        assert!(f.data.end <= b.len());
                    }
                }
            }
        }
    }

    #[test]
    fn the_vlan_tag_the_kernel_took_off_is_put_back() {
        // Ethernet: dst, src, IPv4 ethertype, then 4 bytes of "IP".
        let frame: Vec<u8> = [[0xaa; 6], [0xbb; 6]]
            .concat()
            .into_iter()
            .chain([0x08, 0x00, 0x45, 0x00, 0x00, 0x14])
            .collect();
        let mut tagged = pkt(&frame);
        tagged.status |= TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
        tagged.vlan = (0x2064, 0x88a8); // priority 1, VLAN 100, 802.1ad
        let mut untyped = pkt(&frame);
        untyped.status |= TP_STATUS_VLAN_VALID;
        untyped.vlan = (0, 0); // VLAN 0 (priority tag), no TPID from the kernel
        let blk = block(&[tagged, untyped, pkt(&frame)], 4096);
        let frames = walk(&blk).unwrap();
        assert_eq!(frames[0].vlan, Some((0x88a8, 0x2064)));
        assert_eq!(frames[1].vlan, Some((0x8100, 0)));
        assert_eq!(frames[2].vlan, None);

        let mut out = Vec::new();
        restore_vlan(&blk[frames[0].data.clone()], (0x88a8, 0x2064), &mut out);
        assert_eq!(out.len(), frame.len() + 4);
        assert_eq!(&out[..12], &frame[..12]);
        assert_eq!(&out[12..16], &[0x88, 0xa8, 0x20, 0x64]);
        assert_eq!(&out[16..], &frame[12..]);

        // The decoder then sees the VLAN.
        let mut meta = burstwatch_wire::PacketMeta::default();
        let _ = burstwatch_wire::decode(burstwatch_wire::LinkType::ETHERNET, &out, &mut meta);
        assert_eq!(meta.vlans(), &[100]);

        // Too short to hold the addresses: copied unchanged.
        restore_vlan(&[1, 2, 3], (0x8100, 5), &mut out);
        assert_eq!(out, [1, 2, 3]);
    }
}
