//! Tunnel decapsulation: IP-in-IP (RFC 2003/4213/2473), GRE (RFC 2784/2890, PPTP's enhanced GRE
//! RFC 2637), ERSPAN types I-III, and the UDP tunnels VXLAN (RFC 7348), Geneve (RFC 8926),
//! GTP-U (3GPP TS 29.281) and Teredo (RFC 4380).
//!
//! Every stripped layer is recorded in [`PacketMeta::tunnels`] with the endpoints of the IP header
//! that carried it. Policy when the inner packet is not usable:
//! * UDP tunnels: any failure (short, bad version, not IP) reports the outer UDP datagram as the
//!   flow, like a dissector that decides the port was not really that tunnel.
//! * IP-in-IP and GRE: errors of the inner layers are returned; an inner frame that is well formed
//!   but not IP (ARP over TEB, PPP control, unknown GRE protocol) reports the outer packet.
//! * [`DecodeError::TooDeep`] is always returned.

use crate::decode::deeper;
use crate::link::{self, ET_IPV4, ET_IPV6, ET_MPLS_MC, ET_MPLS_UC, ET_TEB};
use crate::reader::Be;
use crate::transport::IPV4_IN_IP;
use crate::{ip, DecodeError, Decoded, PacketMeta, TunnelKind, TunnelLayer};

/// VXLAN's IANA port.
const PORT_VXLAN: u16 = 4789;
/// Geneve's IANA port.
const PORT_GENEVE: u16 = 6081;
/// GTP-U's port.
const PORT_GTPU: u16 = 2152;
/// Teredo's port.
const PORT_TEREDO: u16 = 3544;
/// GRE-in-UDP's port (RFC 8086).
const PORT_GRE_UDP: u16 = 4754;

/// GRE protocol type: PPP (PPTP).
const GRE_PPP: u16 = 0x880B;
/// GRE protocol type: ERSPAN type I/II.
const GRE_ERSPAN_2: u16 = 0x88BE;
/// GRE protocol type: ERSPAN type III.
const GRE_ERSPAN_3: u16 = 0x22EB;

