//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers, IPv6 extension headers and fragmentation.
//!
//! Lengths always come from the IP header (on-wire), never from the captured size; the slice
//! handed to the transport layer is the captured part of the packet, without link padding.

use std::net::{IpAddr, Ipv4Addr};

use crate::reader::{len32, Be};
use crate::{transport, DecodeError, Decoded, Frag, PacketMeta};

/// Most IPv6 extension headers walked before giving up with [`DecodeError::TooDeep`].
const MAX_EXT_HEADERS: usize = 16;

const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const AUTH: u8 = 51;
const DEST_OPTS: u8 = 60;

const TRUNC: DecodeError = DecodeError::TruncatedIp;

/// An IPv4 or IPv6 packet, chosen by the version nibble.
pub(crate) fn ip_any(buf: &[u8], meta: &mut PacketMeta, depth: u8) -> Result<Decoded, DecodeError> {
    match buf.be8(0).ok_or(TRUNC)? >> 4 {
        4 => ipv4(buf, meta, depth),
        6 => ipv6(buf, meta, depth),
        _ => Err(DecodeError::BadIpVersion),
    }
}

/// Record the network-layer facts and reset everything an outer layer may have left behind.
#[inline(always)]
fn set_l3(meta: &mut PacketMeta, src: IpAddr, dst: IpAddr, ip_len: u32, frag: Frag) {
    meta.src = src;
    meta.dst = dst;
    meta.ip_len = ip_len;
    meta.frag = frag;
    meta.sport = 0;
    meta.dport = 0;
    meta.tcp_flags = 0;
}

/// An IPv4 header (RFC 791); options are skipped.
pub(crate) fn ipv4(buf: &[u8], meta: &mut PacketMeta, depth: u8) -> Result<Decoded, DecodeError> {
    let vihl = buf.be8(0).ok_or(TRUNC)?;
    if vihl >> 4 != 4 {
        return Err(DecodeError::BadIpVersion);
    }
    let hl = usize::from(vihl & 0x0f) * 4;
    if hl < 20 {
        return Err(DecodeError::BadIpHeaderLen);
    }
    let [_, _, t0, t1, i0, i1, f0, f1, _ttl, proto, _, _, s0, s1, s2, s3, d0, d1, d2, d3] =
        buf.arr::<20>(0).ok_or(TRUNC)?;
    if buf.len() < hl {
        return Err(TRUNC);
    }
    let total = match u16::from_be_bytes([t0, t1]) {
        // TSO/GSO captures leave the total length 0: the packet is what was handed to the NIC.
        0 => len32(buf),
        n => u32::from(n),
    };
    let hl32 = u32::from(vihl & 0x0f) * 4;
    if total < hl32 {
        return Err(DecodeError::BadIpLength);
    }
    let id = u32::from(u16::from_be_bytes([i0, i1]));
    let ff = u16::from_be_bytes([f0, f1]);
    let frag = if ff & 0x1fff != 0 {
        Frag::Later { id }
    } else if ff & 0x2000 != 0 {
        Frag::First { id }
    } else {
        Frag::None
    };
    let src = IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3));
    let dst = IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3));
    set_l3(meta, src, dst, total, frag);
    let l4_len = total - hl32;
    // The captured part of the payload, without any link-layer padding behind the packet.
    let end = usize::try_from(total).unwrap_or(usize::MAX).min(buf.len());
    let l4 = buf.get(hl..end).unwrap_or_default();
    if let Frag::Later { .. } = frag {
        meta.proto = proto;
        meta.payload_len = l4_len;
        return Ok(Decoded::Ip);
    }
    chain(proto, l4, l4_len, meta, depth, false)
}

