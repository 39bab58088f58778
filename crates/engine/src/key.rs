//! Normalised bidirectional flow keys.

use std::net::{IpAddr, Ipv6Addr};

use burstwatch_wire::PacketMeta;

/// A 128-bit address in byte form: IPv4 is stored IPv4-mapped (`::ffff:a.b.c.d`).
///
/// Byte arrays (alignment 1) rather than `u128` keep [`FlowKey`] compact in the flow slab.
pub type Addr = [u8; 16];

/// Convert an address to its key form.
#[inline]
pub fn addr_bytes(ip: IpAddr) -> Addr {
    addr_number(ip).to_be_bytes()
}

/// The key-form address as a number (its bytes read big-endian): IPv4 as `::ffff:a.b.c.d`.
#[inline]
fn addr_number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xffff_0000_0000 | u128::from(v4.to_bits()),
        IpAddr::V6(v6) => v6.to_bits(),
    }
}

/// Convert a key-form address back: an IPv4-mapped address reads as IPv4.
#[inline]
pub fn addr_to_ip(bytes: Addr) -> IpAddr {
    addr_ip(bytes, true)
}

/// Convert a key-form address back, restoring IPv4 when `v4` is set (the flow's family is
/// known: an IPv6 flow's `::ffff:a.b.c.d` stays IPv6).
#[inline]
pub fn addr_ip(bytes: Addr, v4: bool) -> IpAddr {
    let v6 = Ipv6Addr::from(bytes);
    match (v4, v6.to_ipv4_mapped()) {
        (true, Some(v4addr)) => IpAddr::V4(v4addr),
        _ => IpAddr::V6(v6),
    }
}

/// One endpoint of a flow: address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Address in key form.
    pub addr: Addr,
    /// Port (0 where the protocol has none).
    pub port: u16,
}

/// A bidirectional flow key: the two endpoints in canonical (sorted) order plus the protocol.
///
/// Both directions of a conversation map to the same key; [`FlowKey::from_packet`] also says
/// whether the packet travelled from `lo` to `hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    /// The smaller endpoint.
    pub lo: Endpoint,
    /// The larger endpoint.
    pub hi: Endpoint,
    /// IP protocol number.
    pub proto: u8,
    /// Whether the addresses are IPv4.
    pub v4: bool,
}

impl std::hash::Hash for FlowKey {
    /// Three word-sized writes instead of a field-by-field walk (this runs once per packet).
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u128(u128::from_be_bytes(self.lo.addr));
        state.write_u128(u128::from_be_bytes(self.hi.addr));
        state.write_u64(
            u64::from(self.lo.port) << 32
                | u64::from(self.hi.port) << 16
                | u64::from(self.proto) << 8
                | u64::from(self.v4),
        );
    }
}

impl FlowKey {
    /// Build the canonical key for a packet from `src:sport` to `dst:dport`.
    /// Returns the key and `true` when the packet travels `lo -> hi`.
    #[inline]
    pub fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, proto: u8) -> (FlowKey, bool) {
        let v4 = src.is_ipv4();
        let (a, b) = (addr_number(src), addr_number(dst));
        // Same order as the derived `Ord` (address bytes, then port): numbers compare like
        // their big-endian bytes.
        let lo_to_hi = (a, sport) <= (b, dport);
        let ((lo, lo_port), (hi, hi_port)) = if lo_to_hi {
            ((a, sport), (b, dport))
        } else {
            ((b, dport), (a, sport))
        };
        (
            FlowKey {
                lo: Endpoint {
                    addr: lo.to_be_bytes(),
                    port: lo_port,
                },
                hi: Endpoint {
                    addr: hi.to_be_bytes(),
                    port: hi_port,
                },
                proto,
                v4,
            },
            lo_to_hi,
        )
    }

    /// Key of a decoded packet, with explicit ports (fragments get theirs from the fragment map).
    #[inline]
    pub fn from_packet(meta: &PacketMeta, sport: u16, dport: u16) -> (FlowKey, bool) {
        Self::new(meta.src, sport, meta.dst, dport, meta.proto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_share_a_key() {
        let a: IpAddr = "10.0.0.1".parse().expect("literal");
        let b: IpAddr = "192.0.2.7".parse().expect("literal");
        let (k1, fwd1) = FlowKey::new(a, 40000, b, 443, 6);
        let (k2, fwd2) = FlowKey::new(b, 443, a, 40000, 6);
        assert_eq!(k1, k2);
        assert_ne!(fwd1, fwd2);
    }

    #[test]
    fn ports_break_ties_between_equal_addresses() {
        let a: IpAddr = "127.0.0.1".parse().expect("literal");
        let (k1, fwd1) = FlowKey::new(a, 5000, a, 80, 6);
        let (k2, fwd2) = FlowKey::new(a, 80, a, 5000, 6);
        assert_eq!(k1, k2);
        assert!(!fwd1 && fwd2);
    }

    #[test]
    fn v4_round_trips_through_key_form() {
        let a: IpAddr = "198.18.0.1".parse().expect("literal");
        assert_eq!(addr_ip(addr_bytes(a), true), a);
        let b: IpAddr = "2001:db8::1".parse().expect("literal");
        assert_eq!(addr_ip(addr_bytes(b), false), b);
        // An IPv6 flow whose address happens to be IPv4-mapped stays IPv6.
        let m: IpAddr = "::ffff:1.2.3.4".parse().expect("literal");
        assert_eq!(addr_ip(addr_bytes(m), false), m);
    }
}