/// What follows a tunnel header.
#[derive(Clone, Copy)]
enum Inner<'a> {
    V4(&'a [u8]),
    V6(&'a [u8]),
    AnyIp(&'a [u8]),
    Ether(&'a [u8]),
    Mpls(&'a [u8]),
}

/// Strip one tunnel layer: record it and decode what it carries, applying the fallback policy
/// described in the module docs. `lenient` selects the UDP-tunnel policy.
fn enter(
    meta: &mut PacketMeta,
    kind: TunnelKind,
    id: Option<u32>,
    inner: Inner<'_>,
    depth: u8,
    lenient: bool,
) -> Result<Decoded, DecodeError> {
    let depth = deeper(depth)?;
    // Only paths that can fall back need the outer state; inner IP never yields NotIp.
    let saved =
        (lenient || matches!(inner, Inner::Ether(_) | Inner::Mpls(_))).then(|| meta.clone());
    meta.push_tunnel(TunnelLayer {
        kind,
        outer_src: meta.src,
        outer_dst: meta.dst,
        outer_sport: meta.sport,
        outer_dport: meta.dport,
        id,
    });
    let result = match inner {
        Inner::V4(b) => ip::ipv4(b, meta, depth),
        Inner::V6(b) => ip::ipv6(b, meta, depth),
        Inner::AnyIp(b) => ip::ip_any(b, meta, depth),
        Inner::Ether(b) => link::ethernet(b, meta, depth),
        Inner::Mpls(b) => link::mpls(b, meta, depth),
    };
    match (result, saved) {
        (Ok(Decoded::Ip), _) | (Err(DecodeError::TooDeep), _) => result,
        (Ok(Decoded::NotIp), Some(outer)) => {
            *meta = outer;
            Ok(Decoded::Ip)
        }
        (Err(_), Some(outer)) if lenient => {
            *meta = outer;
            Ok(Decoded::Ip)
        }
        _ => result,
    }
}

/// IPv4 (protocol 4) or IPv6 (protocol 41) directly inside IP.
pub(crate) fn ip_in_ip(
    proto: u8,
    l4: &[u8],
    meta: &mut PacketMeta,
    depth: u8,
) -> Result<Decoded, DecodeError> {
    let inner = if proto == IPV4_IN_IP {
        Inner::V4(l4)
    } else {
        Inner::V6(l4)
    };
    enter(meta, TunnelKind::IpInIp, None, inner, depth, false)
}

/// A GRE header and its payload. Returns `Ok(Ip)` with the outer packet as the flow when the GRE
/// variant or payload is not one that is followed.
pub(crate) fn gre(l4: &[u8], meta: &mut PacketMeta, depth: u8) -> Result<Decoded, DecodeError> {
    const BAD: DecodeError = DecodeError::BadTunnel;
    let [f0, f1, p0, p1] = l4.arr::<4>(0).ok_or(BAD)?;
    let ptype = u16::from_be_bytes([p0, p1]);
    let (csum, routing, key, seq) = (
        f0 & 0x80 != 0,
        f0 & 0x40 != 0,
        f0 & 0x20 != 0,
        f0 & 0x10 != 0,
    );
    let mut off = 4usize;
    let id;
    match f1 & 0x07 {
        0 => {
            // RFC 1701 source routing is deprecated (RFC 2784); not followed.
            if routing {
                return Ok(Decoded::Ip);
            }
            // Checksum and reserved1 share one word (RFC 2784).
            off += if csum { 4 } else { 0 };
            id = if key {
                Some(l4.be32(off).ok_or(BAD)?)
            } else {
                None
            };
            off += if key { 4 } else { 0 };
            off += if seq { 4 } else { 0 };
        }
        1 => {
            // RFC 2637 enhanced GRE: key always present (payload length, call id), optional
            // sequence and acknowledgement numbers, always PPP.
            if ptype != GRE_PPP || !key || csum || routing {
                return Ok(Decoded::Ip);
            }
            id = Some(u32::from(l4.be16(6).ok_or(BAD)?));
            off = 8 + if seq { 4 } else { 0 } + if f1 & 0x80 != 0 { 4 } else { 0 };
        }
        _ => return Ok(Decoded::Ip),
    }
    let payload = l4.rest(off).ok_or(BAD)?;
    let (kind, id, inner) = match ptype {
        ET_IPV4 => (TunnelKind::Gre, id, Inner::V4(payload)),
        ET_IPV6 => (TunnelKind::Gre, id, Inner::V6(payload)),
        ET_TEB => (TunnelKind::Gre, id, Inner::Ether(payload)),
        ET_MPLS_UC | ET_MPLS_MC => (TunnelKind::Gre, id, Inner::Mpls(payload)),
        GRE_PPP => match ppp(payload).ok_or(BAD)? {
            Some(inner) => (TunnelKind::Gre, id, inner),
            None => return Ok(Decoded::Ip),
        },
        // ERSPAN type I has no header and no GRE sequence number; type II has both.
        GRE_ERSPAN_2 if !seq => (TunnelKind::Erspan, None, Inner::Ether(payload)),
        GRE_ERSPAN_2 => {
            let session = payload.be16(2).ok_or(BAD)? & 0x03ff;
            let eth = payload.rest(8).ok_or(BAD)?;
            (
                TunnelKind::Erspan,
                Some(u32::from(session)),
                Inner::Ether(eth),
            )
        }
        GRE_ERSPAN_3 => {
            let session = payload.be16(2).ok_or(BAD)? & 0x03ff;
            // The O flag (last bit of the third word) announces an 8-byte platform subheader.
            let optional = payload.be8(11).ok_or(BAD)? & 0x01 != 0;
            let eth = payload.rest(if optional { 20 } else { 12 }).ok_or(BAD)?;
            (
                TunnelKind::Erspan,
                Some(u32::from(session)),
                Inner::Ether(eth),
            )
        }
        _ => return Ok(Decoded::Ip),
    };
    enter(meta, kind, id, inner, depth, false)
}

/// A PPP frame (RFC 1661) inside enhanced GRE: optional address/control `FF 03`, then a 1- or
/// 2-byte protocol. `None` if truncated, `Some(None)` if it is not IP.
fn ppp(b: &[u8]) -> Option<Option<Inner<'_>>> {
    let b = if b.be16(0)? == 0xFF03 { b.rest(2)? } else { b };
    // Protocol-field compression (RFC 1661 section 6.5): an odd first byte is a 1-byte protocol.
    let first = b.be8(0)?;
    let (proto, rest) = if first & 1 == 1 {
        (u16::from(first), b.rest(1)?)
    } else {
        (b.be16(0)?, b.rest(2)?)
    };
    Some(match proto {
        0x0021 => Some(Inner::V4(rest)),
        0x0057 => Some(Inner::V6(rest)),
        _ => None,
    })
}

/// A UDP datagram whose ports may announce a tunnel. `payload` is the captured UDP payload; the
/// outer flow (addresses, ports, lengths) is already in `meta`. Anything that does not parse as
/// the announced tunnel leaves the outer datagram as the flow.
pub(crate) fn udp(
    payload: &[u8],
    meta: &mut PacketMeta,
    depth: u8,
) -> Result<Decoded, DecodeError> {
    if meta.dport == PORT_GRE_UDP || meta.sport == PORT_GRE_UDP {
        // RFC 8086: the UDP payload is a GRE header; GRE's own rules apply from here.
        return match gre(payload, meta, depth) {
            Err(DecodeError::BadTunnel) => Ok(Decoded::Ip),
            other => other,
        };
    }
    let found = match meta.dport {
        PORT_VXLAN => vxlan(payload),
        PORT_GENEVE => geneve(payload),
        PORT_GTPU => gtpu(payload),
        PORT_TEREDO => teredo(payload),
        _ => match meta.sport {
            PORT_VXLAN => vxlan(payload),
            PORT_GENEVE => geneve(payload),
            PORT_GTPU => gtpu(payload),
            PORT_TEREDO => teredo(payload),
            _ => return Ok(Decoded::Ip),
        },
    };
    match found {
        Some((kind, id, inner)) => enter(meta, kind, id, inner, depth, true),
        None => Ok(Decoded::Ip),
    }
}

type Found<'a> = Option<(TunnelKind, Option<u32>, Inner<'a>)>;

/// VXLAN (RFC 7348): flags with I set, VNI in the upper 24 bits of the second word.
fn vxlan(b: &[u8]) -> Found<'_> {
    if b.be8(0)? & 0x08 == 0 {
        return None;
    }
    let vni = b.be32(4)? >> 8;
    Some((TunnelKind::Vxlan, Some(vni), Inner::Ether(b.rest(8)?)))
}

/// Geneve (RFC 8926): version 0, option length in 4-byte words, protocol type, VNI.
fn geneve(b: &[u8]) -> Found<'_> {
    let first = b.be8(0)?;
    if first >> 6 != 0 {
        return None;
    }
    let opts = usize::from(first & 0x3f) * 4;
    let vni = Some(b.be32(4)? >> 8);
    let rest = b.rest(8 + opts)?;
    let inner = match b.be16(2)? {
        ET_TEB => Inner::Ether(rest),
        ET_IPV4 => Inner::V4(rest),
        ET_IPV6 => Inner::V6(rest),
        _ => return None,
    };
    Some((TunnelKind::Geneve, vni, inner))
}

