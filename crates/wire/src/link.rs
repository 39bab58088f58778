//! Link layers: Ethernet II and 802.3 LLC/SNAP, VLAN tags (802.1Q, 802.1ad, 0x9100; VN-Tag and
//! 802.1BR E-Tag are skipped), MPLS label
//! stacks and pseudowires, PPPoE sessions, 802.1ah PBB, Linux cooked captures (SLL, SLL2) and the
//! BSD NULL/LOOP headers.

use crate::decode::deeper;
use crate::reader::Be;
use crate::{ip, DecodeError, Decoded, PacketMeta};

/// EtherType IPv4.
pub(crate) const ET_IPV4: u16 = 0x0800;
/// EtherType IPv6.
pub(crate) const ET_IPV6: u16 = 0x86DD;
/// EtherType 802.1Q customer VLAN tag.
const ET_VLAN: u16 = 0x8100;
/// EtherType 802.1ad service VLAN tag (QinQ).
const ET_QINQ: u16 = 0x88A8;
/// Pre-standard QinQ tag used by some vendors.
const ET_QINQ_9100: u16 = 0x9100;
/// Cisco VN-Tag: 4-byte tag, then the next EtherType; not a VLAN.
const ET_VNTAG: u16 = 0x8926;
/// IEEE 802.1BR E-Tag: 6-byte tag, then the next EtherType; not a VLAN.
const ET_ETAG: u16 = 0x893F;
/// EtherType MPLS unicast (RFC 3032).
pub(crate) const ET_MPLS_UC: u16 = 0x8847;
/// EtherType MPLS multicast (RFC 5332).
pub(crate) const ET_MPLS_MC: u16 = 0x8848;
/// EtherType PPPoE session stage (RFC 2516).
const ET_PPPOE_SESSION: u16 = 0x8864;
/// EtherType 802.1ah provider backbone bridging (I-TAG).
const ET_PBB: u16 = 0x88E7;
/// Transparent Ethernet bridging (GRE protocol type, also seen in SLL for ARPHRD_IPGRE).
pub(crate) const ET_TEB: u16 = 0x6558;
/// Largest value of the Ethernet type/length field that is a length (IEEE 802.3).
const MAX_8023_LEN: u16 = 1500;

/// Linux ARPHRD_IPGRE: the cooked protocol field holds the GRE protocol type.
const ARPHRD_IPGRE: u16 = 778;
/// Linux ARPHRD_NETLINK: netlink messages, never IP.
const ARPHRD_NETLINK: u16 = 824;

const TRUNC: DecodeError = DecodeError::TruncatedLink;

/// An Ethernet II / 802.3 frame starting at the destination MAC.
pub(crate) fn ethernet(
    frame: &[u8],
    meta: &mut PacketMeta,
    depth: u8,
) -> Result<Decoded, DecodeError> {
    let et = frame.be16(12).ok_or(TRUNC)?;
    let rest = frame.rest(14).ok_or(TRUNC)?;
    ethertype(et, rest, meta, depth)
}

/// Dispatch on an EtherType (or 802.3 length), after stripping any number of VLAN tags.
pub(crate) fn ethertype(
    mut et: u16,
    mut buf: &[u8],
    meta: &mut PacketMeta,
    depth: u8,
) -> Result<Decoded, DecodeError> {
    // Tags may be stacked to any depth; the frame length bounds the loop.
    loop {
        let tag_len = match et {
            ET_VLAN | ET_QINQ | ET_QINQ_9100 => {
                meta.push_vlan(buf.be16(0).ok_or(TRUNC)? & 0x0fff);
                2
            }
            ET_VNTAG => 4,
            ET_ETAG => 6,
            _ => break,
        };
        et = buf.be16(tag_len).ok_or(TRUNC)?;
        buf = buf.rest(tag_len + 2).ok_or(TRUNC)?;
    }
    match et {
        ET_IPV4 => ip::ipv4(buf, meta, depth),
        ET_IPV6 => ip::ipv6(buf, meta, depth),
        ET_MPLS_UC | ET_MPLS_MC => mpls(buf, meta, depth),
        ET_PPPOE_SESSION => pppoe(buf, meta, depth),
        ET_PBB => pbb(buf, meta, depth),
        0..=MAX_8023_LEN => llc(buf, meta, depth),
        _ => Ok(Decoded::NotIp),
    }
}

