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
