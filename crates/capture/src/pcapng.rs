//! pcapng: sections (each with its own byte order and interfaces), interface description
//! blocks with their timestamp resolution and offset, and the three packet blocks (enhanced,
//! simple, obsolete). Every other block type is skipped.

use crate::buffer::Buffer;
use crate::endian::{u16_at, u32_at};
use crate::file::{Fault, PacketRef};
use crate::{LinkType, ReadErrorKind, MAX_RECORD};

/// Block type of the section header block (a palindrome: same in both byte orders).
pub(crate) const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// Largest block accepted.
pub(crate) const MAX_BLOCK: u32 = 16 << 20;
/// Most interfaces accepted in one section.
const MAX_INTERFACES: usize = 1 << 16;

const OPT_END: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// Timestamp units of an interface, as a conversion to nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolution {
    /// Multiply by this (units of 10^-k s, k <= 9).
    Mul(u64),
    /// Divide by this (units of 10^-k s, k > 9).
    Div(u128),
    /// Units of 2^-k s.
    Pow2(u32),
}

impl Resolution {
    const MICROS: Resolution = Resolution::Mul(1_000);

    fn from_option(v: u8) -> Resolution {
        let exp = u32::from(v & 0x7f);
        if v & 0x80 != 0 {
            Resolution::Pow2(exp)
        } else if exp <= 9 {
            Resolution::Mul(10u64.pow(9 - exp))
        } else {
            // 10^38 is the largest power of ten in a u128; beyond it every timestamp is 0 ns.
            Resolution::Div(10u128.checked_pow(exp - 9).unwrap_or(u128::MAX))
        }
    }

    /// Nanoseconds for a raw timestamp, saturating instead of overflowing.
    fn to_ns(self, ts: u64, offset_ns: i128) -> i64 {
        let t = u128::from(ts);
        let ns = match self {
            Resolution::Mul(m) => t * u128::from(m),
            Resolution::Div(d) => t / d,
            // t < 2^64 and 1e9 < 2^30: the product fits, and shifts up to 127 are defined.
            Resolution::Pow2(k) => (t * 1_000_000_000) >> k,
        };
        // ns < 2^94: fits an i128 with room for the offset.
        let v = ns as i128 + offset_ns;
        v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: LinkType,
    resolution: Resolution,
    offset_ns: i128,
}

/// Block walker for one pcapng file.
#[derive(Debug)]
pub(crate) struct PcapNgReader {
    big_endian: bool,
    interfaces: Vec<Interface>,
    last_ts: i64,
}

/// Calls `f(code, value)` for every option in `opts` up to opt_endofopt.
fn walk_options(opts: &[u8], be: bool, mut f: impl FnMut(u16, &[u8])) -> Result<(), String> {
    let mut i = 0;
    while opts.len() - i >= 4 {
        let code = u16_at(opts, i, be);
        let len = usize::from(u16_at(opts, i + 2, be));
        if code == OPT_END {
            return Ok(());
        }
        let value_end = i + 4 + len;
        if value_end > opts.len() {
            return Err(format!("option {code} of length {len} overruns its block"));
        }
        f(code, &opts[i + 4..value_end]);
        i = (value_end + 3) & !3;
        i = i.min(opts.len());
    }
    Ok(())
}

fn bad(offset: u64, msg: String) -> Fault {
    Fault::new(offset, ReadErrorKind::BadBlock(msg))
}

impl PcapNgReader {
    /// Reads the first section header block (the cursor is at the start of the file).
    pub(crate) fn open(buf: &mut Buffer) -> Result<PcapNgReader, Fault> {
        let mut r = PcapNgReader {
            big_endian: false,
            interfaces: Vec::new(),
            last_ts: 0,
        };
        match r.block(buf, true) {
            Ok(None) => Ok(r),
            Ok(Some(_)) => Err(Fault::new(
                0,
                ReadErrorKind::BadHeader("no section header block".into()),
            )),
            Err(Fault {
                offset,
                reason: ReadErrorKind::BadBlock(m),
            }) => Err(Fault::new(
                offset,
                ReadErrorKind::BadHeader(format!("section header block: {m}")),
            )),
            Err(e) => Err(e),
        }
    }

    /// Byte order of the current section.
    pub(crate) fn big_endian(&self) -> bool {
        self.big_endian
    }

    /// Reads blocks until a packet (or the end of the file).
    #[inline]
    pub(crate) fn next(&mut self, buf: &mut Buffer) -> Result<Option<PacketRef>, Fault> {
        loop {
            if buf.fill(1).map_err(|e| Fault::io(buf.offset(), e))? == 0 {
                return Ok(None);
            }
            if let Some(p) = self.block(buf, false)? {
                return Ok(Some(p));
            }
        }
    }

