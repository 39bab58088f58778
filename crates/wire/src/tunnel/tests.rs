use std::net::IpAddr;

use crate::testutil::*;
use crate::{DecodeError, Decoded, LinkType, TunnelKind, TunnelLayer};

fn layer(
    kind: TunnelKind,
    src: &str,
    dst: &str,
    sport: u16,
    dport: u16,
    id: Option<u32>,
) -> TunnelLayer {
    TunnelLayer {
        kind,
        outer_src: src.parse::<IpAddr>().expect("test address"),
        outer_dst: dst.parse::<IpAddr>().expect("test address"),
        outer_sport: sport,
        outer_dport: dport,
        id,
    }
}

fn outer4(proto: u8, payload: &[u8]) -> Vec<u8> {
    v4_addrs(proto, [192, 0, 2, 1], [198, 51, 100, 1], payload)
}

fn only_layer(m: &crate::PacketMeta) -> TunnelLayer {
    assert_eq!(m.tunnel_count, 1);
    m.tunnels[0].expect("one tunnel layer")
}

#[test]
fn ip_in_ip_variants() {
    // 4in4
    let m = ok(LinkType::RAW, &outer4(4, &v4(6, &tcp(1, 2, 0x02, b""))));
    assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 1, 2));
    assert_eq!(
        only_layer(&m),
        layer(TunnelKind::IpInIp, "192.0.2.1", "198.51.100.1", 0, 0, None)
    );
    // 6in4
    let m = ok(LinkType::RAW, &outer4(41, &v6(17, &udp(3, 4, b"abc"))));
    assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 17, 3, 4));
    assert_eq!((m.ip_len, m.payload_len), (51, 3));
    assert_eq!(only_layer(&m).kind, TunnelKind::IpInIp);
    // 4in6
    let m = ok(LinkType::RAW, &v6(4, &v4(1, &[8, 0, 0, 0, 0, 0, 0, 0])));
    assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 1, 0, 0));
    assert_eq!(
        only_layer(&m),
        layer(TunnelKind::IpInIp, "2001:db8::1", "2001:db8::2", 0, 0, None)
    );
    // Inner errors are returned for IP-in-IP.
    assert_eq!(
        res(LinkType::RAW, &outer4(4, &v4(6, &tcp(1, 2, 2, b""))[..30])),
        Err(DecodeError::TruncatedTransport)
    );
    assert_eq!(
        res(LinkType::RAW, &outer4(4, &[0x45, 0, 0])),
        Err(DecodeError::TruncatedIp)
    );
    assert_eq!(
        res(LinkType::RAW, &outer4(41, &v4(6, &tcp(1, 2, 2, b"")))),
        Err(DecodeError::BadIpVersion)
    );
}