/// An IPv6 header (RFC 8200) and its extension headers.
pub(crate) fn ipv6(buf: &[u8], meta: &mut PacketMeta, depth: u8) -> Result<Decoded, DecodeError> {
    if buf.be8(0).ok_or(TRUNC)? >> 4 != 6 {
        return Err(DecodeError::BadIpVersion);
    }
    let plen = buf.be16(4).ok_or(TRUNC)?;
    let next = buf.be8(6).ok_or(TRUNC)?;
    let src = buf.ipv6(8).ok_or(TRUNC)?;
    let dst = buf.ipv6(24).ok_or(TRUNC)?;
    let avail = len32(buf).saturating_sub(40);
    // Payload length 0: a jumbogram (RFC 2675) or a TSO/GSO capture; use what is there.
    let plen = if plen == 0 { avail } else { u32::from(plen) };
    set_l3(meta, src, dst, plen.saturating_add(40), Frag::None);
    let end = usize::try_from(plen)
        .unwrap_or(usize::MAX)
        .min(buf.len().saturating_sub(40));
    let rest = buf.get(40..).and_then(|r| r.get(..end)).unwrap_or_default();
    chain(next, rest, plen, meta, depth, true)
}

/// Walk extension headers starting at `next` (only AH for IPv4), then hand over to the transport
/// layer. `rest` is the captured remainder and `l4_len` its on-wire length.
fn chain(
    mut next: u8,
    mut rest: &[u8],
    mut l4_len: u32,
    meta: &mut PacketMeta,
    depth: u8,
    v6: bool,
) -> Result<Decoded, DecodeError> {
    for _ in 0..MAX_EXT_HEADERS {
        let hlen = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTS if v6 => {
                let hlen = (usize::from(rest.be8(1).ok_or(TRUNC)?) + 1) * 8;
                let hdr = rest.get(..hlen).ok_or(TRUNC)?;
                if next == ROUTING {
                    if let Some(final_dst) = routing_final_destination(hdr) {
                        meta.dst = final_dst;
                    }
                } else if next == DEST_OPTS {
                    if let Some(home) = home_address(hdr) {
                        meta.src = home;
                    }
                }
                hlen
            }
            // RFC 4302: the AH length is in 4-byte units, minus 2.
            AUTH => (usize::from(rest.be8(1).ok_or(TRUNC)?) + 2) * 4,
            FRAGMENT if v6 => {
                let [nh, _, o0, o1, i0, i1, i2, i3] = rest.arr::<8>(0).ok_or(TRUNC)?;
                let id = u32::from_be_bytes([i0, i1, i2, i3]);
                let off = u16::from_be_bytes([o0, o1]);
                rest = rest.rest(8).ok_or(TRUNC)?;
                l4_len = l4_len.saturating_sub(8);
                next = nh;
                if off >> 3 != 0 {
                    meta.frag = Frag::Later { id };
                    meta.proto = nh;
                    meta.payload_len = l4_len;
                    return Ok(Decoded::Ip);
                }
                if off & 1 != 0 {
                    meta.frag = Frag::First { id };
                }
                continue;
            }
            _ => return transport::transport(next, rest, l4_len, meta, depth),
        };
        next = rest.be8(0).ok_or(TRUNC)?;
        rest = rest.rest(hlen).ok_or(TRUNC)?;
        l4_len = l4_len.saturating_sub(u32::try_from(hlen).unwrap_or(u32::MAX));
    }
    Err(DecodeError::TooDeep)
}

/// The final destination named by a routing header that still has segments to visit: the last
/// address of a type 0 (RFC 2460, deprecated) or type 2 (RFC 6275) header, or Segment List\[0\] of
/// a segment routing header (type 4, RFC 8754). Like the transport checksum's pseudo-header
/// (RFC 8200 section 8.1), the flow is keyed on the end-to-end destination.
fn routing_final_destination(hdr: &[u8]) -> Option<IpAddr> {
    let [_, units, kind, segments_left] = hdr.arr::<4>(0)?;
    if segments_left == 0 {
        return None;
    }
    let addresses = usize::from(units) / 2;
    match kind {
        0 | 2 => hdr.ipv6(8 + addresses.checked_sub(1)? * 16),
        4 => hdr.ipv6(8),
        _ => None,
    }
}

