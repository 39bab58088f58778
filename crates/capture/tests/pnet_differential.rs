//! The decoder checked against an independent parser: every plain Ethernet frame of the shared
//! corpus that carries TCP or UDP directly over IPv4 or IPv6 (no tag, tunnel, fragment or IPv6
//! extension header: the cases both parsers read the same way) is parsed by `pnet_packet` too,
//! and the 5-tuple, on-wire IP length and TCP flags must agree exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failures should panic

mod common;

use std::net::IpAddr;

use burstwatch_capture::{CaptureFile, LinkType};
use burstwatch_wire::{decode, Decoded, PacketMeta};
use common::{corpus, manifest};
use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;
use pnet_packet::Packet;

/// What both parsers must agree on.
#[derive(Debug, PartialEq, Eq)]
struct Tuple {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
    ip_len: u32,
    tcp_flags: u8,
}

/// pnet's reading of a frame, when it is a case both parsers read alike.
fn pnet_tuple(frame: &[u8]) -> Option<Tuple> {
    let eth = EthernetPacket::new(frame)?;
    let (src, dst, proto, ip_len, l4) = match eth.get_ethertype() {
        EtherTypes::Ipv4 => {
            let ip = Ipv4Packet::new(eth.payload())?;
            let more_fragments = ip.get_flags() & 0x1 != 0;
            if ip.get_version() != 4
                || ip.get_header_length() < 5
                || more_fragments
                || ip.get_fragment_offset() != 0
            {
                return None;
            }
            let l4 = ip.payload().to_vec();
            (
                IpAddr::V4(ip.get_source()),
                IpAddr::V4(ip.get_destination()),
                ip.get_next_level_protocol(),
                u32::from(ip.get_total_length()),
                l4,
            )
        }
        EtherTypes::Ipv6 => {
            let ip = Ipv6Packet::new(eth.payload())?;
            if ip.get_version() != 6 {
                return None;
            }
            (
                IpAddr::V6(ip.get_source()),
                IpAddr::V6(ip.get_destination()),
                ip.get_next_header(),
                40 + u32::from(ip.get_payload_length()),
                ip.payload().to_vec(),
            )
        }
        _ => return None,
    };
    let (sport, dport, tcp_flags) = match proto {
        IpNextHeaderProtocols::Tcp => {
            let t = TcpPacket::new(&l4)?;
            (t.get_source(), t.get_destination(), t.get_flags())
        }
        IpNextHeaderProtocols::Udp => {
            let u = UdpPacket::new(&l4)?;
            (u.get_source(), u.get_destination(), 0)
        }
        _ => return None,
    };
    let IpNextHeaderProtocol(proto) = proto;
    Some(Tuple {
        src,
        dst,
        proto,
        sport,
        dport,
        ip_len,
        tcp_flags,
    })
}

#[test]
fn decoder_agrees_with_pnet_on_every_plain_tcp_and_udp_frame_of_the_corpus() {
    let (mut compared, mut files) = (0u64, 0u64);
    let mut mismatches = Vec::new();
    let mut meta = PacketMeta::default();
    for (rel, _) in manifest() {
        if rel.starts_with("malformed/") || rel.starts_with("robustness/") {
            continue;
        }
        let Ok(mut f) = CaptureFile::open(&corpus().join(&rel)) else {
            continue;
        };
        let mut any = false;
        while let Ok(Some(p)) = f.next_packet() {
            if p.link_type != LinkType::ETHERNET {
                continue;
            }
            let Some(want) = pnet_tuple(p.data) else {
                continue;
            };
            meta.clear();
            let decoded = decode(p.link_type, p.data, &mut meta);
            if meta.tunnel_count > 0 {
                // A UDP tunnel (VXLAN, GTP-U, Teredo...) that the decoder strips: pnet stops
                // at the outer header, so the two are not reading the same packet.
                continue;
            }
            let got = (decoded == Ok(Decoded::Ip)).then_some(Tuple {
                src: meta.src,
                dst: meta.dst,
                proto: meta.proto,
                sport: meta.sport,
                dport: meta.dport,
                ip_len: meta.ip_len,
                tcp_flags: meta.tcp_flags,
            });
            let want = Some(want);
            if got != want && mismatches.len() < 20 {
                mismatches.push(format!("{rel}: ours {got:?}, pnet {want:?}"));
            }
            compared += 1;
            any = true;
        }
        files += u64::from(any);
    }
    assert!(
        mismatches.is_empty(),
        "{} frame(s) differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    // The corpus has hundreds of Ethernet captures: a run that compares few frames means the
    // comparison was skipped, not passed.
    assert!(
        compared > 100_000 && files > 200,
        "{compared} frames in {files} files"
    );
}
