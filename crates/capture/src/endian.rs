//! Fixed-width integers at an offset of a capture file's bytes, in the file's byte order.
//!
//! The callers check that the slice holds the field before reading it.

/// The 16-bit word at `b[i..i + 2]`, big-endian when `be`.
#[inline(always)]
pub(crate) fn u16_at(b: &[u8], i: usize, be: bool) -> u16 {
    let a = [b[i], b[i + 1]];
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// The 32-bit word at `b[i..i + 4]`, big-endian when `be`.
#[inline(always)]
pub(crate) fn u32_at(b: &[u8], i: usize, be: bool) -> u32 {
    let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_byte_orders() {
        let b = [0, 0x12, 0x34, 0x56, 0x78];
        assert_eq!(u16_at(&b, 1, true), 0x1234);
        assert_eq!(u16_at(&b, 1, false), 0x3412);
        assert_eq!(u32_at(&b, 1, true), 0x1234_5678);
        assert_eq!(u32_at(&b, 1, false), 0x7856_3412);
    }
}
