//! The decoder's output: everything the flow engine needs to know about one frame.

use std::net::{IpAddr, Ipv4Addr};

/// Maximum number of VLAN tags kept per frame (deeper stacks are still decoded, the extra ids dropped).
pub const MAX_VLANS: usize = 4;
/// Maximum number of tunnel layers kept per frame (deeper nesting is still decoded, outer layers kept).
pub const MAX_TUNNELS: usize = 4;

/// Fragmentation state of the innermost IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Frag {
    /// Not a fragment (or an "atomic" fragment: offset 0 and no more fragments).
    #[default]
    None,
    /// First fragment (offset 0, more fragments follow): carries the transport header.
    First {
        /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
        id: u32,
    },
    /// A later fragment (offset > 0): no transport header; ports must come from the first fragment.
    Later {
        /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
        id: u32,
    },
}

/// The kind of an encapsulation layer that was stripped to reach the innermost IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// GRE (RFC 2784/2890), including transparent Ethernet bridging.
    Gre,
    /// ERSPAN type II (or III) carried in GRE.
    Erspan,
    /// VXLAN (RFC 7348), UDP port 4789.
    Vxlan,
    /// Geneve (RFC 8926), UDP port 6081.
    Geneve,
    /// GTP-U (3GPP TS 29.281), UDP port 2152.
    GtpU,
    /// Teredo (RFC 4380), IPv6 in UDP port 3544.
    Teredo,
    /// IP directly in IP: IPv4-in-IPv4, IPv6-in-IPv4 (6in4), IPv4-in-IPv6, IPv6-in-IPv6.
    IpInIp,
}

impl TunnelKind {
    /// Stable lower-case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Gre => "gre",
            TunnelKind::Erspan => "erspan",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::GtpU => "gtpu",
            TunnelKind::Teredo => "teredo",
            TunnelKind::IpInIp => "ipip",
        }
    }
}

/// One stripped encapsulation layer: the outer IP endpoints that carried it, and its identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TunnelLayer {
    /// Kind of encapsulation.
    pub kind: TunnelKind,
    /// Source address of the IP header that carried the tunnel.
    pub outer_src: IpAddr,
    /// Destination address of the IP header that carried the tunnel.
    pub outer_dst: IpAddr,
    /// Outer UDP source port for UDP-based tunnels, else 0.
    pub outer_sport: u16,
    /// Outer UDP destination port for UDP-based tunnels, else 0.
    pub outer_dport: u16,
    /// VXLAN/Geneve VNI, GTP-U TEID, GRE key or ERSPAN session id, when the layer has one.
    pub id: Option<u32>,
}

/// Metadata of one decoded frame, keyed on its innermost IP header.
///
/// Filled in place by [`crate::decode()`]; reused across frames so the hot path never allocates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketMeta {
    /// Innermost IP source address.
    pub src: IpAddr,
    /// Innermost IP destination address.
    pub dst: IpAddr,
    /// Innermost transport protocol number (after IPv6 extension headers).
    pub proto: u8,
    /// Source port (TCP, UDP, SCTP), 0 where the protocol has none or for a later fragment.
    pub sport: u16,
    /// Destination port (TCP, UDP, SCTP), 0 where the protocol has none or for a later fragment.
    pub dport: u16,
    /// On-wire length of the innermost IP packet (IPv4 total length, IPv6 40 + payload length),
    /// as IPFIX octetDeltaCount counts it, even when the capture cut the frame short.
    pub ip_len: u32,
    /// Transport payload bytes per the headers (`ip_len` minus IP and transport headers); 0 if unknown.
    pub payload_len: u32,
    /// ICMP/ICMPv6 type and code, when the header was captured that far (`None` for other
    /// protocols and later fragments).
    pub icmp: Option<[u8; 2]>,
    /// TCP flags byte (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80); 0 otherwise.
    pub tcp_flags: u8,
    /// Fragmentation of the innermost IP packet.
    pub frag: Frag,
    /// VLAN ids seen, outermost first (only the first `vlan_count` entries are meaningful).
    pub vlans: [u16; MAX_VLANS],
    /// Number of valid entries in `vlans`.
    pub vlan_count: u8,
    /// Top MPLS label of the outermost label stack, if any.
    pub mpls_label: Option<u32>,
    /// Tunnel layers stripped, outermost first (only the first `tunnel_count` entries are meaningful).
    pub tunnels: [Option<TunnelLayer>; MAX_TUNNELS],
    /// Number of valid entries in `tunnels`.
    pub tunnel_count: u8,
    /// The 1-in-N packet sampling this packet stands for: 0 for a captured packet (the decoder
    /// never sets it); flow-export input sets the sampling rate of the estimate it carries.
    pub sampling: u32,
}

impl Default for PacketMeta {
    fn default() -> Self {
        Self {
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            proto: 0,
            sport: 0,
            dport: 0,
            ip_len: 0,
            payload_len: 0,
            icmp: None,
            tcp_flags: 0,
            frag: Frag::None,
            vlans: [0; MAX_VLANS],
            vlan_count: 0,
            mpls_label: None,
            tunnels: [None; MAX_TUNNELS],
            tunnel_count: 0,
            sampling: 0,
        }
    }
}

impl PacketMeta {
    /// Reset to the empty state before decoding the next frame.
    #[inline]
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Record a VLAN id (kept only while there is room: outermost tags win).
    #[inline]
    pub(crate) fn push_vlan(&mut self, id: u16) {
        if let Some(slot) = self.vlans.get_mut(usize::from(self.vlan_count)) {
            *slot = id;
            self.vlan_count += 1;
        }
    }

    /// Record a stripped tunnel layer (kept only while there is room: outermost layers win).
    #[inline]
    pub(crate) fn push_tunnel(&mut self, layer: TunnelLayer) {
        if let Some(slot) = self.tunnels.get_mut(usize::from(self.tunnel_count)) {
            *slot = Some(layer);
            self.tunnel_count += 1;
        }
    }

    /// The VLAN ids that were seen, outermost first.
    pub fn vlans(&self) -> &[u16] {
        &self.vlans[..usize::from(self.vlan_count).min(MAX_VLANS)]
    }

    /// The tunnel layers that were stripped, outermost first.
    pub fn tunnels(&self) -> impl Iterator<Item = &TunnelLayer> {
        self.tunnels[..usize::from(self.tunnel_count).min(MAX_TUNNELS)]
            .iter()
            .flatten()
    }
}