/// IEEE 802.2 LLC; only SNAP with OUI 00-00-00 (RFC 1042) carrying IPv4/IPv6 is IP.
fn llc(buf: &[u8], meta: &mut PacketMeta, depth: u8) -> Result<Decoded, DecodeError> {
    let [dsap, ssap, control] = buf.arr::<3>(0).ok_or(TRUNC)?;
    if (dsap, ssap, control) != (0xAA, 0xAA, 0x03) {
        return Ok(Decoded::NotIp);
    }
    let oui = buf.arr::<3>(3).ok_or(TRUNC)?;
    let et = buf.be16(6).ok_or(TRUNC)?;
    let rest = buf.rest(8).ok_or(TRUNC)?;
    match (oui, et) {
        ([0, 0, 0], ET_IPV4) => ip::ipv4(rest, meta, depth),
        ([0, 0, 0], ET_IPV6) => ip::ipv6(rest, meta, depth),
        _ => Ok(Decoded::NotIp),
    }
}

/// An MPLS label stack (RFC 3032) up to bottom-of-stack, then IPv4, IPv6 or an Ethernet
/// pseudowire with control word (RFC 4385/4448, first nibble 0).
pub(crate) fn mpls(buf: &[u8], meta: &mut PacketMeta, depth: u8) -> Result<Decoded, DecodeError> {
    let mut off = 0usize;
    loop {
        let entry = buf.be32(off).ok_or(TRUNC)?;
        if meta.mpls_label.is_none() {
            meta.mpls_label = Some(entry >> 12);
        }
        off += 4;
        if entry & 0x100 != 0 {
            break;
        }
    }
    let rest = buf.rest(off).ok_or(TRUNC)?;
    match rest.be8(0).ok_or(TRUNC)? >> 4 {
        4 => ip::ipv4(rest, meta, depth),
        6 => ip::ipv6(rest, meta, depth),
        0 => ethernet(rest.rest(4).ok_or(TRUNC)?, meta, deeper(depth)?),
        // 1 is the associated channel header (RFC 5586: OAM, BFD); the rest are not IP.
        _ => Ok(Decoded::NotIp),
    }
}

/// PPPoE session stage (RFC 2516): 6-byte header, then the PPP protocol field.
fn pppoe(buf: &[u8], meta: &mut PacketMeta, depth: u8) -> Result<Decoded, DecodeError> {
    let proto = buf.be16(6).ok_or(TRUNC)?;
    let rest = buf.rest(8).ok_or(TRUNC)?;
    match proto {
        0x0021 => ip::ipv4(rest, meta, depth),
        0x0057 => ip::ipv6(rest, meta, depth),
        _ => Ok(Decoded::NotIp),
    }
}

/// IEEE 802.1ah backbone service instance tag (4-byte I-TAG), then the customer Ethernet frame.
fn pbb(buf: &[u8], meta: &mut PacketMeta, depth: u8) -> Result<Decoded, DecodeError> {
    let inner = buf.rest(4).ok_or(TRUNC)?;
    ethernet(inner, meta, deeper(depth)?)
}

/// Linux cooked capture v1: packet type, ARPHRD, address length, 8 address bytes, protocol.
pub(crate) fn sll(frame: &[u8], meta: &mut PacketMeta) -> Result<Decoded, DecodeError> {
    let arphrd = frame.be16(2).ok_or(TRUNC)?;
    let proto = frame.be16(14).ok_or(TRUNC)?;
    let rest = frame.rest(16).ok_or(TRUNC)?;
    cooked(arphrd, proto, rest, meta)
}

/// Linux cooked capture v2: protocol, reserved, ifindex, ARPHRD, packet type, address.
pub(crate) fn sll2(frame: &[u8], meta: &mut PacketMeta) -> Result<Decoded, DecodeError> {
    let proto = frame.be16(0).ok_or(TRUNC)?;
    let arphrd = frame.be16(8).ok_or(TRUNC)?;
    let rest = frame.rest(20).ok_or(TRUNC)?;
    cooked(arphrd, proto, rest, meta)
}