#[test]
fn gre_plain_key_seq_checksum() {
    let inner = v4(17, &udp(1000, 53, b"query"));
    // Plain RFC 2784.
    let m = ok(
        LinkType::RAW,
        &outer4(47, &cat(&[&[0, 0, 0x08, 0x00], &inner])),
    );
    assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 1000, 53));
    assert_eq!(
        only_layer(&m),
        layer(TunnelKind::Gre, "192.0.2.1", "198.51.100.1", 0, 0, None)
    );
    // Checksum + key + sequence (RFC 2890).
    let hdr = [
        0xB0, 0, 0x08, 0x00, 0xAB, 0xCD, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 7,
    ];
    let m = ok(LinkType::RAW, &outer4(47, &cat(&[&hdr, &inner])));
    assert_eq!(flow(&m).4, 53);
    assert_eq!(only_layer(&m).id, Some(0x0102));
    // Key only, carrying IPv6.
    let hdr = [0x20, 0, 0x86, 0xDD, 0, 0, 0, 42];
    let m = ok(
        LinkType::RAW,
        &v6(47, &cat(&[&hdr, &v6(58, &[128, 0, 0, 0, 0, 1, 0, 1])])),
    );
    assert_eq!((m.proto, only_layer(&m).id), (58, Some(42)));
    // Sequence only.
    let hdr = [0x10, 0, 0x08, 0x00, 0, 0, 0, 1];
    assert_eq!(
        ok(LinkType::RAW, &outer4(47, &cat(&[&hdr, &inner]))).dport,
        53
    );
    // Truncated GRE header, inner errors are returned.
    assert_eq!(
        res(LinkType::RAW, &outer4(47, &[0x30, 0, 0x08, 0x00, 0, 0])),
        Err(DecodeError::BadTunnel)
    );
    assert_eq!(
        res(LinkType::RAW, &outer4(47, &[0, 0, 0x08])),
        Err(DecodeError::BadTunnel)
    );
    assert_eq!(
        res(
            LinkType::RAW,
            &outer4(47, &cat(&[&[0, 0, 0x08, 0x00], &inner[..24]]))
        ),
        Err(DecodeError::TruncatedTransport)
    );
    // Unknown protocol type or GRE version: the outer packet is the flow.
    for hdr in [
        [0u8, 0, 0x12, 0x34],
        [0, 3, 0x08, 0x00],
        [0x40, 0, 0x08, 0x00],
    ] {
        let m = ok(LinkType::RAW, &outer4(47, &cat(&[&hdr, &inner])));
        assert_eq!((m.proto, m.tunnel_count, flow(&m).0), (47, 0, "192.0.2.1"));
    }
}

#[test]
fn gre_teb_and_mpls() {
    let frame = eth(
        0x8100,
        &cat(&[&[0, 9, 0x08, 0x00], &v4(6, &tcp(22, 60000, 0x18, b"ssh"))]),
    );
    let m = ok(
        LinkType::ETHERNET,
        &eth(
            0x0800,
            &outer4(47, &cat(&[&[0x20, 0, 0x65, 0x58, 0, 0, 0, 5], &frame])),
        ),
    );
    assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 22, 60000));
    assert_eq!(m.vlans(), &[9]);
    assert_eq!(only_layer(&m).id, Some(5));
    // ARP over TEB: the outer GRE packet is the flow.
    let arp = eth(0x0806, &[0; 28]);
    let m = ok(
        LinkType::RAW,
        &outer4(47, &cat(&[&[0, 0, 0x65, 0x58], &arp])),
    );
    assert_eq!((m.proto, m.tunnel_count, m.vlan_count), (47, 0, 0));
    // MPLS over GRE (RFC 4023).
    let m = ok(
        LinkType::RAW,
        &outer4(
            47,
            &cat(&[
                &[0, 0, 0x88, 0x47, 0, 0x01, 0x41, 0x40],
                &v6(17, &udp(1, 2, b"")),
            ]),
        ),
    );
    assert_eq!(
        (m.mpls_label, m.proto, only_layer(&m).kind),
        (Some(20), 17, TunnelKind::Gre)
    );
}

#[test]
fn gre_pptp_ppp() {
    // Enhanced GRE: K, S and A set; payload length 0x20, call id 0x1234.
    let ip = v4(6, &tcp(1723, 1024, 0x10, b""));
    let hdr = [
        0x30, 0x81, 0x88, 0x0B, 0x00, 0x20, 0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    for ppp in [
        &[0xFF, 0x03, 0x00, 0x21][..],
        &[0x21][..],
        &[0x00, 0x21][..],
    ] {
        let m = ok(LinkType::RAW, &outer4(47, &cat(&[&hdr, ppp, &ip])));
        assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 1723, 1024));
        assert_eq!(only_layer(&m).id, Some(0x1234));
    }
    // PPP LCP: outer flow.
    let m = ok(
        LinkType::RAW,
        &outer4(47, &cat(&[&hdr, &[0xFF, 0x03, 0xC0, 0x21, 1, 1, 0, 4]])),
    );
    assert_eq!((m.proto, m.tunnel_count), (47, 0));
    // Version 1 without PPP is not followed.
    let m = ok(
        LinkType::RAW,
        &outer4(47, &cat(&[&[0x20, 0x01, 0x08, 0x00, 0, 0, 0, 0], &ip])),
    );
    assert_eq!((m.proto, m.tunnel_count), (47, 0));
}

