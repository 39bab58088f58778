//! Property tests: no input panics the decoder, and every `Decoded::Ip` result is consistent.

use burstwatch_wire::{
    decode, has_ports, DecodeError, Decoded, Frag, LinkType, PacketMeta, MAX_TUNNELS, MAX_VLANS,
};
use proptest::prelude::*;

/// Decode and check the invariants every successful decode must satisfy.
fn check(link: LinkType, frame: &[u8]) -> Result<(), TestCaseError> {
    let mut meta = PacketMeta::default();
    let result = decode(link, frame, &mut meta);
    // A reused, dirty meta must give the same answer.
    let mut dirty = meta.clone();
    dirty.vlan_count = 3;
    dirty.sport = 7;
    prop_assert_eq!(decode(link, frame, &mut dirty), result);
    if let Ok(Decoded::Ip) = result {
        prop_assert_eq!(&dirty, &meta);
        prop_assert!(
            meta.payload_len <= meta.ip_len,
            "payload {} > ip {}",
            meta.payload_len,
            meta.ip_len
        );
        if !has_ports(meta.proto) || matches!(meta.frag, Frag::Later { .. }) {
            prop_assert_eq!((meta.sport, meta.dport), (0, 0));
        }
        if meta.proto != 6 {
            prop_assert_eq!(meta.tcp_flags, 0);
        }
        prop_assert!(usize::from(meta.vlan_count) <= MAX_VLANS);
        prop_assert!(usize::from(meta.tunnel_count) <= MAX_TUNNELS);
        prop_assert_eq!(meta.tunnels().count(), usize::from(meta.tunnel_count));
        prop_assert_eq!(meta.vlans().len(), usize::from(meta.vlan_count));
        prop_assert!(meta.ip_len >= 20);
    }
    if let Err(e) = result {
        prop_assert!(DecodeError::ALL_REASONS.contains(&e.reason()));
    }
    Ok(())
}

/// Well-formed frames whose mutations reach deep into the decoder.
fn seeds() -> Vec<(LinkType, Vec<u8>)> {
    let ipv4_udp_vxlan: Vec<u8> = [
        &[
            0x45, 0, 0, 94, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
        ][..],
        &[0xC0, 0x00, 0x12, 0xB5, 0, 74, 0, 0],
        &[0x08, 0, 0, 0, 0, 0, 1, 0],
        &[
            0, 1, 2, 3, 4, 5, 0, 6, 7, 8, 9, 10, 0x81, 0x00, 0, 5, 0x08, 0x00,
        ],
        &[
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ],
        &[
            0, 80, 0x1F, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xFF, 0xFF, 0, 0, 0, 0,
        ],
    ]
    .concat();
    let ipv6_ext_gre: Vec<u8> = [
        &[0x60, 0, 0, 0, 0, 52, 0, 64][..],
        &[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        &[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        &[44, 0, 1, 4, 0, 0, 0, 0],
        &[47, 0, 0, 0, 0, 0, 0, 1],
        &[0xB0, 0, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1],
        &[
            0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ],
    ]
    .concat();
    let gtpu: Vec<u8> = [
        &[
            0x45, 0, 0, 68, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
        ][..],
        &[0x08, 0x68, 0x08, 0x68, 0, 48, 0, 0],
        &[0x34, 0xFF, 0, 32, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0, 9, 0],
        &[
            0x45, 0, 0, 24, 0, 0, 0x20, 1, 64, 132, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ],
        &[0, 1, 0, 2],
    ]
    .concat();
    let eth =
        |et: [u8; 2], rest: &[u8]| [&[0, 1, 2, 3, 4, 5, 0, 6, 7, 8, 9, 10][..], &et, rest].concat();
    let mpls_pw = eth(
        [0x88, 0x47],
        &[
            &[0, 1, 0, 64, 0, 2, 1, 64, 0, 0, 0, 0][..],
            &eth([0x08, 0x00], &ipv4_udp_vxlan),
        ]
        .concat(),
    );
    let pppoe = eth(
        [0x88, 0x64],
        &[&[0x11, 0, 0, 1, 0, 0, 0x00, 0x57][..], &ipv6_ext_gre].concat(),
    );
    let erspan = [
        &[
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 47, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
        ][..],
        &[0x10, 0, 0x88, 0xBE, 0, 0, 0, 1, 0x10, 0, 0, 1, 0, 0, 0, 0],
        &eth([0x86, 0xDD], &ipv6_ext_gre),
    ]
    .concat();
    vec![
        (LinkType::RAW, ipv4_udp_vxlan.clone()),
        (LinkType::RAW, ipv6_ext_gre.clone()),
        (LinkType::IPV4, gtpu),
        (LinkType::ETHERNET, mpls_pw),
        (LinkType::ETHERNET, pppoe),
        (LinkType::IPV4, erspan),
        (
            LinkType::NULL,
            [&[2, 0, 0, 0][..], &ipv4_udp_vxlan].concat(),
        ),
        (
            LinkType::LINUX_SLL2,
            [
                &[0x86, 0xDD, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6][..],
                &[0; 8],
                &ipv6_ext_gre,
            ]
            .concat(),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(link in prop::sample::select(LinkType::SUPPORTED), frame in prop::collection::vec(any::<u8>(), 0..200)) {
        check(link, &frame)?;
    }

    #[test]
    fn mutated_frames_never_panic(
        seed in 0usize..8,
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in any::<usize>(),
        any_link in any::<bool>(),
        link_pick in prop::sample::select(LinkType::SUPPORTED),
    ) {
        let seeds = seeds();
        let (link, mut frame) = seeds[seed % seeds.len()].clone();
        for (pos, byte) in flips {
            let n = frame.len();
            frame[pos % n] = byte;
        }
        let len = frame.len();
        frame.truncate(cut % (len + 1));
        check(if any_link { link_pick } else { link }, &frame)?;
    }
}

#[test]
fn seeds_decode_as_ip() {
    for (link, frame) in seeds() {
        let mut meta = PacketMeta::default();
        assert_eq!(
            decode(link, &frame, &mut meta),
            Ok(Decoded::Ip),
            "{link:?} {frame:02x?}"
        );
        assert!(
            meta.tunnel_count >= 1 || link == LinkType::ETHERNET,
            "{link:?}: {meta:?}"
        );
    }
}