/// The payload of a cooked capture: `proto` is an EtherType, except for a few device types.
fn cooked(
    arphrd: u16,
    proto: u16,
    rest: &[u8],
    meta: &mut PacketMeta,
) -> Result<Decoded, DecodeError> {
    match (arphrd, proto) {
        (ARPHRD_NETLINK, _) => Ok(Decoded::NotIp),
        // A GRE device: the protocol is a GRE protocol type; the kernel already removed GRE.
        (ARPHRD_IPGRE, ET_TEB) => ethernet(rest, meta, 1),
        // Protocol values 1..=1500 are Linux ETH_P_* pseudo-types (802.3, 802.2 LLC, ...): the
        // generic dispatch treats them as LLC, which is right for ETH_P_802_2 (4) and harmless
        // otherwise.
        _ => ethertype(proto, rest, meta, 0),
    }
}

/// BSD loopback: a 4-byte address family, in the capturing host's byte order for NULL and in
/// network order for LOOP. Either order is accepted for both (family values are small).
pub(crate) fn null_loop(frame: &[u8], meta: &mut PacketMeta) -> Result<Decoded, DecodeError> {
    let raw = frame.arr::<4>(0).ok_or(TRUNC)?;
    let rest = frame.rest(4).ok_or(TRUNC)?;
    let le = u32::from_le_bytes(raw);
    let family = if le <= 0xFFFF {
        le
    } else {
        u32::from_be_bytes(raw)
    };
    match family {
        // AF_INET everywhere.
        2 => ip::ipv4(rest, meta, 0),
        // AF_INET6: Linux 10, NetBSD/OpenBSD/DragonFly 24, FreeBSD 28, Darwin 30.
        10 | 24 | 28 | 30 => ip::ipv6(rest, meta, 0),
        _ => Ok(Decoded::NotIp),
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::{DecodeError, Decoded, LinkType};

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = eth(0x0800, &v4(6, &tcp(40000, 443, 0x12, b"hello")));
        let m = ok(LinkType::ETHERNET, &f);
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 40000, 443));
        assert_eq!((m.ip_len, m.payload_len, m.tcp_flags), (45, 5, 0x12));
        assert_eq!((m.vlan_count, m.mpls_label, m.tunnel_count), (0, None, 0));
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        // A 60-byte minimum frame: the IP total length bounds the packet, not the frame.
        let mut f = eth(0x0800, &v4(17, &udp(1, 2, b"")));
        f.resize(60, 0xEE);
        let m = ok(LinkType::ETHERNET, &f);
        assert_eq!((m.ip_len, m.payload_len), (28, 0));
    }

    #[test]
    fn ethernet_non_ip() {
        // ARP, LLDP, 802.3 + STP, SNAP with a foreign OUI, PPPoE discovery.
        for (et, payload) in [
            (0x0806u16, &[0u8; 28][..]),
            (0x88CC, &[0; 10][..]),
            (38, &[0x42, 0x42, 0x03, 0, 0][..]),
            (40, &[0xAA, 0xAA, 0x03, 0x00, 0x00, 0x0C, 0x20, 0x00][..]),
            (0x8863, &[0x11, 0x09, 0, 0, 0, 0][..]),
        ] {
            assert_eq!(
                res(LinkType::ETHERNET, &eth(et, payload)),
                Ok(Decoded::NotIp),
                "{et:#x}"
            );
        }
    }

    #[test]
    fn llc_snap_ipv4() {
        let ip = v4(17, &udp(5000, 53, b"q"));
        let snap = cat(&[&[0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00], &ip]);
        let m = ok(LinkType::ETHERNET, &eth(snap.len() as u16, &snap));
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 5000, 53));
    }

    #[test]
    fn qinq_and_deep_tags() {
        // 802.1ad S-tag 100, 802.1Q C-tag 200, then 0x9100 tags beyond MAX_VLANS: still decoded.
        let ip = v6(17, &udp(1000, 2000, b"xy"));
        let tags: &[u8] = &[
            0x00, 100, 0x81, 0x00, 0x20, 200, 0x91, 0x00, 0, 3, 0x91, 0x00, 0, 4, 0x91, 0x00, 0, 5,
            0x86, 0xDD,
        ];
        let m = ok(LinkType::ETHERNET, &eth(0x88A8, &cat(&[tags, &ip])));
        assert_eq!(m.vlans(), &[100, 200, 3, 4]);
        assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 17, 1000, 2000));
        // The priority bits are not part of the id.
        let m = ok(
            LinkType::ETHERNET,
            &eth(0x8100, &cat(&[&[0xE0, 0x0A, 0x08, 0x00], &v4(1, &[8; 8])])),
        );
        assert_eq!(m.vlans(), &[10]);
    }

    #[test]
    fn vntag_and_etag_are_skipped() {
        // VLAN 250, VN-Tag, VLAN 250 again (a "sandwich"), then IPv4.
        let tags: &[u8] = &[
            0, 0xFA, 0x89, 0x26, 0, 0, 0, 0x33, 0x81, 0x00, 0, 0xFA, 0x08, 0x00,
        ];
        let m = ok(
            LinkType::ETHERNET,
            &eth(0x8100, &cat(&[tags, &v4(6, &tcp(443, 1, 0x12, b""))])),
        );
        assert_eq!((m.vlans(), m.sport), (&[250, 250][..], 443));
        let etag: &[u8] = &[0, 0, 0, 1, 0, 0, 0x86, 0xDD];
        let m = ok(
            LinkType::ETHERNET,
            &eth(0x893F, &cat(&[etag, &v6(17, &udp(1, 2, b""))])),
        );
        assert_eq!((m.vlan_count, m.dport), (0, 2));
        assert_eq!(
            res(LinkType::ETHERNET, &eth(0x8926, &[0, 0, 0, 0, 0x08])),
            Err(DecodeError::TruncatedLink)
        );
    }

    #[test]
    fn mpls_stack_to_ip() {
        // Labels 16 and 17 (TTL 64), bottom of stack on the second.
        let labels = [0x00, 0x01, 0x00, 64, 0x00, 0x01, 0x11, 64];
        let m = ok(
            LinkType::ETHERNET,
            &eth(0x8847, &cat(&[&labels, &v4(17, &udp(7, 9, b""))])),
        );
        assert_eq!(m.mpls_label, Some(16));
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 7, 9));
        let m = ok(
            LinkType::ETHERNET,
            &eth(
                0x8848,
                &cat(&[&labels, &v6(58, &[128, 0, 0, 0, 0, 0, 0, 0])]),
            ),
        );
        assert_eq!(m.proto, 58);
    }

    #[test]
    fn mpls_pseudowire_control_word() {
        let inner = eth(
            0x8100,
            &cat(&[&[0, 42, 0x08, 0x00], &v4(6, &tcp(1, 2, 0x10, b""))]),
        );
        let f = eth(
            0x8847,
            &cat(&[&[0x00, 0x3E, 0x81, 0xFF], &[0, 0, 0, 0], &inner]),
        );
        let m = ok(LinkType::ETHERNET, &f);
        assert_eq!(m.mpls_label, Some(1000));
        assert_eq!(m.vlans(), &[42]);
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 1, 2));
        // An associated channel (first nibble 1) is not IP.
        let f = eth(0x8847, &[0x00, 0x3E, 0x81, 0xFF, 0x10, 0, 0, 0x07]);
        assert_eq!(res(LinkType::ETHERNET, &f), Ok(Decoded::NotIp));
    }

    #[test]
    fn pppoe_session() {
        let ppp =
            |proto: u16, ip: &[u8]| cat(&[&[0x11, 0, 0x12, 0x34, 0, 0], &proto.to_be_bytes(), ip]);
        let m = ok(
            LinkType::ETHERNET,
            &eth(0x8864, &ppp(0x0021, &v4(17, &udp(1, 2, b"")))),
        );
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 1, 2));
        let m = ok(
            LinkType::ETHERNET,
            &eth(0x8864, &ppp(0x0057, &v6(6, &tcp(3, 4, 2, b"")))),
        );
        assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 6, 3, 4));
        // LCP is not IP.
        assert_eq!(
            res(
                LinkType::ETHERNET,
                &eth(0x8864, &ppp(0xC021, &[1, 1, 0, 4]))
            ),
            Ok(Decoded::NotIp)
        );
    }

    #[test]
    fn pbb_itag() {
        let inner = eth(0x0800, &v4(17, &udp(11, 22, b"")));
        let f = eth(0x88A8, &cat(&[&[0, 7, 0x88, 0xE7, 0, 0, 0, 5], &inner]));
        let m = ok(LinkType::ETHERNET, &f);
        assert_eq!(m.vlans(), &[7]);
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 11, 22));
    }

    #[test]
    fn sll_v1_and_v2() {
        let ip = v4(6, &tcp(80, 5555, 0x11, b"data"));
        let sll = cat(&[
            &[0, 0, 0, 1, 0, 6],
            &[1, 2, 3, 4, 5, 6, 0, 0],
            &[0x08, 0x00],
            &ip,
        ]);
        let m = ok(LinkType::LINUX_SLL, &sll);
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 80, 5555));
        assert_eq!(m.tcp_flags, 0x11);
        let sll2 = cat(&[
            &[0x86, 0xDD, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6],
            &[1, 2, 3, 4, 5, 6, 0, 0],
            &v6(17, &udp(1, 2, b"")),
        ]);
        let m = ok(LinkType::LINUX_SLL2, &sll2);
        assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 17, 1, 2));
        // ARPHRD_IPGRE carrying bridged Ethernet.
        let gre = cat(&[
            &[0, 0, 0x03, 0x0A, 0, 0],
            &[0; 8],
            &[0x65, 0x58],
            &eth(0x0800, &ip),
        ]);
        assert_eq!(flow(&ok(LinkType::LINUX_SLL, &gre)).4, 5555);
        // Netlink is never IP; ARP is not IP.
        let nl = cat(&[&[0, 4, 0x03, 0x38, 0, 0], &[0; 8], &[0x08, 0x00], &ip]);
        assert_eq!(res(LinkType::LINUX_SLL, &nl), Ok(Decoded::NotIp));
        let arp = cat(&[&[0, 0, 0, 1, 0, 6], &[0; 8], &[0x08, 0x06], &[0; 28]]);
        assert_eq!(res(LinkType::LINUX_SLL, &arp), Ok(Decoded::NotIp));
        assert_eq!(
            res(LinkType::LINUX_SLL, &sll[..15]),
            Err(DecodeError::TruncatedLink)
        );
        assert_eq!(
            res(LinkType::LINUX_SLL2, &sll2[..19]),
            Err(DecodeError::TruncatedLink)
        );
    }

    #[test]
    fn null_both_byte_orders_and_loop() {
        let ip4 = v4(17, &udp(1, 2, b""));
        let ip6 = v6(17, &udp(3, 4, b""));
        for fam in [[2, 0, 0, 0], [0, 0, 0, 2]] {
            let m = ok(LinkType::NULL, &cat(&[&fam, &ip4]));
            assert_eq!(flow(&m).3, 1);
            let m = ok(LinkType::LOOP, &cat(&[&fam, &ip4]));
            assert_eq!(flow(&m).3, 1);
        }
        for fam in [10u32, 24, 28, 30] {
            let m = ok(LinkType::NULL, &cat(&[&fam.to_le_bytes(), &ip6]));
            assert_eq!(flow(&m).3, 3);
            let m = ok(LinkType::NULL, &cat(&[&fam.to_be_bytes(), &ip6]));
            assert_eq!(flow(&m).3, 3);
            let m = ok(LinkType::LOOP, &cat(&[&fam.to_be_bytes(), &ip6]));
            assert_eq!(flow(&m).3, 3);
        }
        assert_eq!(
            res(LinkType::NULL, &cat(&[&[7, 0, 0, 0], &ip4])),
            Ok(Decoded::NotIp)
        );
        assert_eq!(
            res(LinkType::LOOP, &[0, 0, 0]),
            Err(DecodeError::TruncatedLink)
        );
    }

    #[test]
    fn truncated_link_headers() {
        let full = eth(
            0x8100,
            &cat(&[&[0, 5, 0x88, 0x47, 0, 1, 1, 64], &v4(17, &udp(1, 2, b""))]),
        );
        // Cut anywhere inside Ethernet, the VLAN tag or the label stack.
        for cut in 0..22 {
            assert_eq!(
                res(LinkType::ETHERNET, &full[..cut]),
                Err(DecodeError::TruncatedLink),
                "cut {cut}"
            );
        }
        // Cut right after bottom-of-stack: no IP at all.
        assert_eq!(
            res(LinkType::ETHERNET, &full[..22]),
            Err(DecodeError::TruncatedLink)
        );
        assert_eq!(
            res(LinkType::ETHERNET, &full[..23]),
            Err(DecodeError::TruncatedIp)
        );
        let pppoe = eth(0x8864, &[0x11, 0, 0, 1, 0, 0, 0]);
        assert_eq!(
            res(LinkType::ETHERNET, &pppoe),
            Err(DecodeError::TruncatedLink)
        );
        let snap = eth(10, &[0xAA, 0xAA, 0x03, 0, 0, 0, 0x08]);
        assert_eq!(
            res(LinkType::ETHERNET, &snap),
            Err(DecodeError::TruncatedLink)
        );
    }
}
