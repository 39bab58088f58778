//! # burstwatch-wire
//!
//! Zero-copy decoding of captured frames into [`PacketMeta`]: the innermost IP 5-tuple, on-wire
//! lengths, TCP flags, fragmentation, VLAN ids and stripped tunnel layers.
//!
//! The decoder never allocates, never panics on any input and never reads past the slice it is
//! given. Frames cut short by the capture's snaplen are decoded as far as the bytes allow; the
//! lengths reported are the on-wire lengths from the IP header. A frame that cannot be decoded
//! yields a [`DecodeError`] whose [`DecodeError::reason`] is one of a small fixed set of labels
//! (safe as a metrics label).
//!
//! What is understood, outermost first:
//!
//! * link types: Ethernet, Linux cooked v1/v2, BSD NULL/LOOP (either byte order), raw IP;
//! * Ethernet: 802.1Q/802.1ad/0x9100 tags at any depth, 802.3 LLC/SNAP, MPLS label stacks (with
//!   Ethernet pseudowires behind a control word), PPPoE sessions, 802.1ah PBB, VN-Tag/E-Tag;
//! * IPv4 (options, fragments, AH) and IPv6 (hop-by-hop, routing, destination options, fragment,
//!   AH; stops at ESP, mobility and no-next-header);
//! * tunnels, each stripped and recorded as a [`TunnelLayer`]: IP-in-IP, GRE (keys, PPTP, bridged
//!   Ethernet, MPLS), ERSPAN I/II/III, VXLAN, Geneve, GTP-U and Teredo;
//! * transport: TCP, UDP and SCTP ports, TCP flags; ICMP/ICMPv6 and others without ports.
//!
//! Tunnels are only followed in unfragmented packets (fragments are never reassembled: that
//! needs state and memory), so a fragmented tunnel packet is reported as its outer IP packet.
//!
//! ```
//! use burstwatch_wire::{decode, Decoded, LinkType, PacketMeta};
//! // An IPv4/UDP datagram on a raw-IP link: 10.0.0.1:1234 -> 192.0.2.1:53, 4 payload bytes.
//! let frame = [
//!     0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 192, 0, 2, 1,
//!     0x04, 0xd2, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4,
//! ];
//! let mut meta = PacketMeta::default();
//! assert_eq!(decode(LinkType::RAW, &frame, &mut meta), Ok(Decoded::Ip));
//! assert_eq!((meta.sport, meta.dport, meta.ip_len, meta.payload_len), (1234, 53, 32, 4));
//! ```
#![forbid(unsafe_code)]

mod decode;
mod error;
mod ip;
mod link;
mod meta;
pub mod proto;
mod reader;
#[cfg(test)]
mod testutil;
mod transport;
mod tunnel;

pub use decode::{decode, Decoded, LinkType};
pub use error::{DecodeError, DecodeErrorCounts};
pub use meta::{Frag, PacketMeta, TunnelKind, TunnelLayer, MAX_TUNNELS, MAX_VLANS};
pub use transport::has_ports;
