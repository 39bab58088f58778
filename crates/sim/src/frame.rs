//! Frame building: pcap record header, Ethernet, IPv4/IPv6, TCP/UDP/ICMP, all written in place
//! into one reused buffer. Every checksum (IPv4 header, TCP, UDP, ICMP, ICMPv6) is computed.

/// The header of a classic pcap file: microsecond timestamps, version 2.4, snap length 65535,
/// Ethernet.
pub(crate) fn pcap_header() -> [u8; 24] {
    let mut hdr = [0u8; 24];
    hdr[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
    hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
    hdr[16..20].copy_from_slice(&65535u32.to_le_bytes());
    hdr[20..24].copy_from_slice(&1u32.to_le_bytes());
    hdr
}

/// Bytes of a classic pcap record header, which sits in front of the frame in the buffer.
pub(crate) const REC: usize = 16;
/// Ethernet header length.
const ETH: usize = 14;
/// Shortest Ethernet frame without FCS; shorter frames get zero padding (an Ethernet trailer).
const MIN_FRAME: usize = 60;
/// Largest frame written (1500-byte IP MTU).
pub(crate) const MAX_FRAME: usize = ETH + 1500;

/// IP protocol numbers.
pub(crate) const TCP: u8 = 6;
pub(crate) const UDP: u8 = 17;
pub(crate) const ICMP: u8 = 1;
pub(crate) const ICMPV6: u8 = 58;

/// TCP flags.
pub(crate) const FIN: u8 = 0x01;
pub(crate) const SYN: u8 = 0x02;
pub(crate) const RST: u8 = 0x04;
pub(crate) const PSH: u8 = 0x08;
pub(crate) const ACK: u8 = 0x10;

/// The two ends of one flow: subscriber ("sub", inside) and server ("srv", outside).
#[derive(Clone, Debug, Default)]
pub(crate) struct Net {
    pub v6: bool,
    /// IPv4 addresses use the first 4 bytes.
    pub sub_ip: [u8; 16],
    pub srv_ip: [u8; 16],
    pub sub_mac: [u8; 6],
    pub srv_mac: [u8; 6],
    pub sub_port: u16,
    pub srv_port: u16,
}

/// Per-direction IP-level state.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Hop {
    pub ip_id: u16,
    pub ttl: u8,
    pub flow_label: u32,
}

/// The reused frame buffer: `[pcap record header][Ethernet][IP][L4][payload]`.
pub(crate) struct Frame {
    pub buf: Vec<u8>,
}

impl Frame {
    pub(crate) fn new() -> Self {
        Self {
            buf: vec![0; REC + MAX_FRAME + 64],
        }
    }

    /// Offset of the L4 header.
    #[inline]
    pub(crate) fn l4(v6: bool) -> usize {
        REC + ETH + if v6 { 40 } else { 20 }
    }