    /// Processes one block at the cursor (which is not at the end of the input). Returns the
    /// packet if it was a packet block. With `first`, the block must be a section header.
    fn block(&mut self, buf: &mut Buffer, first: bool) -> Result<Option<PacketRef>, Fault> {
        let offset = buf.offset();
        Fault::fill(buf, offset, 12)?;
        let (btype, total) = {
            let w = &buf.window()[buf.pos()..];
            let btype = u32_at(w, 0, self.big_endian);
            if btype == SHB {
                self.big_endian = match u32_at(w, 8, false) {
                    BYTE_ORDER_MAGIC => false,
                    m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                    m => return Err(bad(offset, format!("unknown byte-order magic 0x{m:08x}"))),
                };
            } else if first {
                return Err(Fault::new(
                    offset,
                    ReadErrorKind::BadHeader(format!(
                        "first block has type 0x{btype:08x}, not a section header"
                    )),
                ));
            }
            (btype, u32_at(w, 4, self.big_endian))
        };
        if total < 12 {
            return Err(bad(offset, format!("block length {total} is less than 12")));
        }
        if total % 4 != 0 {
            return Err(bad(
                offset,
                format!("block length {total} is not a multiple of 4"),
            ));
        }
        if total > MAX_BLOCK {
            return Err(Fault::new(
                offset,
                ReadErrorKind::RecordTooLong {
                    len: total,
                    limit: MAX_BLOCK,
                },
            ));
        }
        let total_us = total as usize;
        if !matches!(btype, SHB | IDB | EPB | SPB | OPB) {
            return self.skip_block(buf, offset, total);
        }
        Fault::fill(buf, offset, total_us)?;
        let be = self.big_endian;
        let pos = buf.pos();
        let block = &buf.window()[pos..pos + total_us];
        let trailer = u32_at(block, total_us - 4, be);
        if trailer != total {
            return Err(bad(
                offset,
                format!("trailing block length {trailer} does not match the leading {total}"),
            ));
        }
        let body = &block[8..total_us - 4];
        let packet = match btype {
            SHB => {
                self.section(body, offset)?;
                None
            }
            IDB => {
                self.interface(body, offset)?;
                None
            }
            EPB | OPB => {
                if body.len() < 20 {
                    return Err(bad(
                        offset,
                        format!("packet block body of {} bytes is too short", body.len()),
                    ));
                }
                let (iface, ts_hi, ts_lo, caplen, wire_len) = if btype == EPB {
                    (
                        u32_at(body, 0, be),
                        u32_at(body, 4, be),
                        u32_at(body, 8, be),
                        u32_at(body, 12, be),
                        u32_at(body, 16, be),
                    )
                } else {
                    let iface = u32::from(u16_at(body, 0, be));
                    (
                        iface,
                        u32_at(body, 4, be),
                        u32_at(body, 8, be),
                        u32_at(body, 12, be),
                        u32_at(body, 16, be),
                    )
                };
                if caplen > MAX_RECORD {
                    return Err(Fault::new(
                        offset,
                        ReadErrorKind::RecordTooLong {
                            len: caplen,
                            limit: MAX_RECORD,
                        },
                    ));
                }
                if caplen as usize > body.len() - 20 {
                    return Err(bad(
                        offset,
                        format!(
                            "captured length {caplen} exceeds the {}-byte block body",
                            body.len() - 20
                        ),
                    ));
                }
                let Some(i) = self.interfaces.get(iface as usize) else {
                    return Err(bad(
                        offset,
                        format!(
                            "interface id {iface} out of range ({} interfaces in section)",
                            self.interfaces.len()
                        ),
                    ));
                };
                let ts = (u64::from(ts_hi) << 32) | u64::from(ts_lo);
                let ts_ns = i.resolution.to_ns(ts, i.offset_ns);
                self.last_ts = ts_ns;
                Some(PacketRef {
                    ts_ns,
                    link_type: i.link_type,
                    start: pos + 28,
                    len: caplen,
                    wire_len,
                    interface: iface,
                })
            }
            SPB => {
                if body.len() < 4 {
                    return Err(bad(offset, "simple packet block too short".into()));
                }
                let Some(i) = self.interfaces.first() else {
                    return Err(bad(
                        offset,
                        "simple packet block before any interface description".into(),
                    ));
                };
                let wire_len = u32_at(body, 0, be);
                let room = body.len() - 4;
                let caplen = (wire_len as usize).min(room);
                if caplen > MAX_RECORD as usize {
                    return Err(Fault::new(
                        offset,
                        ReadErrorKind::RecordTooLong {
                            len: caplen as u32,
                            limit: MAX_RECORD,
                        },
                    ));
                }
                Some(PacketRef {
                    ts_ns: self.last_ts,
                    link_type: i.link_type,
                    start: pos + 12,
                    len: caplen as u32,
                    wire_len,
                    interface: 0,
                })
            }
            _ => None,
        };
        buf.consume(total_us);
        Ok(packet)
    }