/// The Home Address destination option (type 0xC9, RFC 6275 section 6.3): a mobile node's
/// packets are keyed on its home address, as the transport checksum is.
fn home_address(hdr: &[u8]) -> Option<IpAddr> {
    let mut off = 2usize;
    while let Some(kind) = hdr.be8(off) {
        if kind == 0 {
            off += 1; // Pad1
            continue;
        }
        let len = usize::from(hdr.be8(off + 1)?);
        if kind == 0xC9 && len == 16 {
            return hdr.ipv6(off + 2);
        }
        off += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{DecodeError, Decoded, Frag, LinkType};

    #[test]
    fn raw_links_choose_by_version() {
        let ip4 = v4(17, &udp(1, 2, b"abc"));
        let ip6 = v6(17, &udp(1, 2, b"abc"));
        for link in [
            LinkType::RAW,
            LinkType::RAW_12,
            LinkType::RAW_14,
            LinkType::IPV4,
            LinkType::IPV6,
        ] {
            assert_eq!(ok(link, &ip4).ip_len, 31);
            assert_eq!(ok(link, &ip6).ip_len, 51);
            assert_eq!(res(link, &[0x50, 0, 0]), Err(DecodeError::BadIpVersion));
            assert_eq!(res(link, &[]), Err(DecodeError::TruncatedIp));
        }
        assert_eq!(ok(LinkType::IPV4, &ip4).payload_len, 3);
        assert_eq!(ok(LinkType::IPV6, &ip6).payload_len, 3);
        // The version nibble decides even where the link type promises one version.
        assert_eq!(ok(LinkType::IPV4, &ip6).ip_len, 51);
        assert_eq!(ok(LinkType::IPV6, &ip4).ip_len, 31);
        assert_eq!(
            res(LinkType::IPV4, &[0x50, 0, 0]),
            Err(DecodeError::BadIpVersion)
        );
        assert_eq!(
            res(LinkType(9999), &ip4),
            Err(DecodeError::UnsupportedLinkType(9999))
        );
    }

    #[test]
    fn ipv4_options_are_skipped() {
        // IHL 7: 8 bytes of options (NOP NOP + record route stub).
        let opts = [1, 1, 7, 3, 4, 0, 0, 0];
        let seg = udp(53, 3333, b"answer");
        let mut p = v4(17, &cat(&[&opts, &seg]));
        p[0] = 0x47;
        let m = ok(LinkType::RAW, &p);
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 53, 3333));
        assert_eq!((m.ip_len, m.payload_len), (42, 6));
    }

    #[test]
    fn ipv4_bad_headers() {
        let mut p = v4(17, &udp(1, 2, b""));
        p[0] = 0x44;
        assert_eq!(res(LinkType::RAW, &p), Err(DecodeError::BadIpHeaderLen));
        let mut p = v4(17, &udp(1, 2, b""));
        p[3] = 19;
        assert_eq!(res(LinkType::RAW, &p), Err(DecodeError::BadIpLength));
        let mut p = v4(17, &udp(1, 2, b""));
        p[0] = 0x4F; // 60-byte header, total length 28
        p.resize(60, 0);
        assert_eq!(res(LinkType::RAW, &p), Err(DecodeError::BadIpLength));
        // Header cut by the capture: inside the fixed part and inside the options.
        let p = v4(17, &udp(1, 2, b""));
        for cut in 1..20 {
            assert_eq!(
                res(LinkType::RAW, &p[..cut]),
                Err(DecodeError::TruncatedIp),
                "cut {cut}"
            );
        }
        let mut p = v4(17, &udp(1, 2, b""));
        p[0] = 0x46;
        assert_eq!(res(LinkType::RAW, &p[..22]), Err(DecodeError::TruncatedIp));
    }

    #[test]
    fn ipv4_fragments() {
        // First fragment: offset 0, MF, id 0xBEEF; ports decoded, lengths from the header.
        let mut p = v4(17, &udp(5353, 5353, &[0; 100]));
        p[4..8].copy_from_slice(&[0xBE, 0xEF, 0x20, 0x00]);
        let m = ok(LinkType::RAW, &p);
        assert_eq!(m.frag, Frag::First { id: 0xBEEF });
        assert_eq!(
            (m.sport, m.dport, m.ip_len, m.payload_len),
            (5353, 5353, 128, 100)
        );
        // Later fragment: offset 185*8, no transport header, payload = everything after IP.
        let mut p = v4(17, &[0xAB; 60]);
        p[4..8].copy_from_slice(&[0xBE, 0xEF, 0x00, 185]);
        let m = ok(LinkType::RAW, &p);
        assert_eq!(m.frag, Frag::Later { id: 0xBEEF });
        assert_eq!(
            (m.proto, m.sport, m.dport, m.ip_len, m.payload_len),
            (17, 0, 0, 80, 60)
        );
        // A later fragment too short to hold a UDP header is still fine.
        let mut p = v4(6, &[1, 2]);
        p[6] = 0x20;
        p[7] = 1;
        assert_eq!(ok(LinkType::RAW, &p).frag, Frag::Later { id: 0 });
        // DF alone is not a fragment.
        let mut p = v4(6, &tcp(1, 2, 0x02, b""));
        p[6] = 0x40;
        assert_eq!(ok(LinkType::RAW, &p).frag, Frag::None);
    }

    #[test]
    fn tso_zero_total_length() {
        let mut p = v4(6, &tcp(1, 2, 0x18, &[0; 3000]));
        p[2] = 0;
        p[3] = 0;
        let m = ok(LinkType::RAW, &p);
        assert_eq!((m.ip_len, m.payload_len), (3040, 3000));
        let mut p = v6(6, &tcp(1, 2, 0x18, &[0; 3000]));
        p[4] = 0;
        p[5] = 0;
        let m = ok(LinkType::RAW, &p);
        assert_eq!((m.ip_len, m.payload_len), (3060, 3000));
    }

    #[test]
    fn snaplen_cut_keeps_on_wire_lengths() {
        let p = v4(6, &tcp(1, 2, 0x10, &[0; 1400]));
        let m = ok(LinkType::RAW, &p[..60]);
        assert_eq!((m.ip_len, m.payload_len), (1440, 1400));
        let p = v6(17, &udp(1, 2, &[0; 1000]));
        let m = ok(LinkType::RAW, &p[..48]);
        assert_eq!((m.ip_len, m.payload_len), (1048, 1000));
    }

    #[test]
    fn ipv6_extension_headers() {
        let seg = tcp(8080, 50000, 0x19, b"xyz");
        let ah = [6, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8]; // 20 bytes
        let dst = [51, 0, 1, 4, 0, 0, 0, 0]; // 8 bytes: PadN
        let frag = [60, 0, 0, 1, 0xDE, 0xAD, 0xBE, 0xEF]; // offset 0, M
        let rh = [
            44, 2, 0, 0, 0, 0, 0, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
        ]; // 24
        let hbh = [43, 0, 1, 4, 0, 0, 0, 0]; // 8
        let p = v6(0, &cat(&[&hbh, &rh, &frag, &dst, &ah, &seg]));
        let m = ok(LinkType::RAW, &p);
        assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 6, 8080, 50000));
        assert_eq!(m.frag, Frag::First { id: 0xDEAD_BEEF });
        assert_eq!(m.tcp_flags, 0x19);
        assert_eq!((m.ip_len, m.payload_len), (40 + 68 + 23, 3));
        // Cut inside the routing header.
        assert_eq!(res(LinkType::RAW, &p[..50]), Err(DecodeError::TruncatedIp));
    }

    #[test]
    fn ipv6_home_address_and_routing_final_destination() {
        let addr = |last: u8| {
            let mut a = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            a[15] = last;
            a
        };
        // Destination options: PadN(2 bytes), Home Address 2001:db8::99, then routing type 2
        // (segments left 1) naming 2001:db8::77 as the final destination.
        let dst_opts = cat(&[&[43, 2, 1, 2, 0, 0, 0xC9, 16], &addr(0x99)]); // 24 bytes
        let rh2 = cat(&[&[17, 2, 2, 1, 0, 0, 0, 0], &addr(0x77)]);
        let m = ok(
            LinkType::RAW,
            &v6(60, &cat(&[&dst_opts, &rh2, &udp(5, 6, b"")])),
        );
        assert_eq!(flow(&m), ("2001:db8::99", "2001:db8::77", 17, 5, 6));
        // Type 0 with two addresses: the last one is the final destination.
        let rh0 = cat(&[&[6, 4, 0, 2, 0, 0, 0, 0], &addr(0x10), &addr(0x20)]);
        let m = ok(LinkType::RAW, &v6(43, &cat(&[&rh0, &tcp(1, 2, 2, b"")])));
        assert_eq!(flow(&m).1, "2001:db8::20");
        // Segment routing (type 4): Segment List[0]; with no segments left, the header's own.
        let srh = cat(&[&[17, 4, 4, 1, 1, 0, 0, 0], &addr(0x44), &addr(0x55)]);
        assert_eq!(
            flow(&ok(LinkType::RAW, &v6(43, &cat(&[&srh, &udp(1, 2, b"")])))).1,
            "2001:db8::44"
        );
        let srh = cat(&[&[17, 4, 4, 0, 1, 0, 0, 0], &addr(0x44), &addr(0x55)]);
        assert_eq!(
            flow(&ok(LinkType::RAW, &v6(43, &cat(&[&srh, &udp(1, 2, b"")])))).1,
            "2001:db8::2"
        );
    }

    #[test]
    fn ipv6_later_fragment_and_atomic() {
        let p = v6(44, &cat(&[&[17, 0, 0x05, 0x00, 0, 0, 0, 9], &[0u8; 32]]));
        let m = ok(LinkType::RAW, &p);
        assert_eq!(m.frag, Frag::Later { id: 9 });
        assert_eq!(
            (m.proto, m.sport, m.dport, m.ip_len, m.payload_len),
            (17, 0, 0, 80, 32)
        );
        // Atomic fragment (offset 0, no M): not a fragment.
        let p = v6(44, &cat(&[&[17, 0, 0, 0, 0, 0, 0, 9], &udp(1, 2, b"")]));
        let m = ok(LinkType::RAW, &p);
        assert_eq!((m.frag, m.sport), (Frag::None, 1));
    }

    #[test]
    fn ipv6_stops_at_esp_mobility_and_no_next() {
        for (nh, payload) in [
            (50u8, &[0xAAu8; 24][..]),
            (135, &[59, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]),
            (59, &[][..]),
        ] {
            let m = ok(LinkType::RAW, &v6(nh, payload));
            assert_eq!((m.proto, m.sport, m.dport), (nh, 0, 0));
            assert_eq!(m.payload_len as usize, payload.len());
        }
        // ESP behind a destination options header.
        let m = ok(
            LinkType::RAW,
            &v6(60, &cat(&[&[50, 0, 1, 4, 0, 0, 0, 0], &[0; 16]])),
        );
        assert_eq!((m.proto, m.payload_len), (50, 16));
    }

    #[test]
    fn ipv6_too_many_extension_headers() {
        let mut chain = Vec::new();
        for _ in 0..20 {
            chain.extend_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(
            res(LinkType::RAW, &v6(60, &chain)),
            Err(DecodeError::TooDeep)
        );
    }

    #[test]
    fn ipv6_truncated_fixed_header() {
        let p = v6(17, &udp(1, 2, b""));
        for cut in 1..40 {
            assert_eq!(
                res(LinkType::RAW, &p[..cut]),
                Err(DecodeError::TruncatedIp),
                "cut {cut}"
            );
        }
        assert_eq!(
            res(LinkType::RAW, &p[..40]),
            Err(DecodeError::TruncatedTransport)
        );
    }

    #[test]
    fn ipv4_ah() {
        let ah = [
            17, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let m = ok(
            LinkType::RAW,
            &v4(51, &cat(&[&ah, &udp(500, 4500, b"ike")])),
        );
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 500, 4500));
        assert_eq!(m.payload_len, 3);
        assert_eq!(
            res(LinkType::RAW, &v4(51, &[17])),
            Err(DecodeError::TruncatedIp)
        );
        let _ = Decoded::Ip;
    }
}
