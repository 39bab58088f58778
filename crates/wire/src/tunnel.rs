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
mod tests;
