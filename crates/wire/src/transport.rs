//! Transport headers: TCP (RFC 9293), UDP (RFC 768), SCTP (RFC 9260), ICMP/ICMPv6, and the
//! hand-over to tunnel decapsulation for IP-in-IP, GRE and UDP-based tunnels.

use crate::reader::Be;
use crate::{tunnel, DecodeError, Decoded, Frag, PacketMeta};

pub(crate) use crate::proto::{GRE, ICMP, ICMPV6, IPV4_IN_IP, IPV6_IN_IP, SCTP, TCP, UDP};

/// Whether `proto` carries port numbers in [`PacketMeta`].
pub fn has_ports(proto: u8) -> bool {
    matches!(proto, TCP | UDP | SCTP)
}

const TRUNC: DecodeError = DecodeError::TruncatedTransport;

/// Decode the transport header of protocol `proto`. `l4` is the captured part of the IP payload,
/// `l4_len` its on-wire length per the IP header (`l4.len() <= l4_len`). The IP layer has set the
/// addresses, `ip_len` and `frag` (a later fragment never gets here) and zeroed ports and flags.
pub(crate) fn transport(
    proto: u8,
    l4: &[u8],
    l4_len: u32,
    meta: &mut PacketMeta,
    depth: u8,
) -> Result<Decoded, DecodeError> {
    meta.proto = proto;
    match proto {
        TCP => {
            // Only the fixed 20 bytes must be captured; options cut by snaplen are fine.
            let [s0, s1, d0, d1, _, _, _, _, _, _, _, _, off, flags, _, _, _, _, _, _] =
                l4.arr::<20>(0).ok_or(TRUNC)?;
            let hl = u32::from(off >> 4) * 4;
            // A first fragment may end inside the TCP options; a whole packet may not.
            if hl < 20 || (hl > l4_len && meta.frag == Frag::None) {
                return Err(DecodeError::BadTransport);
            }
            meta.sport = u16::from_be_bytes([s0, s1]);
            meta.dport = u16::from_be_bytes([d0, d1]);
            meta.tcp_flags = flags;
            meta.payload_len = l4_len.saturating_sub(hl);
            Ok(Decoded::Ip)
        }
        UDP => {
            let [s0, s1, d0, d1, _, _, _, _] = l4.arr::<8>(0).ok_or(TRUNC)?;
            meta.sport = u16::from_be_bytes([s0, s1]);
            meta.dport = u16::from_be_bytes([d0, d1]);
            meta.payload_len = l4_len.saturating_sub(8);
            if meta.frag == Frag::None {
                tunnel::udp(l4.rest(8).unwrap_or_default(), meta, depth)
            } else {
                Ok(Decoded::Ip)
            }
        }
        SCTP => {
            // Common header: ports, verification tag, checksum.
            let [s0, s1, d0, d1, ..] = l4.arr::<12>(0).ok_or(TRUNC)?;
            meta.sport = u16::from_be_bytes([s0, s1]);
            meta.dport = u16::from_be_bytes([d0, d1]);
            meta.payload_len = l4_len.saturating_sub(12);
            Ok(Decoded::Ip)
        }
        ICMP | ICMPV6 => {
            // Type, code, checksum and 4 bytes of message-specific header: the type and code
            // are kept (flow keys stay port-less; the Community ID hashes them as ports).
            meta.icmp = l4.arr::<2>(0);
            meta.payload_len = l4_len.saturating_sub(8);
            Ok(Decoded::Ip)
        }
        IPV4_IN_IP | IPV6_IN_IP | GRE if meta.frag == Frag::None => {
            meta.payload_len = l4_len;
            if proto == GRE {
                tunnel::gre(l4, meta, depth)
            } else {
                tunnel::ip_in_ip(proto, l4, meta, depth)
            }
        }
        // ESP, mobility, no-next-header, OSPF, ... and fragmented tunnels: no ports.
        _ => {
            meta.payload_len = l4_len;
            Ok(Decoded::Ip)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{DecodeError, LinkType};

    #[test]
    fn tcp_flags_and_header_length() {
        for flags in [0x02u8, 0x12, 0x10, 0x18, 0x11, 0x04, 0xC2, 0x29] {
            let m = ok(LinkType::RAW, &v4(6, &tcp(1234, 80, flags, b"payload")));
            assert_eq!(
                (m.tcp_flags, m.payload_len, m.sport, m.dport),
                (flags, 7, 1234, 80)
            );
        }
        // Data offset 8: 12 bytes of options (MSS, SACK-permitted, timestamps stub).
        let mut seg = tcp(
            1,
            2,
            0x02,
            &[2, 4, 5, 0xB4, 4, 2, 1, 1, 1, 1, 1, 0, 9, 9, 9, 9],
        );
        seg[12] = 0x80;
        let m = ok(LinkType::RAW, &v6(6, &seg));
        assert_eq!((m.tcp_flags, m.payload_len), (0x02, 4));
        // Options cut by the snaplen are fine; the fixed header cut is not.
        let p = v6(6, &seg);
        assert_eq!(ok(LinkType::RAW, &p[..62]).payload_len, 4);
        for cut in 40..60 {
            assert_eq!(
                res(LinkType::RAW, &p[..cut]),
                Err(DecodeError::TruncatedTransport),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn tcp_bad_data_offset() {
        let mut seg = tcp(1, 2, 0x02, b"");
        seg[12] = 0x40;
        assert_eq!(
            res(LinkType::RAW, &v4(6, &seg)),
            Err(DecodeError::BadTransport)
        );
        // Header longer than the IP payload.
        seg[12] = 0xF0;
        assert_eq!(
            res(LinkType::RAW, &v4(6, &seg)),
            Err(DecodeError::BadTransport)
        );
        // ... unless the packet is a first fragment: the options continue in the next one.
        let mut p = v4(6, &seg);
        p[6] = 0x20;
        let m = ok(LinkType::RAW, &p);
        assert_eq!((m.sport, m.dport, m.payload_len), (1, 2, 0));
    }

    #[test]
    fn udp_ports_and_truncation() {
        let p = v4(17, &udp(68, 67, &[0; 300]));
        let m = ok(LinkType::RAW, &p);
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 68, 67));
        assert_eq!((m.ip_len, m.payload_len), (328, 300));
        for cut in 20..28 {
            assert_eq!(
                res(LinkType::RAW, &p[..cut]),
                Err(DecodeError::TruncatedTransport),
                "cut {cut}"
            );
        }
        // The IP length says the datagram ends before the UDP header does.
        let mut p = v4(17, &udp(1, 2, b""));
        p[3] = 24;
        assert_eq!(res(LinkType::RAW, &p), Err(DecodeError::TruncatedTransport));
    }

    #[test]
    fn sctp_common_header() {
        let sctp = [0x0B, 0x59, 0x0B, 0x59, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 4];
        let m = ok(LinkType::RAW, &v4(132, &sctp));
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 132, 2905, 2905));
        assert_eq!(m.payload_len, 4);
        assert_eq!(
            res(LinkType::RAW, &v4(132, &sctp[..11])),
            Err(DecodeError::TruncatedTransport)
        );
    }

    #[test]
    fn icmp_and_icmpv6_have_no_ports() {
        let echo = [8, 0, 0xF7, 0xFF, 0, 1, 0, 1, b'p', b'i', b'n', b'g'];
        let m = ok(LinkType::RAW, &v4(1, &echo));
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 1, 0, 0));
        assert_eq!((m.payload_len, m.icmp), (4, Some([8, 0])));
        let m = ok(LinkType::RAW, &v6(58, &[135, 0, 0, 0, 0, 0, 0, 0]));
        assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 58, 0, 0));
        assert_eq!((m.payload_len, m.icmp), (0, Some([135, 0])));
        // Cut before the code: no type and code, the packet still counts.
        let m = ok(LinkType::RAW, &v4(1, &[3]));
        assert_eq!((m.proto, m.icmp), (1, None));
        // Other protocols have none.
        assert_eq!(
            ok(LinkType::RAW, &v4(17, &[0, 1, 0, 2, 0, 8, 0, 0])).icmp,
            None
        );
    }

    #[test]
    fn other_protocols_have_no_ports() {
        let m = ok(LinkType::RAW, &v4(89, &[2, 1, 0, 44, 1, 1, 1, 1]));
        assert_eq!((m.proto, m.sport, m.dport, m.payload_len), (89, 0, 0, 8));
        // A first fragment of GRE is not decapsulated.
        let mut p = v4(47, &[0, 0, 0x08, 0x00, 0x45]);
        p[6] = 0x20;
        let m = ok(LinkType::RAW, &p);
        assert_eq!((m.proto, m.tunnel_count), (47, 0));
    }
}