/// GTP-U (3GPP TS 29.281): version 1, protocol type GTP, message G-PDU (0xFF) only; optional
/// sequence/N-PDU/next-extension word, then the extension header chain, then IP.
fn gtpu(b: &[u8]) -> Found<'_> {
    let [flags, msg_type, _, _, t0, t1, t2, t3] = b.arr::<8>(0)?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || msg_type != 0xFF {
        return None;
    }
    let teid = u32::from_be_bytes([t0, t1, t2, t3]);
    let mut off = 8usize;
    if flags & 0x07 != 0 {
        let mut next = b.be8(11)?;
        off = 12;
        // Each extension header is a length byte (4-byte units, never 0) ... next type byte.
        // The chain is bounded by the packet: every step advances at least 4 bytes.
        while next != 0 {
            let len = usize::from(b.be8(off)?) * 4;
            if len == 0 {
                return None;
            }
            next = b.be8(off + len - 1)?;
            off += len;
        }
    }
    Some((TunnelKind::GtpU, Some(teid), Inner::AnyIp(b.rest(off)?)))
}

/// Teredo (RFC 4380): optional authentication indicator, optional origin indication, then IPv6.
fn teredo(b: &[u8]) -> Found<'_> {
    let mut off = 0usize;
    if b.be16(off)? == 0x0001 {
        // Indicator type, client id length, auth value length, id, auth, 8-byte nonce, confirmation.
        let id_len = usize::from(b.be8(2)?);
        let auth_len = usize::from(b.be8(3)?);
        off = 4 + id_len + auth_len + 9;
    }
    if b.be16(off)? == 0x0000 {
        off += 8;
    }
    let rest = b.rest(off)?;
    if rest.be8(0)? >> 4 != 6 {
        return None;
    }
    Some((TunnelKind::Teredo, None, Inner::V6(rest)))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use crate::testutil::*;
    use crate::{DecodeError, Decoded, LinkType, TunnelKind, TunnelLayer};

    fn layer(
        kind: TunnelKind,
        src: &str,
        dst: &str,
        sport: u16,
        dport: u16,
        id: Option<u32>,
    ) -> TunnelLayer {
        TunnelLayer {
            kind,
            outer_src: src.parse::<IpAddr>().expect("test address"),
            outer_dst: dst.parse::<IpAddr>().expect("test address"),
            outer_sport: sport,
            outer_dport: dport,
            id,
        }
    }

    fn outer4(proto: u8, payload: &[u8]) -> Vec<u8> {
        v4_addrs(proto, [192, 0, 2, 1], [198, 51, 100, 1], payload)
    }

    fn only_layer(m: &crate::PacketMeta) -> TunnelLayer {
        assert_eq!(m.tunnel_count, 1);
        m.tunnels[0].expect("one tunnel layer")
    }

    #[test]
    fn ip_in_ip_variants() {
        // 4in4
        let m = ok(LinkType::RAW, &outer4(4, &v4(6, &tcp(1, 2, 0x02, b""))));
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 1, 2));
        assert_eq!(
            only_layer(&m),
            layer(TunnelKind::IpInIp, "192.0.2.1", "198.51.100.1", 0, 0, None)
        );
        // 6in4
        let m = ok(LinkType::RAW, &outer4(41, &v6(17, &udp(3, 4, b"abc"))));
        assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 17, 3, 4));
        assert_eq!((m.ip_len, m.payload_len), (51, 3));
        assert_eq!(only_layer(&m).kind, TunnelKind::IpInIp);
        // 4in6
        let m = ok(LinkType::RAW, &v6(4, &v4(1, &[8, 0, 0, 0, 0, 0, 0, 0])));
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 1, 0, 0));
        assert_eq!(
            only_layer(&m),
            layer(TunnelKind::IpInIp, "2001:db8::1", "2001:db8::2", 0, 0, None)
        );
        // Inner errors are returned for IP-in-IP.
        assert_eq!(
            res(LinkType::RAW, &outer4(4, &v4(6, &tcp(1, 2, 2, b""))[..30])),
            Err(DecodeError::TruncatedTransport)
        );
        assert_eq!(
            res(LinkType::RAW, &outer4(4, &[0x45, 0, 0])),
            Err(DecodeError::TruncatedIp)
        );
        assert_eq!(
            res(LinkType::RAW, &outer4(41, &v4(6, &tcp(1, 2, 2, b"")))),
            Err(DecodeError::BadIpVersion)
        );
    }

    #[test]
    fn gre_plain_key_seq_checksum() {
        let inner = v4(17, &udp(1000, 53, b"query"));
        // Plain RFC 2784.
        let m = ok(
            LinkType::RAW,
            &outer4(47, &cat(&[&[0, 0, 0x08, 0x00], &inner])),
        );
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 1000, 53));
        assert_eq!(
            only_layer(&m),
            layer(TunnelKind::Gre, "192.0.2.1", "198.51.100.1", 0, 0, None)
        );
        // Checksum + key + sequence (RFC 2890).
        let hdr = [
            0xB0, 0, 0x08, 0x00, 0xAB, 0xCD, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 7,
        ];
        let m = ok(LinkType::RAW, &outer4(47, &cat(&[&hdr, &inner])));
        assert_eq!(flow(&m).4, 53);
        assert_eq!(only_layer(&m).id, Some(0x0102));
        // Key only, carrying IPv6.
        let hdr = [0x20, 0, 0x86, 0xDD, 0, 0, 0, 42];
        let m = ok(
            LinkType::RAW,
            &v6(47, &cat(&[&hdr, &v6(58, &[128, 0, 0, 0, 0, 1, 0, 1])])),
        );
        assert_eq!((m.proto, only_layer(&m).id), (58, Some(42)));
        // Sequence only.
        let hdr = [0x10, 0, 0x08, 0x00, 0, 0, 0, 1];
        assert_eq!(
            ok(LinkType::RAW, &outer4(47, &cat(&[&hdr, &inner]))).dport,
            53
        );
        // Truncated GRE header, inner errors are returned.
        assert_eq!(
            res(LinkType::RAW, &outer4(47, &[0x30, 0, 0x08, 0x00, 0, 0])),
            Err(DecodeError::BadTunnel)
        );
        assert_eq!(
            res(LinkType::RAW, &outer4(47, &[0, 0, 0x08])),
            Err(DecodeError::BadTunnel)
        );
        assert_eq!(
            res(
                LinkType::RAW,
                &outer4(47, &cat(&[&[0, 0, 0x08, 0x00], &inner[..24]]))
            ),
            Err(DecodeError::TruncatedTransport)
        );
        // Unknown protocol type or GRE version: the outer packet is the flow.
        for hdr in [
            [0u8, 0, 0x12, 0x34],
            [0, 3, 0x08, 0x00],
            [0x40, 0, 0x08, 0x00],
        ] {
            let m = ok(LinkType::RAW, &outer4(47, &cat(&[&hdr, &inner])));
            assert_eq!((m.proto, m.tunnel_count, flow(&m).0), (47, 0, "192.0.2.1"));
        }
    }

    #[test]
    fn gre_teb_and_mpls() {
        let frame = eth(
            0x8100,
            &cat(&[&[0, 9, 0x08, 0x00], &v4(6, &tcp(22, 60000, 0x18, b"ssh"))]),
        );
        let m = ok(
            LinkType::ETHERNET,
            &eth(
                0x0800,
                &outer4(47, &cat(&[&[0x20, 0, 0x65, 0x58, 0, 0, 0, 5], &frame])),
            ),
        );
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 22, 60000));
        assert_eq!(m.vlans(), &[9]);
        assert_eq!(only_layer(&m).id, Some(5));
        // ARP over TEB: the outer GRE packet is the flow.
        let arp = eth(0x0806, &[0; 28]);
        let m = ok(
            LinkType::RAW,
            &outer4(47, &cat(&[&[0, 0, 0x65, 0x58], &arp])),
        );
        assert_eq!((m.proto, m.tunnel_count, m.vlan_count), (47, 0, 0));
        // MPLS over GRE (RFC 4023).
        let m = ok(
            LinkType::RAW,
            &outer4(
                47,
                &cat(&[
                    &[0, 0, 0x88, 0x47, 0, 0x01, 0x41, 0x40],
                    &v6(17, &udp(1, 2, b"")),
                ]),
            ),
        );
        assert_eq!(
            (m.mpls_label, m.proto, only_layer(&m).kind),
            (Some(20), 17, TunnelKind::Gre)
        );
    }

    #[test]
    fn gre_pptp_ppp() {
        // Enhanced GRE: K, S and A set; payload length 0x20, call id 0x1234.
        let ip = v4(6, &tcp(1723, 1024, 0x10, b""));
        let hdr = [
            0x30, 0x81, 0x88, 0x0B, 0x00, 0x20, 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 1,
        ];
        for ppp in [
            &[0xFF, 0x03, 0x00, 0x21][..],
            &[0x21][..],
            &[0x00, 0x21][..],
        ] {
            let m = ok(LinkType::RAW, &outer4(47, &cat(&[&hdr, ppp, &ip])));
            assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 1723, 1024));
            assert_eq!(only_layer(&m).id, Some(0x1234));
        }
        // PPP LCP: outer flow.
        let m = ok(
            LinkType::RAW,
            &outer4(47, &cat(&[&hdr, &[0xFF, 0x03, 0xC0, 0x21, 1, 1, 0, 4]])),
        );
        assert_eq!((m.proto, m.tunnel_count), (47, 0));
        // Version 1 without PPP is not followed.
        let m = ok(
            LinkType::RAW,
            &outer4(47, &cat(&[&[0x20, 0x01, 0x08, 0x00, 0, 0, 0, 0], &ip])),
        );
        assert_eq!((m.proto, m.tunnel_count), (47, 0));
    }

    #[test]
    fn erspan_types() {
        let mirrored = eth(0x0800, &v4(17, &udp(161, 40000, b"snmp")));
        // Type II: GRE with S, ERSPAN version 1, session 0x155.
        let gre2 = [0x10, 0, 0x88, 0xBE, 0, 0, 0, 1];
        let ersp2 = [0x10, 0x0A, 0x01, 0x55, 0, 0, 0, 0];
        let m = ok(
            LinkType::RAW,
            &outer4(47, &cat(&[&gre2, &ersp2, &mirrored])),
        );
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 161, 40000));
        assert_eq!(
            only_layer(&m),
            layer(
                TunnelKind::Erspan,
                "192.0.2.1",
                "198.51.100.1",
                0,
                0,
                Some(0x155)
            )
        );
        assert_eq!(
            res(LinkType::RAW, &outer4(47, &cat(&[&gre2, &ersp2[..7]]))),
            Err(DecodeError::BadTunnel)
        );
        // Type I: no sequence number, Ethernet right after GRE.
        let m = ok(
            LinkType::RAW,
            &outer4(47, &cat(&[&[0, 0, 0x88, 0xBE], &mirrored])),
        );
        assert_eq!(
            (only_layer(&m).kind, only_layer(&m).id, m.dport),
            (TunnelKind::Erspan, None, 40000)
        );
        // Type III with and without the optional platform subheader.
        let ersp3 = [0x20, 0x00, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0, 0];
        let m = ok(
            LinkType::RAW,
            &outer4(
                47,
                &cat(&[&[0x10, 0, 0x22, 0xEB, 0, 0, 0, 1], &ersp3, &mirrored]),
            ),
        );
        assert_eq!((only_layer(&m).id, m.sport), (Some(7), 161));
        let mut ersp3o = ersp3;
        ersp3o[11] = 1;
        let m = ok(
            LinkType::RAW,
            &outer4(
                47,
                &cat(&[
                    &[0x10, 0, 0x22, 0xEB, 0, 0, 0, 1],
                    &ersp3o,
                    &[0; 8],
                    &mirrored,
                ]),
            ),
        );
        assert_eq!((only_layer(&m).id, m.sport), (Some(7), 161));
    }

    #[test]
    fn vxlan() {
        let inner = eth(0x86DD, &v6(6, &tcp(443, 51000, 0x18, b"tls")));
        let hdr = [0x08, 0, 0, 0, 0x00, 0x12, 0x34, 0x00];
        let f = eth(
            0x0800,
            &outer4(17, &udp(49152, 4789, &cat(&[&hdr, &inner]))),
        );
        let m = ok(LinkType::ETHERNET, &f);
        assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 6, 443, 51000));
        assert_eq!((m.ip_len, m.payload_len, m.tcp_flags), (63, 3, 0x18));
        assert_eq!(
            only_layer(&m),
            layer(
                TunnelKind::Vxlan,
                "192.0.2.1",
                "198.51.100.1",
                49152,
                4789,
                Some(0x1234)
            )
        );
        // Recognised by the source port too.
        let m = ok(
            LinkType::RAW,
            &outer4(17, &udp(4789, 50000, &cat(&[&hdr, &inner]))),
        );
        assert_eq!(only_layer(&m).outer_sport, 4789);
        // No I flag, a cut inner frame, or ARP inside: the outer UDP datagram is the flow.
        for payload in [
            cat(&[&[0, 0, 0, 0, 0, 0x12, 0x34, 0], &inner[..]]),
            cat(&[&hdr, &inner[..30]]),
            cat(&[&hdr, &eth(0x0806, &[0; 28])]),
            hdr[..5].to_vec(),
        ] {
            let m = ok(LinkType::RAW, &outer4(17, &udp(49152, 4789, &payload)));
            assert_eq!(flow(&m), ("192.0.2.1", "198.51.100.1", 17, 49152, 4789));
            assert_eq!(
                (m.tunnel_count, m.vlan_count, m.payload_len as usize),
                (0, 0, payload.len())
            );
        }
    }

    #[test]
    fn geneve_with_options() {
        // Version 0, 2 words of options, protocol TEB, VNI 0xABCDEF.
        let hdr = [
            0x02, 0x00, 0x65, 0x58, 0xAB, 0xCD, 0xEF, 0x00, 0x01, 0x02, 0x80, 0x01, 0, 0, 0, 0,
        ];
        let inner = eth(0x0800, &v4(17, &udp(9, 10, b"g")));
        let m = ok(
            LinkType::RAW,
            &outer4(17, &udp(33333, 6081, &cat(&[&hdr, &inner]))),
        );
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 9, 10));
        assert_eq!(
            only_layer(&m),
            layer(
                TunnelKind::Geneve,
                "192.0.2.1",
                "198.51.100.1",
                33333,
                6081,
                Some(0xABCDEF)
            )
        );
        // IPv4 directly.
        let hdr = [0x00, 0x00, 0x08, 0x00, 0, 0, 1, 0];
        let m = ok(
            LinkType::RAW,
            &outer4(17, &udp(33333, 6081, &cat(&[&hdr, &v4(1, &[0; 8])]))),
        );
        assert_eq!((m.proto, only_layer(&m).id), (1, Some(1)));
        // Version 1: not Geneve.
        let m = ok(
            LinkType::RAW,
            &outer4(
                17,
                &udp(
                    33333,
                    6081,
                    &cat(&[&[0x40, 0, 0x08, 0, 0, 0, 1, 0], &v4(1, &[0; 8])]),
                ),
            ),
        );
        assert_eq!((m.proto, m.tunnel_count), (17, 0));
    }

    #[test]
    fn gtpu_with_extension_header() {
        let ip = v4(17, &udp(5060, 5060, b"INVITE"));
        // Flags: version 1, PT, E; G-PDU; TEID 0x01020304; seq, N-PDU, next ext 0x85 (PDU session).
        let hdr = [0x34, 0xFF, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0x85];
        let ext = [1, 0x10, 0x09, 0x00]; // 4 bytes, next type 0
        let m = ok(
            LinkType::RAW,
            &outer4(17, &udp(2152, 2152, &cat(&[&hdr, &ext, &ip]))),
        );
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 5060, 5060));
        assert_eq!(
            only_layer(&m),
            layer(
                TunnelKind::GtpU,
                "192.0.2.1",
                "198.51.100.1",
                2152,
                2152,
                Some(0x01020304)
            )
        );
        // Minimal 8-byte header, IPv6 inside.
        let m = ok(
            LinkType::RAW,
            &outer4(
                17,
                &udp(
                    2152,
                    2152,
                    &cat(&[
                        &[0x30, 0xFF, 0, 40, 0, 0, 0, 9],
                        &v6(58, &[1, 0, 0, 0, 0, 0, 0, 0]),
                    ]),
                ),
            ),
        );
        assert_eq!((m.proto, only_layer(&m).id), (58, Some(9)));
        // Echo request (type 1) and a zero-length extension: plain UDP.
        let m = ok(
            LinkType::RAW,
            &outer4(
                17,
                &udp(2152, 2152, &[0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0]),
            ),
        );
        assert_eq!((m.dport, m.tunnel_count), (2152, 0));
        let m = ok(
            LinkType::RAW,
            &outer4(17, &udp(2152, 2152, &cat(&[&hdr, &[0, 0, 0, 0], &ip]))),
        );
        assert_eq!((m.dport, m.tunnel_count), (2152, 0));
        // Inner not IP.
        let m = ok(
            LinkType::RAW,
            &outer4(
                17,
                &udp(2152, 2152, &[0x30, 0xFF, 0, 4, 0, 0, 0, 9, 0x11, 0, 0, 0]),
            ),
        );
        assert_eq!((m.dport, m.tunnel_count), (2152, 0));
    }

    #[test]
    fn teredo() {
        let ip6 = v6(17, &udp(1, 2, b"t"));
        let plain = outer4(17, &udp(3544, 60000, &ip6));
        let m = ok(LinkType::RAW, &plain);
        assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 17, 1, 2));
        assert_eq!(
            only_layer(&m),
            layer(
                TunnelKind::Teredo,
                "192.0.2.1",
                "198.51.100.1",
                3544,
                60000,
                None
            )
        );
        // Origin indication.
        let origin = [0, 0, 0xF2, 0x27, 0x3F, 0xFF, 0xFF, 0xFE];
        assert_eq!(
            ok(
                LinkType::RAW,
                &outer4(17, &udp(60000, 3544, &cat(&[&origin, &ip6])))
            )
            .dport,
            2
        );
        // Authentication indicator (id length 2, auth length 1) followed by origin indication.
        let auth = [0, 1, 2, 1, 0xAA, 0xBB, 0xCC, 1, 2, 3, 4, 5, 6, 7, 8, 0];
        let m = ok(
            LinkType::RAW,
            &outer4(17, &udp(60000, 3544, &cat(&[&auth, &origin, &ip6]))),
        );
        assert_eq!((m.dport, m.tunnel_count), (2, 1));
        // Teredo bubble-less garbage: plain UDP.
        let m = ok(
            LinkType::RAW,
            &outer4(17, &udp(60000, 3544, b"hello world")),
        );
        assert_eq!((m.dport, m.tunnel_count, m.proto), (3544, 0, 17));
    }

    #[test]
    fn nesting_and_depth_cap() {
        // VXLAN inside GRE inside IPv6: two layers, outermost first.
        let vx = outer4(
            17,
            &udp(
                1,
                4789,
                &cat(&[
                    &[0x08, 0, 0, 0, 0, 0, 7, 0],
                    &eth(0x0800, &v4(6, &tcp(5, 6, 2, b""))),
                ]),
            ),
        );
        let m = ok(LinkType::RAW, &v6(47, &cat(&[&[0, 0, 0x08, 0x00], &vx])));
        assert_eq!(m.tunnel_count, 2);
        let kinds: Vec<_> = m.tunnels().map(|t| t.kind).collect();
        assert_eq!(kinds, [TunnelKind::Gre, TunnelKind::Vxlan]);
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 5, 6));
        // 12 levels of 4in4: too deep; layers beyond MAX_TUNNELS are not kept but decoded.
        let mut p = v4(17, &udp(1, 2, b""));
        for _ in 0..12 {
            p = outer4(4, &p);
        }
        assert_eq!(res(LinkType::RAW, &p), Err(DecodeError::TooDeep));
        let mut p = v4(17, &udp(1, 2, b""));
        for _ in 0..6 {
            p = outer4(4, &p);
        }
        let m = ok(LinkType::RAW, &p);
        assert_eq!((m.tunnel_count, m.sport), (4, 1));
        // A fragmented UDP tunnel packet is not decapsulated.
        let mut p = outer4(
            17,
            &udp(
                1,
                4789,
                &cat(&[
                    &[0x08, 0, 0, 0, 0, 0, 7, 0],
                    &eth(0x0800, &v4(6, &tcp(5, 6, 2, b""))),
                ]),
            ),
        );
        p[6] = 0x20;
        let m = ok(LinkType::RAW, &p);
        assert_eq!((m.tunnel_count, m.dport), (0, 4789));
        let _ = Decoded::Ip;
    }
}
