//! Export datagrams out of captured frames (what `tcpdump -w` on a collector writes).

use std::net::SocketAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// One UDP datagram of a captured frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// Sender (the exporter).
    pub src: SocketAddr,
    /// Receiver (the collector).
    pub dst: SocketAddr,
    /// The UDP payload.
    pub payload: &'a [u8],
}

/// The UDP datagram a frame of link type `link` (LINKTYPE_ number) carries, if it carries a
/// whole one: `None` for other link types and protocols, IP fragments and frames cut short.
pub fn udp_datagram(link: u32, frame: &[u8]) -> Option<Datagram<'_>> {
    let sliced = match link {
        1 => SlicedPacket::from_ethernet(frame),
        12 | 14 | 101 | 228 | 229 => SlicedPacket::from_ip(frame),
        113 => SlicedPacket::from_linux_sll(frame),
        0 | 108 => SlicedPacket::from_ip(frame.get(4..)?),
        _ => return None,
    }
    .ok()?;
    let (src_ip, dst_ip, fragmented) = match sliced.net.as_ref()? {
        NetSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
            v4.is_payload_fragmented(),
        ),
        NetSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
            v6.is_payload_fragmented(),
        ),
        NetSlice::Arp(_) => return None,
    };
    if fragmented {
        return None;
    }
    let TransportSlice::Udp(udp) = sliced.transport.as_ref()? else {
        return None;
    };
    let payload = udp.payload();
    // A datagram cut by the snap length is not a whole export datagram.
    if payload.len() + 8 < usize::from(udp.length()) {
        return None;
    }
    Some(Datagram {
        src: SocketAddr::new(src_ip, udp.source_port()),
        dst: SocketAddr::new(dst_ip, udp.destination_port()),
        payload,
    })
}
