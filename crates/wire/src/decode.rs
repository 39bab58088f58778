//! Frame decoding: link layer -> (tunnels) -> innermost IP -> transport.
//!
//! This file holds the entry point and the link-type switch; each layer lives in its own module
//! ([`crate::link`], [`crate::ip`], [`crate::transport`], [`crate::tunnel`]).

use crate::{ip, link, DecodeError, PacketMeta};

/// Deepest encapsulation followed: each stripped tunnel and each nested Ethernet frame (MPLS
/// pseudowire, 802.1ah) counts one level; beyond this [`DecodeError::TooDeep`] is returned.
pub(crate) const MAX_DEPTH: u8 = 8;

/// One encapsulation level deeper than `depth`, or [`DecodeError::TooDeep`].
#[inline]
pub(crate) fn deeper(depth: u8) -> Result<u8, DecodeError> {
    if depth >= MAX_DEPTH {
        Err(DecodeError::TooDeep)
    } else {
        Ok(depth + 1)
    }
}

/// A capture link type (the LINKTYPE_/DLT_ number from the file or interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte host-order address family.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP as DLT_RAW on some BSDs.
    pub const RAW_12: LinkType = LinkType(12);
    /// Raw IP as DLT_RAW on OpenBSD.
    pub const RAW_14: LinkType = LinkType(14);
    /// Raw IP (LINKTYPE_RAW).
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: 4-byte network-order address family.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// What a successfully decoded frame held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// An IP packet; `meta` is filled.
    Ip,
    /// A well-formed frame that carries no IP (ARP, STP, LLDP, ...); `meta` is unspecified.
    NotIp,
}

/// Decode one captured frame (`frame` is the captured bytes, possibly cut by snaplen).
///
/// `meta` is cleared first and then filled; on `Ok(Decoded::Ip)` it describes the innermost IP
/// packet. On `Ok(Decoded::NotIp)` or an error its contents are unspecified.
pub fn decode(link: LinkType, frame: &[u8], meta: &mut PacketMeta) -> Result<Decoded, DecodeError> {
    meta.clear();
    match link {
        LinkType::ETHERNET => link::ethernet(frame, meta, 0),
        // LINKTYPE_IPV4/IPV6 promise one version, but captures that carry the other exist
        // (tcpdump's test suite has them); the version nibble decides, as in Wireshark.
        LinkType::RAW | LinkType::RAW_12 | LinkType::RAW_14 | LinkType::IPV4 | LinkType::IPV6 => {
            ip::ip_any(frame, meta, 0)
        }
        LinkType::LINUX_SLL => link::sll(frame, meta),
        LinkType::LINUX_SLL2 => link::sll2(frame, meta),
        LinkType::NULL | LinkType::LOOP => link::null_loop(frame, meta),
        other => Err(DecodeError::UnsupportedLinkType(other.0)),
    }
}

impl LinkType {
    /// Every link type [`decode`] understands.
    pub const SUPPORTED: &'static [LinkType] = &[
        LinkType::NULL,
        LinkType::ETHERNET,
        LinkType::RAW_12,
        LinkType::RAW_14,
        LinkType::RAW,
        LinkType::LOOP,
        LinkType::LINUX_SLL,
        LinkType::IPV4,
        LinkType::IPV6,
        LinkType::LINUX_SLL2,
    ];

    /// Whether [`decode`] understands this link type.
    pub fn is_supported(self) -> bool {
        Self::SUPPORTED.contains(&self)
    }
}
