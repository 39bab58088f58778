//! Community ID v1: the flow hash Zeek, Suricata, Arkime, Elastic and Wireshark share, so a
//! flow or alert can be looked up in their data.
//!
//! `1:` followed by the base64 of SHA-1 over: seed (u16, big-endian), the two addresses, the
//! IP protocol, a zero byte, then (TCP, UDP, SCTP, ICMP, ICMPv6 only) the two ports,
//! big-endian. The endpoint that sorts first (address, then port) goes first, so both
//! directions give the same ID. ICMP and ICMPv6 hash the type as the source port and, for a
//! request or reply type, its counterpart type as the destination port (a request and its
//! reply then share an ID); any other type hashes its code and keeps its direction
//! ("one-way").

use std::net::IpAddr;

use base64::Engine as _;
use burstwatch_wire::proto::{ICMP, ICMPV6, SCTP, TCP, UDP};
use sha1::{Digest, Sha1};

/// The counterpart of an ICMP request or reply type.
fn icmp_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        0 => 8,   // echo reply / echo
        8 => 0,   // echo / echo reply
        9 => 10,  // router advertisement / solicitation
        10 => 9,  // router solicitation / advertisement
        13 => 14, // timestamp / timestamp reply
        14 => 13, // timestamp reply / timestamp
        15 => 16, // information request / reply
        16 => 15, // information reply / request
        17 => 18, // address mask request / reply
        18 => 17, // address mask reply / request
        _ => return None,
    })
}

/// The counterpart of an ICMPv6 request or reply type.
fn icmp6_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        128 => 129, // echo request / reply
        129 => 128,
        130 => 131, // multicast listener query / report
        131 => 130,
        133 => 134, // router solicitation / advertisement
        134 => 133,
        135 => 136, // neighbor solicitation / advertisement
        136 => 135,
        139 => 140, // node information query / response
        140 => 139,
        144 => 145, // home agent address discovery request / reply
        145 => 144,
        _ => return None,
    })
}

