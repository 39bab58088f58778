//! Why a frame could not be decoded.

/// Why a frame could not be decoded. Each variant maps to one stable counter label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The capture's link type is not one burstwatch decodes.
    #[error("unsupported link type {0}")]
    UnsupportedLinkType(u32),
    /// The frame ended inside a link-layer header (Ethernet, SLL, VLAN, MPLS, PPPoE, ...).
    #[error("frame truncated in link-layer header")]
    TruncatedLink,
    /// The frame ended inside an IP header (or its extension headers).
    #[error("frame truncated in IP header")]
    TruncatedIp,
    /// The IP version nibble is neither 4 nor 6 where IP was expected.
    #[error("bad IP version")]
    BadIpVersion,
    /// IPv4 header length below 20 bytes or beyond the total length.
    #[error("bad IPv4 header length")]
    BadIpHeaderLen,
    /// IP total/payload length smaller than the header, or larger than the frame's on-wire length.
    #[error("bad IP total length")]
    BadIpLength,
    /// The frame ended inside the transport header of a first (or unfragmented) packet.
    #[error("frame truncated in transport header")]
    TruncatedTransport,
    /// A transport header with an impossible field (e.g. TCP data offset < 5).
    #[error("bad transport header")]
    BadTransport,
    /// A tunnel header that could not be decoded.
    #[error("bad tunnel header")]
    BadTunnel,
    /// More encapsulation layers than the decoder follows.
    #[error("encapsulation too deep")]
    TooDeep,
}

impl DecodeError {
    /// Every reason label, in a stable order (for pre-registering counters).
    pub const ALL_REASONS: &'static [&'static str] = &[
        "unsupported_link_type",
        "truncated_link",
        "truncated_ip",
        "bad_ip_version",
        "bad_ip_header_len",
        "bad_ip_length",
        "truncated_transport",
        "bad_transport",
        "bad_tunnel",
        "too_deep",
    ];

    /// Stable snake_case label for counters and summaries.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType(_) => "unsupported_link_type",
            DecodeError::TruncatedLink => "truncated_link",
            DecodeError::TruncatedIp => "truncated_ip",
            DecodeError::BadIpVersion => "bad_ip_version",
            DecodeError::BadIpHeaderLen => "bad_ip_header_len",
            DecodeError::BadIpLength => "bad_ip_length",
            DecodeError::TruncatedTransport => "truncated_transport",
            DecodeError::BadTransport => "bad_transport",
            DecodeError::BadTunnel => "bad_tunnel",
            DecodeError::TooDeep => "too_deep",
        }
    }

    /// Index of [`Self::reason`] in [`Self::ALL_REASONS`] (for array-backed counters).
    pub fn index(&self) -> usize {
        Self::ALL_REASONS
            .iter()
            .position(|r| *r == self.reason())
            .unwrap_or(0)
    }
}

/// Undecodable frames counted by reason, indexed like [`DecodeError::ALL_REASONS`]: a fixed
/// array, so counting on the packet path allocates nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeErrorCounts([u64; 16]);

// Every reason has a counter.
const _: () = assert!(DecodeError::ALL_REASONS.len() <= 16);

impl DecodeErrorCounts {
    /// Count one frame that failed with `e`.
    #[inline]
    pub fn count(&mut self, e: &DecodeError) {
        self.count_n(e, 1);
    }

    /// Count `frames` frames that failed with `e`.
    #[inline]
    pub fn count_n(&mut self, e: &DecodeError, frames: u64) {
        if let Some(n) = self.0.get_mut(e.index()) {
            *n += frames;
        }
    }

    /// Add another set of counters to these.
    pub fn add(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    /// Frames counted, over every reason.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// `(reason, count)` for every reason of [`DecodeError::ALL_REASONS`], in its order.
    pub fn by_reason(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DecodeError::ALL_REASONS
            .iter()
            .zip(self.0)
            .map(|(r, n)| (*r, n))
    }
}

#[cfg(test)]
mod counts_tests {
    use super::*;

    #[test]
    fn counts_land_under_their_reason_and_add_up() {
        let mut a = DecodeErrorCounts::default();
        a.count(&DecodeError::TruncatedIp);
        a.count(&DecodeError::TruncatedIp);
        a.count(&DecodeError::TooDeep);
        let mut b = DecodeErrorCounts::default();
        b.count(&DecodeError::TooDeep);
        b.add(&a);
        assert_eq!(b.total(), 4);
        let v: Vec<_> = b.by_reason().filter(|(_, n)| *n > 0).collect();
        assert_eq!(v, vec![("truncated_ip", 2), ("too_deep", 2)]);
        assert_eq!(b.by_reason().count(), DecodeError::ALL_REASONS.len());
    }
}
