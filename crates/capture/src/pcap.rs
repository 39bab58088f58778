//! Classic pcap (libpcap savefile): µs and ns magic in both byte orders, and the Kuznetzov
//! "modified" variant with 24-byte record headers.

use crate::buffer::{prefetch, Buffer};
use crate::endian::u32_at;
use crate::file::{Fault, PacketRef};
use crate::{LinkType, ReadErrorKind, MAX_RECORD};

/// Length of the file header.
pub(crate) const HEADER_LEN: usize = 24;

/// What the magic number says about a classic pcap file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Magic {
    pub(crate) big_endian: bool,
    pub(crate) nanos: bool,
    pub(crate) modified: bool,
}

impl Magic {
    /// Recognises the first four bytes of a pcap file.
    pub(crate) fn detect(b: [u8; 4]) -> Option<Magic> {
        let (nanos, modified) = match u32::from_le_bytes(b) {
            0xa1b2_c3d4 | 0xd4c3_b2a1 => (false, false),
            0xa1b2_3c4d | 0x4d3c_b2a1 => (true, false),
            0xa1b2_cd34 | 0x34cd_b2a1 => (false, true),
            _ => return None,
        };
        // The magic is written in the writer's byte order: a1 first means big-endian.
        Some(Magic {
            big_endian: b[0] == 0xa1,
            nanos,
            modified,
        })
    }
}

/// The four words of a record header (seconds, fraction, captured and original length).
#[inline(always)]
fn record_words(h: &[u8; 16], big_endian: bool) -> [u32; 4] {
    let word = |i: usize| {
        let v = u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        if big_endian {
            v.swap_bytes()
        } else {
            v
        }
    };
    [word(0), word(4), word(8), word(12)]
}

/// Record walker for one classic pcap file.
#[derive(Debug)]
pub(crate) struct PcapReader {
    magic: Magic,
    link_type: LinkType,
    record_header: usize,
    frac_ns: u64,
}

impl PcapReader {
    /// Parses the 24-byte file header at the cursor (which must be available) and consumes it.
    pub(crate) fn open(buf: &mut Buffer, magic: Magic) -> Result<PcapReader, Fault> {
        let offset = buf.offset();
        Fault::fill(buf, offset, HEADER_LEN)?;
        let h = &buf.window()[buf.pos()..buf.pos() + HEADER_LEN];
        let be = magic.big_endian;
        let major = if be {
            u16::from_be_bytes([h[4], h[5]])
        } else {
            u16::from_le_bytes([h[4], h[5]])
        };
        if major != 2 {
            return Err(Fault::new(
                offset,
                ReadErrorKind::BadHeader(format!(
                    "pcap major version {major} is not supported (expected 2)"
                )),
            ));
        }
        let field = u32_at(h, 20, be);
        // Bits 0-15: link type; 16-25: reserved (must be zero); 26-28: FCS length + flag.
        if field & 0x03ff_0000 != 0 {
            return Err(Fault::new(
                offset,
                ReadErrorKind::BadHeader(format!(
                    "reserved bits of the link-type field are set (0x{field:08x})"
                )),
            ));
        }
        buf.consume(HEADER_LEN);
        Ok(PcapReader {
            magic,
            link_type: LinkType(field & 0xffff),
            record_header: if magic.modified { 24 } else { 16 },
            frac_ns: if magic.nanos { 1 } else { 1_000 },
        })
    }

    /// Byte order, resolution and variant.
    pub(crate) fn magic(&self) -> Magic {
        self.magic
    }

    /// Reads the next record; `Ok(None)` at a clean end of file.
    #[inline]
    pub(crate) fn next(&mut self, buf: &mut Buffer) -> Result<Option<PacketRef>, Fault> {
        // Fast path: the whole record is in the window already (all but one record per chunk).
        let pos = buf.pos();
        let w = buf.window();
        if let Some(header) = w.get(pos..).and_then(|r| r.first_chunk::<16>()) {
            let [sec, frac, incl, orig] = record_words(header, self.magic.big_endian);
            let total = self.record_header + incl as usize;
            if incl <= MAX_RECORD && w.len() - pos >= total {
                prefetch(w, pos + total);
                buf.consume_seen(total);
                return Ok(Some(self.packet_ref(
                    pos + self.record_header,
                    sec,
                    frac,
                    incl,
                    orig,
                )));
            }
        }
        self.next_refill(buf)
    }

    /// The record at `start` with these header words.
    #[inline]
    fn packet_ref(&self, start: usize, sec: u32, frac: u32, incl: u32, orig: u32) -> PacketRef {
        // u32 seconds and fractions: at most ~4.3e18 ns, inside i64.
        let ts_ns = (u64::from(sec) * 1_000_000_000 + u64::from(frac) * self.frac_ns) as i64;
        PacketRef {
            ts_ns,
            link_type: self.link_type,
            start,
            len: incl,
            wire_len: orig,
            interface: 0,
        }
    }

    /// [`PcapReader::next`] when the window must be refilled first (or the record is bad).
    #[cold]
    fn next_refill(&mut self, buf: &mut Buffer) -> Result<Option<PacketRef>, Fault> {
        let hl = self.record_header;
        let offset = buf.offset();
        let have = buf.fill(hl).map_err(|e| Fault::io(offset, e))?;
        if have < hl {
            if have == 0 {
                return Ok(None);
            }
            return Err(Fault::new(
                offset,
                ReadErrorKind::Truncated {
                    needed: hl as u64,
                    have: have as u64,
                },
            ));
        }
        let header = buf
            .window()
            .get(buf.pos()..)
            .and_then(|w| w.first_chunk::<16>());
        let Some(header) = header else {
            // `fill` said at least `hl >= 16` bytes are there.
            return Err(Fault::new(
                offset,
                ReadErrorKind::Truncated {
                    needed: hl as u64,
                    have: have as u64,
                },
            ));
        };
        let [sec, frac, incl, orig] = record_words(header, self.magic.big_endian);
        if incl > MAX_RECORD {
            return Err(Fault::new(
                offset,
                ReadErrorKind::RecordTooLong {
                    len: incl,
                    limit: MAX_RECORD,
                },
            ));
        }
        let total = hl + incl as usize;
        if have < total {
            Fault::fill(buf, offset, total)?;
        }
        let start = buf.pos() + hl;
        buf.consume(total);
        Ok(Some(self.packet_ref(start, sec, frac, incl, orig)))
    }
}