/// The Community ID of a connection seen as `src:sport -> dst:dport` with IP protocol
/// `proto`. For ICMP and ICMPv6 `sport` is the type and `dport` the code; `None` when they are
/// not known (the ID then leaves the ports out, as for protocols without ports). `src` and
/// `dst` must be of one family (`None` otherwise).
pub fn community_id(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ports: Option<(u16, u16)>,
) -> Option<String> {
    // A one-way ICMP message (no counterpart type) keeps its direction; the rest is ordered.
    let mut one_way = false;
    let mut ports = match proto {
        TCP | UDP | SCTP => ports,
        ICMP | ICMPV6 => ports.map(|(t, code)| {
            let counterpart = u8::try_from(t).ok().and_then(|t| {
                if proto == ICMP {
                    icmp_counterpart(t)
                } else {
                    icmp6_counterpart(t)
                }
            });
            match counterpart {
                Some(c) => (t, u16::from(c)),
                None => {
                    one_way = true;
                    (t, code)
                }
            }
        }),
        _ => None,
    };
    let (mut a, mut b) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        (IpAddr::V6(s), IpAddr::V6(d)) => (s.octets().to_vec(), d.octets().to_vec()),
        _ => return None,
    };
    let (sp, dp) = ports.unwrap_or((0, 0));
    if !one_way && (b.as_slice(), dp) < (a.as_slice(), sp) {
        std::mem::swap(&mut a, &mut b);
        ports = ports.map(|(s, d)| (d, s));
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&a);
    h.update(&b);
    h.update([proto, 0]);
    if let Some((s, d)) = ports {
        h.update(s.to_be_bytes());
        h.update(d.to_be_bytes());
    }
    let digest = h.finalize();
    Some(format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::community_id;

    /// Protocol, source, destination, ports, ID with seed 0, ID with seed 1.
    type Vector = (
        u8,
        &'static str,
        &'static str,
        Option<(u16, u16)>,
        &'static str,
        &'static str,
    );

    /// The specification's baseline vectors (seed 0, then seed 1): protocol, source,
    /// destination, ports (ICMP: type and code), ID.
    #[rustfmt::skip]
    const BASELINE: [Vector; 23] = [
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", Some((135, 136)), "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", Some((136, 135)), "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=", "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY="),
        (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", Some((135, 136)), "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
        (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", Some((136, 135)), "1:zavyT/cezQr1fmImYCwYnMXbgck=", "1:2hSqmsDZ2kdcY9kbiUzOEBic0iM="),
        (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", Some((3, 0)), "1:2ObVBgIn28oZvibYZhZMBgh7WdQ=", "1:lVEtCZpYu84Xqaa++3lXFyuu2n4="),
        (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", Some((1, 4)), "1:hLZd0XGWojozrvxqE0dWB1iM6R0=", "1:W8MHwXpWzpoSTD+cGcaJr4u0ys8="),
        (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", Some((128, 129)), "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
        (58, "3ffe:501:0:1001::2", "3ffe:507:0:1:200:86ff:fe05:80da", Some((129, 128)), "1:+TW+HtLHvV1xnGhV1lv7XoJrqQg=", "1:GfZxjAkDk2MkegpBYHV6tadtFXQ="),
        (58, "fe80::200:86ff:fe05:80da", "ff02::2", Some((133, 134)), "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", "1:L7Ka0ZMYu+J3bL4ulW2PrqyXNo8="),
        (58, "fe80::260:97ff:fe07:69ea", "ff02::1", Some((134, 133)), "1:pkvHqCL88/tg1k4cPigmZXUtL00=", "1:K/ee5UCqAMAQXDorP5nSa2CGLjc="),
        (1, "192.168.0.89", "192.168.0.1", Some((8, 0)), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "192.168.0.1", "192.168.0.89", Some((0, 8)), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
        (1, "10.0.0.1", "10.0.0.2", Some((11, 0)), "1:YHxtAirCG//0OzkcVAukqKQN9xM=", "1:XjUibYHaafLQ3pxQeiMI8g25q20="),
        (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", Some((63943, 25)), "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        (6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", Some((25, 63943)), "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=", "1:eJYTW6AOzFLlSUoESovMjnu7rMw="),
        (132, "192.168.170.8", "192.168.170.56", Some((7, 7)), "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        (132, "192.168.170.56", "192.168.170.8", Some((7, 7)), "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=", "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg="),
        (6, "128.232.110.120", "66.35.250.204", Some((34855, 80)), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        (6, "66.35.250.204", "128.232.110.120", Some((80, 34855)), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
        (17, "192.168.1.52", "8.8.8.8", Some((54585, 53)), "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        (17, "8.8.8.8", "192.168.1.52", Some((53, 54585)), "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
        (46, "10.1.12.1", "10.1.12.2", None, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
        (46, "10.1.12.2", "10.1.12.1", None, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw=", "1:rYir8gphR31noO9iDRQmF/BteEI="),
    ];

    #[test]
    fn the_specification_baseline_with_seeds_0_and_1() {
        for (proto, src, dst, ports, seed0, seed1) in BASELINE {
            let (s, d) = (src.parse().unwrap(), dst.parse().unwrap());
            assert_eq!(
                community_id(0, s, d, proto, ports).as_deref(),
                Some(seed0),
                "{src} {dst} {proto} {ports:?}"
            );
            assert_eq!(
                community_id(1, s, d, proto, ports).as_deref(),
                Some(seed1),
                "{src} {dst} {proto} {ports:?}"
            );
        }
    }

    #[test]
    fn ports_decide_the_order_between_equal_addresses() {
        // Ports compare as numbers (256 > 1), not as their bytes in memory.
        let a = "10.0.0.1".parse().unwrap();
        let one = community_id(0, a, a, 6, Some((256, 1)));
        assert_eq!(one, community_id(0, a, a, 6, Some((1, 256))));
        // Ports given to a port-less protocol are left out; mixed families have no ID.
        let b = "10.0.0.2".parse().unwrap();
        assert_eq!(
            community_id(0, a, b, 46, Some((1, 2))),
            community_id(0, a, b, 46, None)
        );
        assert_eq!(
            community_id(0, a, "::1".parse().unwrap(), 6, Some((1, 2))),
            None
        );
    }
}
