//! Bounds-checked big-endian reads on byte slices.
//!
//! Every parser reads through these helpers: each returns `None` instead of indexing past the
//! end, so no input can make the decoder panic.

use std::net::{IpAddr, Ipv6Addr};

/// Checked, allocation-free field access on a byte slice (network byte order).
pub(crate) trait Be {
    /// The byte at `off`.
    fn be8(&self, off: usize) -> Option<u8>;
    /// The big-endian `u16` at `off`.
    fn be16(&self, off: usize) -> Option<u16>;
    /// The big-endian `u32` at `off`.
    fn be32(&self, off: usize) -> Option<u32>;
    /// `N` bytes starting at `off`.
    fn arr<const N: usize>(&self, off: usize) -> Option<[u8; N]>;
    /// Everything from `off` on (`None` if `off` is past the end).
    fn rest(&self, off: usize) -> Option<&[u8]>;
    /// The IPv6 address at `off`.
    fn ipv6(&self, off: usize) -> Option<IpAddr> {
        self.arr::<16>(off).map(|a| IpAddr::V6(Ipv6Addr::from(a)))
    }
}

impl Be for [u8] {
    #[inline(always)]
    fn be8(&self, off: usize) -> Option<u8> {
        self.get(off).copied()
    }

    #[inline(always)]
    fn be16(&self, off: usize) -> Option<u16> {
        self.arr::<2>(off).map(u16::from_be_bytes)
    }

    #[inline(always)]
    fn be32(&self, off: usize) -> Option<u32> {
        self.arr::<4>(off).map(u32::from_be_bytes)
    }

    #[inline(always)]
    fn arr<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        self.get(off..)?.first_chunk::<N>().copied()
    }

    #[inline(always)]
    fn rest(&self, off: usize) -> Option<&[u8]> {
        self.get(off..)
    }
}

/// A slice length as `u32`, saturating (frames are far below 4 GiB in practice).
#[inline(always)]
pub(crate) fn len32(b: &[u8]) -> u32 {
    u32::try_from(b.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_checked() {
        let b: &[u8] = &[1, 2, 3, 4, 5];
        assert_eq!(b.be8(4), Some(5));
        assert_eq!(b.be8(5), None);
        assert_eq!(b.be16(3), Some(0x0405));
        assert_eq!(b.be16(4), None);
        assert_eq!(b.be32(1), Some(0x0203_0405));
        assert_eq!(b.be32(2), None);
        assert_eq!(b.be16(usize::MAX), None);
        assert_eq!(b.rest(5), Some(&[][..]));
        assert_eq!(b.rest(6), None);
        assert_eq!(b.ipv6(0), None);
        assert_eq!(len32(b), 5);
    }
}
