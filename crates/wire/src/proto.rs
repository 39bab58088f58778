//! IP protocol numbers (IANA "Assigned Internet Protocol Numbers") that burstwatch decodes or
//! names, as they appear in [`crate::PacketMeta::proto`].

/// ICMP (RFC 792).
pub const ICMP: u8 = 1;
/// IPv4 encapsulated in IP (RFC 2003).
pub const IPV4_IN_IP: u8 = 4;
/// TCP (RFC 9293).
pub const TCP: u8 = 6;
/// UDP (RFC 768).
pub const UDP: u8 = 17;
/// IPv6 encapsulated in IP (RFC 2473).
pub const IPV6_IN_IP: u8 = 41;
/// GRE (RFC 2784).
pub const GRE: u8 = 47;
/// ICMPv6 (RFC 4443).
pub const ICMPV6: u8 = 58;
/// SCTP (RFC 9260).
pub const SCTP: u8 = 132;
