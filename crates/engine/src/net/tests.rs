#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn upstream_is_subscriber_to_outside() {
    let home = default_home_nets();
    assert_eq!(home.upstream(ip("10.0.0.1"), ip("192.0.2.1")), Some(true));
    assert_eq!(home.upstream(ip("192.0.2.1"), ip("fd00::1")), Some(false));
    assert_eq!(home.upstream(ip("10.0.0.1"), ip("10.0.0.2")), None);
    assert_eq!(home.upstream(ip("192.0.2.1"), ip("198.51.100.1")), None);
}

#[test]
fn parses_and_matches_v4_and_v6() {
    let p: Prefix = "100.64.0.0/10".parse().unwrap();
    assert!(p.contains(ip("100.127.255.255")));
    assert!(!p.contains(ip("100.128.0.0")));
    assert!(
        !p.contains(ip("::ffff:0:0")),
        "IPv6 space outside ::ffff:0:0/96 never matches"
    );
    let q: Prefix = "fc00::/7".parse().unwrap();
    assert!(q.contains(ip("fd12::1")));
    assert!(!q.contains(ip("fe80::1")));
    assert_eq!(q.to_string(), "fc00::/7");
    assert_eq!(
        "10.1.2.3/8".parse::<Prefix>().unwrap().to_string(),
        "10.0.0.0/8"
    );
    assert_eq!(
        "192.0.2.7".parse::<Prefix>().unwrap().to_string(),
        "192.0.2.7/32"
    );
}

#[test]
fn rejects_bad_prefixes() {
    for bad in ["10.0.0.0/33", "fc00::/129", "nope", "10.0.0.0/x", ""] {
        assert!(bad.parse::<Prefix>().is_err(), "{bad}");
    }
}

#[test]
fn default_home_nets_cover_private_space() {
    let h = default_home_nets();
    for inside in [
        "10.1.1.1",
        "172.31.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "fd00::1",
    ] {
        assert!(h.contains(ip(inside)), "{inside}");
    }
    for outside in [
        "198.18.0.1",
        "192.0.2.1",
        "2001:db8::1",
        "172.32.0.1",
        "8.8.8.8",
    ] {
        assert!(!h.contains(ip(outside)), "{outside}");
    }
}