    /// Write a TCP header (with `opts`) in front of `payload_len` bytes already at
    /// `l4 + 20 + opts.len()`, compute the checksum and finish the frame.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tcp(
        &mut self,
        net: &Net,
        up: bool,
        hop: &mut Hop,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        opts: &[u8],
        payload_len: usize,
        ts_ns: i64,
    ) -> usize {
        let o = Self::l4(net.v6);
        let hl = 20 + opts.len();
        let (sp, dp) = ports(net, up);
        let b = &mut self.buf[o..o + hl];
        b[0..2].copy_from_slice(&sp.to_be_bytes());
        b[2..4].copy_from_slice(&dp.to_be_bytes());
        b[4..8].copy_from_slice(&seq.to_be_bytes());
        b[8..12].copy_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
        b[12] = ((hl / 4) as u8) << 4;
        b[13] = flags;
        b[14..16].copy_from_slice(&window.to_be_bytes());
        b[16..20].fill(0);
        b[20..].copy_from_slice(opts);
        let l4_len = hl + payload_len;
        let sum = pseudo_sum(net, TCP, l4_len) + sum_words(&self.buf[o..o + l4_len]);
        let c = fold(sum);
        self.buf[o + 16..o + 18].copy_from_slice(&c.to_be_bytes());
        self.finish(net, up, hop, TCP, l4_len, ts_ns)
    }

    /// Write a UDP header in front of `payload_len` bytes already at `l4 + 8` and finish.
    pub(crate) fn udp(
        &mut self,
        net: &Net,
        up: bool,
        hop: &mut Hop,
        payload_len: usize,
        ts_ns: i64,
    ) -> usize {
        let o = Self::l4(net.v6);
        let (sp, dp) = ports(net, up);
        let l4_len = 8 + payload_len;
        let b = &mut self.buf[o..o + 8];
        b[0..2].copy_from_slice(&sp.to_be_bytes());
        b[2..4].copy_from_slice(&dp.to_be_bytes());
        b[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        b[6..8].fill(0);
        let sum = pseudo_sum(net, UDP, l4_len) + sum_words(&self.buf[o..o + l4_len]);
        let mut c = fold(sum);
        if c == 0 {
            c = 0xffff;
        }
        self.buf[o + 6..o + 8].copy_from_slice(&c.to_be_bytes());
        self.finish(net, up, hop, UDP, l4_len, ts_ns)
    }

    /// ICMP(v6) echo request (`up`) or reply with identifier `id`, sequence `seq` and a
    /// 56-byte ping-style payload; finishes the frame.
    pub(crate) fn echo(
        &mut self,
        net: &Net,
        up: bool,
        hop: &mut Hop,
        id: u16,
        seq: u16,
        ts_ns: i64,
    ) -> usize {
        let o = Self::l4(net.v6);
        let l4_len = 8 + 56;
        let (proto, ty) = match (net.v6, up) {
            (false, true) => (ICMP, 8),
            (false, false) => (ICMP, 0),
            (true, true) => (ICMPV6, 128),
            (true, false) => (ICMPV6, 129),
        };
        let b = &mut self.buf[o..o + l4_len];
        b[0] = ty;
        b[1] = 0;
        b[2..4].fill(0);
        b[4..6].copy_from_slice(&id.to_be_bytes());
        b[6..8].copy_from_slice(&seq.to_be_bytes());
        b[8..16].copy_from_slice(&ts_ns.to_be_bytes());
        for (i, x) in b[16..].iter_mut().enumerate() {
            *x = 0x10 + i as u8;
        }
        let mut sum = sum_words(&self.buf[o..o + l4_len]);
        if net.v6 {
            sum += pseudo_sum(net, ICMPV6, l4_len);
        }
        let c = fold(sum);
        self.buf[o + 2..o + 4].copy_from_slice(&c.to_be_bytes());
        self.finish(net, up, hop, proto, l4_len, ts_ns)
    }

    /// Write IP and Ethernet headers and the pcap record header for an L4 segment of
    /// `l4_len` bytes; returns the record length (header + frame).
    fn finish(
        &mut self,
        net: &Net,
        up: bool,
        hop: &mut Hop,
        proto: u8,
        l4_len: usize,
        ts_ns: i64,
    ) -> usize {
        let (src, dst) = if up {
            (&net.sub_ip, &net.srv_ip)
        } else {
            (&net.srv_ip, &net.sub_ip)
        };
        let ip = REC + ETH;
        let ip_len = if net.v6 {
            let h = &mut self.buf[ip..ip + 40];
            let vtf = (6u32 << 28) | (hop.flow_label & 0xf_ffff);
            h[0..4].copy_from_slice(&vtf.to_be_bytes());
            h[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            h[6] = proto;
            h[7] = hop.ttl;
            h[8..24].copy_from_slice(src);
            h[24..40].copy_from_slice(dst);
            40 + l4_len
        } else {
            let total = 20 + l4_len;
            let h = &mut self.buf[ip..ip + 20];
            h[0] = 0x45;
            h[1] = 0;
            h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            h[4..6].copy_from_slice(&hop.ip_id.to_be_bytes());
            h[6..8].copy_from_slice(&(if proto == TCP { 0x4000u16 } else { 0 }).to_be_bytes());
            h[8] = hop.ttl;
            h[9] = proto;
            h[10..12].fill(0);
            h[12..16].copy_from_slice(&src[..4]);
            h[16..20].copy_from_slice(&dst[..4]);
            let c = fold(sum_words(h));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            total
        };
        hop.ip_id = hop.ip_id.wrapping_add(1);
        let e = &mut self.buf[REC..REC + ETH];
        let (smac, dmac) = if up {
            (&net.sub_mac, &net.srv_mac)
        } else {
            (&net.srv_mac, &net.sub_mac)
        };
        e[0..6].copy_from_slice(dmac);
        e[6..12].copy_from_slice(smac);
        e[12..14].copy_from_slice(&(if net.v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
        let mut frame_len = ETH + ip_len;
        if frame_len < MIN_FRAME {
            self.buf[REC + frame_len..REC + MIN_FRAME].fill(0);
            frame_len = MIN_FRAME;
        }
        let secs = ts_ns.div_euclid(1_000_000_000);
        let usec = ts_ns.rem_euclid(1_000_000_000) / 1000;
        let r = &mut self.buf[..REC];
        r[0..4].copy_from_slice(&(secs as u32).to_le_bytes());
        r[4..8].copy_from_slice(&(usec as u32).to_le_bytes());
        r[8..12].copy_from_slice(&(frame_len as u32).to_le_bytes());
        r[12..16].copy_from_slice(&(frame_len as u32).to_le_bytes());
        REC + frame_len
    }
}

#[inline]
fn ports(net: &Net, up: bool) -> (u16, u16) {
    if up {
        (net.sub_port, net.srv_port)
    } else {
        (net.srv_port, net.sub_port)
    }
}

/// Unfolded one's-complement sum of the transport pseudo-header.
/// Source and destination only enter as a sum, so the direction does not matter.
fn pseudo_sum(net: &Net, proto: u8, l4_len: usize) -> u64 {
    let n = if net.v6 { 16 } else { 4 };
    sum_words(&net.sub_ip[..n]) + sum_words(&net.srv_ip[..n]) + u64::from(proto) + l4_len as u64
}

/// Unfolded one's-complement sum of `data` as big-endian 16-bit words (odd tail padded).
/// 32-bit words are summed into 64 bits; since 2^16 = 1 (mod 2^16 - 1) the fold is the same.
#[inline]
pub(crate) fn sum_words(data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    let mut acc: u64 = 0;
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    acc
}

/// Fold a sum to 16 bits and complement it.
#[inline]
pub(crate) fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example bytes sum to ddf2 (before complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum_words(&data)), !0xddf2);
        // Odd length: trailing byte is the high half of a word.
        assert_eq!(fold(sum_words(&[0x12])), !0x1200);
    }
}
