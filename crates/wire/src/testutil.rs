//! Frame builders and assertions shared by the unit tests (test builds only).

use crate::{decode, DecodeError, Decoded, LinkType, PacketMeta};

/// Concatenate byte slices.
pub(crate) fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// An Ethernet II frame 00:01:02:03:04:05 <- 00:06:07:08:09:0a with the given type.
pub(crate) fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &[0, 1, 2, 3, 4, 5, 0, 6, 7, 8, 9, 10],
        &et.to_be_bytes(),
        payload,
    ])
}

/// An IPv4 packet 10.0.0.1 -> 10.0.0.2 (20-byte header, total length computed).
pub(crate) fn v4(proto: u8, payload: &[u8]) -> Vec<u8> {
    v4_addrs(proto, [10, 0, 0, 1], [10, 0, 0, 2], payload)
}

/// An IPv4 packet between the given addresses.
pub(crate) fn v4_addrs(proto: u8, src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap_or(0).to_be_bytes();
    cat(&[
        &[0x45, 0, total[0], total[1], 0, 0, 0, 0, 64, proto, 0, 0],
        &src,
        &dst,
        payload,
    ])
}

/// An IPv6 packet 2001:db8::1 -> 2001:db8::2 (payload length computed).
pub(crate) fn v6(next: u8, payload: &[u8]) -> Vec<u8> {
    let plen = u16::try_from(payload.len()).unwrap_or(0).to_be_bytes();
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    let mut dst = src;
    src[15] = 1;
    dst[15] = 2;
    cat(&[
        &[0x60, 0, 0, 0, plen[0], plen[1], next, 64],
        &src,
        &dst,
        payload,
    ])
}

/// A UDP datagram.
pub(crate) fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap_or(0);
    cat(&[
        &sport.to_be_bytes(),
        &dport.to_be_bytes(),
        &len.to_be_bytes(),
        &[0, 0],
        payload,
    ])
}

/// A TCP segment with a 20-byte header.
pub(crate) fn tcp(sport: u16, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    cat(&[
        &sport.to_be_bytes(),
        &dport.to_be_bytes(),
        &[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0],
        payload,
    ])
}

/// Decode, returning the result only.
pub(crate) fn res(link: LinkType, frame: &[u8]) -> Result<Decoded, DecodeError> {
    let mut m = PacketMeta::default();
    decode(link, frame, &mut m)
}

/// Decode a frame that must be IP, returning its metadata.
#[track_caller]
pub(crate) fn ok(link: LinkType, frame: &[u8]) -> PacketMeta {
    let mut m = PacketMeta::default();
    assert_eq!(
        decode(link, frame, &mut m),
        Ok(Decoded::Ip),
        "frame {frame:02x?}"
    );
    assert!(m.payload_len <= m.ip_len);
    m
}

/// The 5-tuple, with addresses as text for readable assertions.
pub(crate) fn flow(m: &PacketMeta) -> (&'static str, &'static str, u8, u16, u16) {
    let leak = |a: std::net::IpAddr| -> &'static str { Box::leak(a.to_string().into_boxed_str()) };
    (leak(m.src), leak(m.dst), m.proto, m.sport, m.dport)
}