#[test]
fn erspan_types() {
    let mirrored = eth(0x0800, &v4(17, &udp(161, 40000, b"snmp")));
    // Type II: GRE with S, ERSPAN version 1, session 0x155.
    let gre2 = [0x10, 0, 0x88, 0xBE, 0, 0, 0, 1];
    let ersp2 = [0x10, 0x0A, 0x01, 0x55, 0, 0, 0, 0];
    let m = ok(
        LinkType::RAW,
        &outer4(47, &cat(&[&gre2, &ersp2, &mirrored])),
    );
    assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 161, 40000));
    assert_eq!(
        only_layer(&m),
        layer(
            TunnelKind::Erspan,
            "192.0.2.1",
            "198.51.100.1",
            0,
            0,
            Some(0x155)
        )
    );
    assert_eq!(
        res(LinkType::RAW, &outer4(47, &cat(&[&gre2, &ersp2[..7]]))),
        Err(DecodeError::BadTunnel)
    );
    // Type I: no sequence number, Ethernet right after GRE.
    let m = ok(
        LinkType::RAW,
        &outer4(47, &cat(&[&[0, 0, 0x88, 0xBE], &mirrored])),
    );
    assert_eq!(
        (only_layer(&m).kind, only_layer(&m).id, m.dport),
        (TunnelKind::Erspan, None, 40000)
    );
    // Type III with and without the optional platform subheader.
    let ersp3 = [0x20, 0x00, 0x00, 0x07, 0, 0, 0, 0, 0, 0, 0, 0];
    let m = ok(
        LinkType::RAW,
        &outer4(
            47,
            &cat(&[&[0x10, 0, 0x22, 0xEB, 0, 0, 0, 1], &ersp3, &mirrored]),
        ),
    );
    assert_eq!((only_layer(&m).id, m.sport), (Some(7), 161));
    let mut ersp3o = ersp3;
    ersp3o[11] = 1;
    let m = ok(
        LinkType::RAW,
        &outer4(
            47,
            &cat(&[
                &[0x10, 0, 0x22, 0xEB, 0, 0, 0, 1],
                &ersp3o,
                &[0; 8],
                &mirrored,
            ]),
        ),
    );
    assert_eq!((only_layer(&m).id, m.sport), (Some(7), 161));
}

#[test]
fn vxlan() {
    let inner = eth(0x86DD, &v6(6, &tcp(443, 51000, 0x18, b"tls")));
    let hdr = [0x08, 0, 0, 0, 0x00, 0x12, 0x34, 0x00];
    let f = eth(
        0x0800,
        &outer4(17, &udp(49152, 4789, &cat(&[&hdr, &inner]))),
    );
    let m = ok(LinkType::ETHERNET, &f);
    assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 6, 443, 51000));
    assert_eq!((m.ip_len, m.payload_len, m.tcp_flags), (63, 3, 0x18));
    assert_eq!(
        only_layer(&m),
        layer(
            TunnelKind::Vxlan,
            "192.0.2.1",
            "198.51.100.1",
            49152,
            4789,
            Some(0x1234)
        )
    );
    // Recognised by the source port too.
    let m = ok(
        LinkType::RAW,
        &outer4(17, &udp(4789, 50000, &cat(&[&hdr, &inner]))),
    );
    assert_eq!(only_layer(&m).outer_sport, 4789);
    // No I flag, a cut inner frame, or ARP inside: the outer UDP datagram is the flow.
    for payload in [
        cat(&[&[0, 0, 0, 0, 0, 0x12, 0x34, 0], &inner[..]]),
        cat(&[&hdr, &inner[..30]]),
        cat(&[&hdr, &eth(0x0806, &[0; 28])]),
        hdr[..5].to_vec(),
    ] {
        let m = ok(LinkType::RAW, &outer4(17, &udp(49152, 4789, &payload)));
        assert_eq!(flow(&m), ("192.0.2.1", "198.51.100.1", 17, 49152, 4789));
        assert_eq!(
            (m.tunnel_count, m.vlan_count, m.payload_len as usize),
            (0, 0, payload.len())
        );
    }
}

