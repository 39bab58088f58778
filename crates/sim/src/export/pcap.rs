//! Export datagrams as a capture on the collector: Ethernet, IPv4 and UDP with correct
//! lengths and checksums, in a classic pcap file (µs timestamps).

use std::io::{self, Write};
use std::net::SocketAddrV4;

use crate::frame::{fold, pcap_header, sum_words};

/// Writes UDP datagrams from one address to another as pcap records.
pub struct DatagramPcap<W: Write> {
    out: W,
    from: SocketAddrV4,
    to: SocketAddrV4,
    ip_id: u16,
    buf: Vec<u8>,
    /// Bytes written so far.
    pub bytes: u64,
}

impl<W: Write> DatagramPcap<W> {
    /// Write the pcap file header; datagrams will go `from` → `to`.
    pub fn new(mut out: W, from: SocketAddrV4, to: SocketAddrV4) -> io::Result<Self> {
        out.write_all(&pcap_header())?;
        Ok(Self {
            out,
            from,
            to,
            ip_id: 1,
            buf: Vec::with_capacity(2048),
            bytes: 24,
        })
    }

    /// Write one datagram captured at `ts_ns` (payloads over 65507 bytes are refused).
    pub fn write(&mut self, ts_ns: i64, payload: &[u8]) -> io::Result<()> {
        let udp_len = u16::try_from(payload.len() + 8)
            .ok()
            .filter(|&l| l <= 65515)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "datagram too large"))?;
        let ip_len = udp_len + 20;
        let frame_len = 14 + usize::from(ip_len);
        let b = &mut self.buf;
        b.clear();
        let secs = u32::try_from(ts_ns.div_euclid(1_000_000_000)).unwrap_or(0);
        let usecs = u32::try_from(ts_ns.rem_euclid(1_000_000_000) / 1000).unwrap_or(0);
        let caplen = u32::try_from(frame_len.max(60)).unwrap_or(0);
        for v in [secs, usecs, caplen, caplen] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
        let ip_at = b.len();
        b.extend_from_slice(&[0x45, 0]);
        b.extend_from_slice(&ip_len.to_be_bytes());
        b.extend_from_slice(&self.ip_id.to_be_bytes());
        b.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]); // DF, TTL 64, UDP, checksum
        b.extend_from_slice(&self.from.ip().octets());
        b.extend_from_slice(&self.to.ip().octets());
        let ip_sum = fold(sum_words(&b[ip_at..ip_at + 20]));
        b[ip_at + 10..ip_at + 12].copy_from_slice(&ip_sum.to_be_bytes());
        let udp_at = b.len();
        b.extend_from_slice(&self.from.port().to_be_bytes());
        b.extend_from_slice(&self.to.port().to_be_bytes());
        b.extend_from_slice(&udp_len.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(payload);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&self.from.ip().octets());
        pseudo[4..8].copy_from_slice(&self.to.ip().octets());
        pseudo[9] = 17;
        pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
        let sum = sum_words(&pseudo) + sum_words(&b[udp_at..]);
        let mut udp_sum = fold(sum);
        if udp_sum == 0 {
            udp_sum = 0xffff;
        }
        b[udp_at + 6..udp_at + 8].copy_from_slice(&udp_sum.to_be_bytes());
        while b.len() < 16 + 60 {
            b.push(0);
        }
        self.out.write_all(b)?;
        self.bytes += b.len() as u64;
        self.ip_id = self.ip_id.wrapping_add(1);
        Ok(())
    }

    /// Flush and hand back the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
