//! Writing carved packets: classic pcap when they share one link type, pcapng with one
//! interface per link type otherwise; microsecond timestamps when every packet time is a
//! whole microsecond, nanoseconds otherwise. Little-endian, no wall-clock time anywhere, so the
//! same packets always give the same bytes.

use std::io::{self, Write};

use sha2::{Digest, Sha256};

/// Snapshot length written in headers: the largest record the reader accepts.
const SNAPLEN: u32 = burstwatch_capture::MAX_RECORD;

/// The container chosen for a set of packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Link types in order of first appearance; the pcapng interface id is the index.
    pub link_types: Vec<u32>,
    /// Whether every timestamp is a whole microsecond.
    pub micros: bool,
}

impl Layout {
    /// Whether the output is pcapng (mixed link types).
    pub fn pcapng(&self) -> bool {
        self.link_types.len() > 1
    }

    /// Name of the format, for the manifest.
    pub fn format(&self) -> &'static str {
        if self.pcapng() {
            "pcapng"
        } else {
            "pcap"
        }
    }

    /// Writes the file header (and the pcapng interface blocks).
    pub fn write_header<W: Write>(&self, w: &mut W) -> io::Result<()> {
        if !self.pcapng() {
            let magic: u32 = if self.micros {
                0xa1b2_c3d4
            } else {
                0xa1b2_3c4d
            };
            let link = self.link_types.first().copied().unwrap_or(1);
            w.write_all(&magic.to_le_bytes())?;
            w.write_all(&2u16.to_le_bytes())?;
            w.write_all(&4u16.to_le_bytes())?;
            w.write_all(&[0u8; 8])?; // thiszone, sigfigs
            w.write_all(&SNAPLEN.to_le_bytes())?;
            return w.write_all(&link.to_le_bytes());
        }
        // Section header block: no options, section length unknown (-1).
        let mut shb = Vec::with_capacity(28);
        shb.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        w.write_all(&shb)?;
        for &lt in &self.link_types {
            // Interface description block; nanosecond interfaces carry if_tsresol = 9.
            let opts: &[u8] = if self.micros {
                &[]
            } else {
                &[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]
            };
            let len = 20 + opts.len() as u32;
            let lt16 = u16::try_from(lt).unwrap_or(u16::MAX);
            w.write_all(&1u32.to_le_bytes())?;
            w.write_all(&len.to_le_bytes())?;
            w.write_all(&lt16.to_le_bytes())?;
            w.write_all(&0u16.to_le_bytes())?;
            w.write_all(&SNAPLEN.to_le_bytes())?;
            w.write_all(opts)?;
            w.write_all(&len.to_le_bytes())?;
        }
        Ok(())
    }

    /// Writes one packet record. `ts_ns` must be non-negative (checked by the caller).
    pub fn write_packet<W: Write>(
        &self,
        w: &mut W,
        ts_ns: i64,
        link_type: u32,
        wire_len: u32,
        data: &[u8],
    ) -> io::Result<()> {
        let ts = u64::try_from(ts_ns).unwrap_or(0);
        let units = if self.micros { ts / 1_000 } else { ts };
        let caplen = data.len() as u32;
        if !self.pcapng() {
            let (sec, frac) = if self.micros {
                (units / 1_000_000, units % 1_000_000)
            } else {
                (units / 1_000_000_000, units % 1_000_000_000)
            };
            let sec = u32::try_from(sec).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "timestamp beyond 2106 in pcap")
            })?;
            w.write_all(&sec.to_le_bytes())?;
            w.write_all(&(frac as u32).to_le_bytes())?;
            w.write_all(&caplen.to_le_bytes())?;
            w.write_all(&wire_len.to_le_bytes())?;
            return w.write_all(data);
        }
        let iface = self
            .link_types
            .iter()
            .position(|&l| l == link_type)
            .unwrap_or(0) as u32;
        let pad = (4 - data.len() % 4) % 4;
        let len = 32 + data.len() as u32 + pad as u32;
        w.write_all(&6u32.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&iface.to_le_bytes())?;
        w.write_all(&((units >> 32) as u32).to_le_bytes())?;
        w.write_all(&(units as u32).to_le_bytes())?;
        w.write_all(&caplen.to_le_bytes())?;
        w.write_all(&wire_len.to_le_bytes())?;
        w.write_all(data)?;
        w.write_all(&[0u8; 3][..pad])?;
        w.write_all(&len.to_le_bytes())
    }
}

/// A writer that hashes (SHA-256) and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// Flushes and returns the inner writer, the hex digest and the byte count.
    pub fn finish(mut self) -> io::Result<(W, String, u64)> {
        self.inner.flush()?;
        Ok((self.inner, hex(&self.hash.finalize()), self.bytes))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// SHA-256 and size of a file, read in blocks.
pub fn sha256_file(path: &std::path::Path) -> io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = HashingWriter::new(io::sink());
    io::copy(&mut f, &mut h)?;
    let (_, digest, n) = h.finish()?;
    Ok((digest, n))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    fn read_all(bytes: Vec<u8>) -> Vec<(i64, u32, Vec<u8>, u32)> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        std::fs::write(&p, bytes).unwrap();
        let mut f = burstwatch_capture::CaptureFile::open(&p).unwrap();
        let mut out = Vec::new();
        while let Some(pkt) = f.next_packet().unwrap() {
            out.push((pkt.ts_ns, pkt.link_type.0, pkt.data.to_vec(), pkt.wire_len));
        }
        out
    }

    fn roundtrip(packets: &[(i64, u32, Vec<u8>, u32)], pcapng: bool) {
        let mut link_types: Vec<u32> = Vec::new();
        for p in packets {
            if !link_types.contains(&p.1) {
                link_types.push(p.1);
            }
        }
        let layout = Layout {
            link_types,
            micros: packets.iter().all(|p| p.0 % 1000 == 0),
        };
        assert_eq!(layout.pcapng(), pcapng);
        let mut buf = Vec::new();
        layout.write_header(&mut buf).unwrap();
        for p in packets {
            layout.write_packet(&mut buf, p.0, p.1, p.3, &p.2).unwrap();
        }
        assert_eq!(read_all(buf), packets);
    }

    #[test]
    fn packets_read_back_unchanged() {
        let a = (1_700_000_000_123_456_000, 1, vec![1u8; 61], 1514);
        let b = (1_700_000_001_000_000_007, 1, vec![2u8; 64], 64);
        let c = (1_700_000_002_000_001_000, 101, vec![0x45u8; 20], 20);
        roundtrip(std::slice::from_ref(&a), false);
        roundtrip(&[a.clone(), b.clone()], false);
        roundtrip(&[a.clone(), c.clone()], true);
        roundtrip(&[a, b, c], true);
    }

    #[test]
    fn hashes_are_sha256() {
        let mut h = HashingWriter::new(Vec::new());
        h.write_all(b"abc").unwrap();
        let (inner, digest, n) = h.finish().unwrap();
        assert_eq!((inner.as_slice(), n), (&b"abc"[..], 3));
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