#[test]
fn geneve_with_options() {
    // Version 0, 2 words of options, protocol TEB, VNI 0xABCDEF.
    let hdr = [
        0x02, 0x00, 0x65, 0x58, 0xAB, 0xCD, 0xEF, 0x00, 0x01, 0x02, 0x80, 0x01, 0, 0, 0, 0,
    ];
    let inner = eth(0x0800, &v4(17, &udp(9, 10, b"g")));
    let m = ok(
        LinkType::RAW,
        &outer4(17, &udp(33333, 6081, &cat(&[&hdr, &inner]))),
    );
    assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 9, 10));
    assert_eq!(
        only_layer(&m),
        layer(
            TunnelKind::Geneve,
            "192.0.2.1",
            "198.51.100.1",
            33333,
            6081,
            Some(0xABCDEF)
        )
    );
    // IPv4 directly.
    let hdr = [0x00, 0x00, 0x08, 0x00, 0, 0, 1, 0];
    let m = ok(
        LinkType::RAW,
        &outer4(17, &udp(33333, 6081, &cat(&[&hdr, &v4(1, &[0; 8])]))),
    );
    assert_eq!((m.proto, only_layer(&m).id), (1, Some(1)));
    // Version 1: not Geneve.
    let m = ok(
        LinkType::RAW,
        &outer4(
            17,
            &udp(
                33333,
                6081,
                &cat(&[&[0x40, 0, 0x08, 0, 0, 0, 1, 0], &v4(1, &[0; 8])]),
            ),
        ),
    );
    assert_eq!((m.proto, m.tunnel_count), (17, 0));
}

#[test]
fn gtpu_with_extension_header() {
    let ip = v4(17, &udp(5060, 5060, b"INVITE"));
    // Flags: version 1, PT, E; G-PDU; TEID 0x01020304; seq, N-PDU, next ext 0x85 (PDU session).
    let hdr = [0x34, 0xFF, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0x85];
    let ext = [1, 0x10, 0x09, 0x00]; // 4 bytes, next type 0
    let m = ok(
        LinkType::RAW,
        &outer4(17, &udp(2152, 2152, &cat(&[&hdr, &ext, &ip]))),
    );
    assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 17, 5060, 5060));
    assert_eq!(
        only_layer(&m),
        layer(
            TunnelKind::GtpU,
            "192.0.2.1",
            "198.51.100.1",
            2152,
            2152,
            Some(0x01020304)
        )
    );
    // Minimal 8-byte header, IPv6 inside.
    let m = ok(
        LinkType::RAW,
        &outer4(
            17,
            &udp(
                2152,
                2152,
                &cat(&[
                    &[0x30, 0xFF, 0, 40, 0, 0, 0, 9],
                    &v6(58, &[1, 0, 0, 0, 0, 0, 0, 0]),
                ]),
            ),
        ),
    );
    assert_eq!((m.proto, only_layer(&m).id), (58, Some(9)));
    // Echo request (type 1) and a zero-length extension: plain UDP.
    let m = ok(
        LinkType::RAW,
        &outer4(
            17,
            &udp(2152, 2152, &[0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0]),
        ),
    );
    assert_eq!((m.dport, m.tunnel_count), (2152, 0));
    let m = ok(
        LinkType::RAW,
        &outer4(17, &udp(2152, 2152, &cat(&[&hdr, &[0, 0, 0, 0], &ip]))),
    );
    assert_eq!((m.dport, m.tunnel_count), (2152, 0));
    // Inner not IP.
    let m = ok(
        LinkType::RAW,
        &outer4(
            17,
            &udp(2152, 2152, &[0x30, 0xFF, 0, 4, 0, 0, 0, 9, 0x11, 0, 0, 0]),
        ),
    );
    assert_eq!((m.dport, m.tunnel_count), (2152, 0));
}

