//! IP prefixes and the home-network classifier.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::key::{addr_bytes, Addr};

/// An IP prefix (`10.0.0.0/8`, `2001:db8::/32`), stored IPv4-mapped like flow keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: Addr,
    /// Prefix length in bits of the 128-bit (mapped) form.
    bits: u8,
    v4: bool,
}

/// Why a prefix did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP prefix (expected e.g. 10.0.0.0/8 or 2001:db8::/32): {0}")]
pub struct PrefixError(pub String);

impl Prefix {
    /// Prefix from an address and its length in that address family's bits.
    pub fn new(ip: IpAddr, len: u8) -> Option<Prefix> {
        let (v4, max, extra) = match ip {
            IpAddr::V4(_) => (true, 32u8, 96u8),
            IpAddr::V6(_) => (false, 128u8, 0u8),
        };
        (len <= max).then(|| {
            let bits = len + extra;
            let mut addr = addr_bytes(ip);
            mask(&mut addr, bits);
            Prefix { addr, bits, v4 }
        })
    }

    /// Whether the key-form address lies in this prefix: one mask and compare on 128 bits, in
    /// native byte order (the mask is built in network order and reinterpreted alike).
    #[inline]
    pub fn contains_bytes(&self, a: &Addr) -> bool {
        let (mask, value) = self.mask_value();
        u128::from_ne_bytes(*a) & mask == value
    }

    /// The mask and masked address as native-order words.
    #[inline]
    fn mask_value(&self) -> (u128, u128) {
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.bits))
            .unwrap_or(0);
        (
            u128::from_ne_bytes(mask.to_be_bytes()),
            u128::from_ne_bytes(self.addr),
        )
    }

    /// Whether the address lies in this prefix.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_bytes(&addr_bytes(ip))
    }
}

fn mask(a: &mut Addr, bits: u8) {
    for (i, byte) in a.iter_mut().enumerate() {
        let lo = (i * 8) as u32;
        let b = u32::from(bits);
        if b <= lo {
            *byte = 0;
        } else if b < lo + 8 {
            *byte &= 0xffu8 << (lo + 8 - b);
        }
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PrefixError(s.to_string());
        let (ip, len) = match s.split_once('/') {
            Some((ip, len)) => (ip, Some(len)),
            None => (s, None),
        };
        let ip: IpAddr = ip.trim().parse().map_err(|_| err())?;
        let len = match len {
            Some(l) => l.trim().parse::<u8>().map_err(|_| err())?,
            None if ip.is_ipv4() => 32,
            None => 128,
        };
        Prefix::new(ip, len).ok_or_else(err)
    }
}

impl Prefix {
    /// The network address and the length in bits of its family (`10.0.0.0/8` gives 8).
    pub fn network(&self) -> (IpAddr, u8) {
        let ip = crate::key::addr_ip(self.addr, self.v4);
        let len = if self.v4 { self.bits - 96 } else { self.bits };
        (ip, len)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ip, len) = self.network();
        write!(f, "{ip}/{len}")
    }
}

/// A list of prefixes with a fast membership test (a handful of prefixes: a linear scan over
/// precomputed masks, two word operations each).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrefixSet {
    prefixes: Vec<Prefix>,
    /// `(mask, masked address)` of each prefix, native order (derived from `prefixes`).
    masks: Vec<(u128, u128)>,
}

impl PrefixSet {
    /// A set of these prefixes.
    pub fn new(prefixes: Vec<Prefix>) -> Self {
        let masks = prefixes.iter().map(Prefix::mask_value).collect();
        Self { prefixes, masks }
    }

    /// Whether any prefix contains the key-form address.
    #[inline]
    pub fn contains_bytes(&self, a: &Addr) -> bool {
        let x = u128::from_ne_bytes(*a);
        self.masks.iter().any(|&(mask, value)| x & mask == value)
    }

    /// Whether any prefix contains the address.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.contains_bytes(&addr_bytes(ip))
    }

    /// Which way a packet or flow from `src` to `dst` goes for a subscriber in this set:
    /// `Some(true)` upstream (`src` inside, `dst` outside), `Some(false)` downstream, `None`
    /// when both or neither are inside.
    #[inline]
    pub fn upstream(&self, src: IpAddr, dst: IpAddr) -> Option<bool> {
        match (self.contains(src), self.contains(dst)) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    }

    /// The prefixes.
    pub fn prefixes(&self) -> &[Prefix] {
        &self.prefixes
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }
}

/// The default subscriber ("home") networks: RFC 1918, CGNAT (RFC 6598) and IPv6 ULA (RFC 4193).
pub fn default_home_nets() -> PrefixSet {
    PrefixSet::new(
        [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "fc00::/7",
        ]
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect(),
    )
}

#[cfg(test)]
mod tests;