    fn section(&mut self, body: &[u8], offset: u64) -> Result<(), Fault> {
        let be = self.big_endian;
        if body.len() < 16 {
            return Err(bad(
                offset,
                format!("section header body of {} bytes is too short", body.len()),
            ));
        }
        let (major, minor) = (u16_at(body, 4, be), u16_at(body, 6, be));
        if !(major == 1 && (minor == 0 || minor == 2)) {
            return Err(bad(
                offset,
                format!("unsupported pcapng version {major}.{minor}"),
            ));
        }
        walk_options(&body[16..], be, |_, _| {}).map_err(|m| bad(offset, m))?;
        self.interfaces.clear();
        Ok(())
    }

    fn interface(&mut self, body: &[u8], offset: u64) -> Result<(), Fault> {
        let be = self.big_endian;
        if body.len() < 8 {
            return Err(bad(
                offset,
                format!(
                    "interface description body of {} bytes is too short",
                    body.len()
                ),
            ));
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(bad(
                offset,
                format!("more than {MAX_INTERFACES} interfaces in one section"),
            ));
        }
        let mut iface = Interface {
            link_type: LinkType(u32::from(u16_at(body, 0, be))),
            resolution: Resolution::MICROS,
            offset_ns: 0,
        };
        walk_options(&body[8..], be, |code, v| match (code, v.len()) {
            (IF_TSRESOL, 1..) => iface.resolution = Resolution::from_option(v[0]),
            (IF_TSOFFSET, 8..) => {
                let a = [v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]];
                let secs = if be {
                    i64::from_be_bytes(a)
                } else {
                    i64::from_le_bytes(a)
                };
                iface.offset_ns = i128::from(secs) * 1_000_000_000;
            }
            _ => {}
        })
        .map_err(|m| bad(offset, m))?;
        self.interfaces.push(iface);
        Ok(())
    }

    /// Skips a block we don't interpret, checking its trailing length.
    fn skip_block(
        &mut self,
        buf: &mut Buffer,
        offset: u64,
        total: u32,
    ) -> Result<Option<PacketRef>, Fault> {
        let body = u64::from(total) - 4;
        let skipped = buf.skip(body).map_err(|e| Fault::io(offset, e))?;
        let have = buf.fill(4).map_err(|e| Fault::io(offset, e))?;
        if skipped < body || have < 4 {
            let got = skipped + have.min(4) as u64;
            return Err(Fault::new(
                offset,
                ReadErrorKind::Truncated {
                    needed: u64::from(total),
                    have: got,
                },
            ));
        }
        let trailer = u32_at(buf.window(), buf.pos(), self.big_endian);
        if trailer != total {
            return Err(bad(
                offset,
                format!("trailing block length {trailer} does not match the leading {total}"),
            ));
        }
        buf.consume(4);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions() {
        assert_eq!(
            Resolution::from_option(6).to_ns(1_500_000, 0),
            1_500_000_000
        );
        assert_eq!(Resolution::from_option(9).to_ns(7, 0), 7);
        assert_eq!(Resolution::from_option(12).to_ns(7_000, 0), 7);
        assert_eq!(
            Resolution::from_option(0x80 | 20).to_ns(1 << 20, 0),
            1_000_000_000
        );
        assert_eq!(Resolution::from_option(0x80 | 127).to_ns(u64::MAX, 0), 0);
        assert_eq!(Resolution::from_option(127).to_ns(u64::MAX, 0), 0);
        assert_eq!(Resolution::from_option(0).to_ns(u64::MAX, 0), i64::MAX);
        assert_eq!(
            Resolution::from_option(6).to_ns(0, -5_000_000_000),
            -5_000_000_000
        );
    }

    #[test]
    fn options_overrun() {
        let opts = [9, 0, 200, 0, 1, 2, 3, 4];
        assert!(walk_options(&opts, false, |_, _| {}).is_err());
        let ok = [9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0];
        let mut seen = vec![];
        walk_options(&ok, false, |c, v| seen.push((c, v.to_vec()))).ok();
        assert_eq!(seen, vec![(9, vec![9])]);
    }
}