#[test]
fn teredo() {
    let ip6 = v6(17, &udp(1, 2, b"t"));
    let plain = outer4(17, &udp(3544, 60000, &ip6));
    let m = ok(LinkType::RAW, &plain);
    assert_eq!(flow(&m), ("2001:db8::1", "2001:db8::2", 17, 1, 2));
    assert_eq!(
        only_layer(&m),
        layer(
            TunnelKind::Teredo,
            "192.0.2.1",
            "198.51.100.1",
            3544,
            60000,
            None
        )
    );
    // Origin indication.
    let origin = [0, 0, 0xF2, 0x27, 0x3F, 0xFF, 0xFF, 0xFE];
    assert_eq!(
        ok(
            LinkType::RAW,
            &outer4(17, &udp(60000, 3544, &cat(&[&origin, &ip6])))
        )
        .dport,
        2
    );
    // Authentication indicator (id length 2, auth length 1) followed by origin indication.
    let auth = [0, 1, 2, 1, 0xAA, 0xBB, 0xCC, 1, 2, 3, 4, 5, 6, 7, 8, 0];
    let m = ok(
        LinkType::RAW,
        &outer4(17, &udp(60000, 3544, &cat(&[&auth, &origin, &ip6]))),
    );
    assert_eq!((m.dport, m.tunnel_count), (2, 1));
    // Teredo bubble-less garbage: plain UDP.
    let m = ok(
        LinkType::RAW,
        &outer4(17, &udp(60000, 3544, b"hello world")),
    );
    assert_eq!((m.dport, m.tunnel_count, m.proto), (3544, 0, 17));
}

#[test]
fn nesting_and_depth_cap() {
    // VXLAN inside GRE inside IPv6: two layers, outermost first.
    let vx = outer4(
        17,
        &udp(
            1,
            4789,
            &cat(&[
                &[0x08, 0, 0, 0, 0, 0, 7, 0],
                &eth(0x0800, &v4(6, &tcp(5, 6, 2, b""))),
            ]),
        ),
    );
    let m = ok(LinkType::RAW, &v6(47, &cat(&[&[0, 0, 0x08, 0x00], &vx])));
    assert_eq!(m.tunnel_count, 2);
    let kinds: Vec<_> = m.tunnels().map(|t| t.kind).collect();
    assert_eq!(kinds, [TunnelKind::Gre, TunnelKind::Vxlan]);
    assert_eq!(flow(&m), ("10.0.0.1", "10.0.0.2", 6, 5, 6));
    // 12 levels of 4in4: too deep; layers beyond MAX_TUNNELS are not kept but decoded.
    let mut p = v4(17, &udp(1, 2, b""));
    for _ in 0..12 {
        p = outer4(4, &p);
    }
    assert_eq!(res(LinkType::RAW, &p), Err(DecodeError::TooDeep));
    let mut p = v4(17, &udp(1, 2, b""));
    for _ in 0..6 {
        p = outer4(4, &p);
    }
    let m = ok(LinkType::RAW, &p);
    assert_eq!((m.tunnel_count, m.sport), (4, 1));
    // A fragmented UDP tunnel packet is not decapsulated.
    let mut p = outer4(
        17,
        &udp(
            1,
            4789,
            &cat(&[
                &[0x08, 0, 0, 0, 0, 0, 7, 0],
                &eth(0x0800, &v4(6, &tcp(5, 6, 2, b""))),
            ]),
        ),
    );
    p[6] = 0x20;
    let m = ok(LinkType::RAW, &p);
    assert_eq!((m.tunnel_count, m.dport), (0, 4789));
    let _ = Decoded::Ip;
}
