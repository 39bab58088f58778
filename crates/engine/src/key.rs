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

/// Convert a key-form address back, restoring IPv4 when `v4` is set.
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

/// The keyed hash of flow keys: three 64×64→128-bit multiplies folded to 64 bits (the mixing
/// step of wyhash and foldhash) over the key's five words.
///
/// It runs once per packet. A general-purpose hasher walks the key field by field; this reads
/// the two addresses as two words each and packs ports, protocol and family into the fifth. The
/// seeds are derived from the table's seed, so traffic cannot aim for collisions without it.
#[derive(Debug, Clone)]
pub struct FlowHasher {
    seeds: [u64; 5],
}

/// 64×64→128-bit multiply, halves folded together.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

impl FlowHasher {
    /// A hasher keyed by `seed`.
    pub fn new(seed: u64) -> FlowHasher {
        // splitmix64 spreads one seed over five odd-looking words.
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) | 1
        };
        FlowHasher {
            seeds: [next(), next(), next(), next(), next()],
        }
    }

    /// The hash of `key`.
    #[inline]
    pub fn hash(&self, key: &FlowKey) -> u64 {
        let [s0, s1, s2, s3, s4] = self.seeds;
        let words = |a: &Addr| {
            let v = u128::from_ne_bytes(*a);
            (v as u64, (v >> 64) as u64)
        };
        let (a0, a1) = words(&key.lo.addr);
        let (b0, b1) = words(&key.hi.addr);
        let tail = u64::from(key.lo.port) << 32
            | u64::from(key.hi.port) << 16
            | u64::from(key.proto) << 8
            | u64::from(key.v4);
        let h = fold(a0 ^ s0, a1 ^ s1);
        let h = fold(h ^ b0 ^ s2, b1 ^ s3);
        fold(h ^ tail ^ s4, s0 ^ s3)
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
    fn flow_hash_spreads_keys_that_differ_in_one_field() {
        use std::collections::HashSet;
        let h = FlowHasher::new(42);
        let a: IpAddr = "10.0.0.1".parse().expect("literal");
        let b: IpAddr = "198.18.0.1".parse().expect("literal");
        let hashes: Vec<u64> = (0..=u16::MAX)
            .map(|port| h.hash(&FlowKey::new(a, port, b, 443, 6).0))
            .collect();
        // The top half is the flow's identifier; the bottom picks the bucket.
        let top: HashSet<u32> = hashes.iter().map(|x| (x >> 32) as u32).collect();
        let low: HashSet<u16> = hashes.iter().map(|&x| x as u16).collect();
        assert!(top.len() > 65_500, "{}", top.len());
        // 65,536 random draws from 65,536 values hit about 41,400 of them.
        assert!(low.len() > 40_000, "{}", low.len());
        // Another seed, other hashes; both directions, one hash.
        let (k, _) = FlowKey::new(a, 1, b, 2, 17);
        assert_ne!(h.hash(&k), FlowHasher::new(43).hash(&k));
        assert_eq!(h.hash(&k), h.hash(&FlowKey::new(b, 2, a, 1, 17).0));
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
