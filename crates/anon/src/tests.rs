#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Key of the Crypto-PAn reference distribution's sample trace.
const REFERENCE_KEY: [u8; 32] = [
    21, 34, 23, 141, 51, 164, 207, 128, 19, 10, 91, 22, 73, 144, 125, 16, 216, 152, 143, 131, 121,
    121, 101, 39, 98, 87, 76, 45, 42, 132, 34, 2,
];

fn check(key: &[u8; 32], cases: &[(&str, &str)]) {
    let p = Pseudonymizer::new(key);
    for (orig, pseudo) in cases {
        assert_eq!(p.pseudonymize(ip(orig)), ip(pseudo), "{orig}");
        assert_eq!(p.reveal(ip(pseudo)), ip(orig), "{pseudo}");
    }
}

#[test]
fn reference_sample_trace() {
    // Pairs from sample_trace_raw.dat / sample_trace_sanitized.dat of the reference
    // implementation (Fan, Xu, Ammar, Moon).
    check(
        &REFERENCE_KEY,
        &[
            ("128.11.68.132", "135.242.180.132"),
            ("129.118.74.4", "134.136.186.123"),
            ("130.132.252.244", "133.68.164.234"),
            ("141.223.7.43", "141.167.8.160"),
            ("24.0.250.221", "100.15.198.226"),
            ("64.14.118.196", "0.255.183.58"),
            ("4.3.88.225", "124.60.155.63"),
        ],
    );
}

#[test]
fn published_vectors_of_other_implementations() {
    // Key 0x00..0x1f, as used by pycryptopan and yacryptopan's self-check.
    let counting: [u8; 32] = core::array::from_fn(|i| i as u8);
    check(
        &counting,
        &[
            ("192.0.2.1", "2.90.93.17"),
            ("2001:db8::1", "dd92:2c44:3fc0:ff1e:7ff9:c7f0:8180:7e00"),
        ],
    );
    // yacryptopan's README example.
    check(
        b"32-char-str-for-AES-key-and-pad.",
        &[("192.0.2.1", "192.0.125.244")],
    );
}

#[test]
fn key_parsing() {
    let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    let want: [u8; 32] = core::array::from_fn(|i| i as u8);
    assert_eq!(parse_key(hex.as_bytes()).unwrap(), want);
    assert_eq!(
        parse_key(format!("  {}\n", hex.to_uppercase()).as_bytes()).unwrap(),
        want
    );
    assert_eq!(parse_key(&want).unwrap(), want);
    assert_eq!(format_key_hex(&want), hex);
    assert!(parse_key(b"abc").is_err());
    assert!(parse_key(&[b'g'; 64]).is_err());
    assert!(parse_key(&[0u8; 33]).is_err());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    std::fs::write(&path, "xyz").unwrap();
    let e = Pseudonymizer::from_key_file(&path).unwrap_err().to_string();
    assert!(
        e.contains("64 hexadecimal digits") && e.contains('k'),
        "{e}"
    );
    std::fs::write(&path, format!("{hex}\n")).unwrap();
    let p = Pseudonymizer::from_key_file(&path).unwrap();
    assert_eq!(p.pseudonymize(ip("192.0.2.1")), ip("2.90.93.17"));
    assert!(Pseudonymizer::from_key_file(&dir.path().join("missing")).is_err());
}

#[test]
fn key_files_that_are_not_regular_files_are_refused_at_once() {
    // `/dev/zero` used to be read until memory ran out; a directory or FIFO is no key either.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let mut paths = vec![
        std::path::PathBuf::from("/dev/zero"),
        dir.path().to_path_buf(),
    ];
    if made.is_ok_and(|s| s.success()) {
        paths.push(fifo);
    }
    for p in paths {
        let e = Pseudonymizer::from_key_file(&p).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{}: {e}", p.display());
    }
    // A huge regular file is read only up to the bound and refused by its length.
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'0'; 1 << 20]).unwrap();
    let e = Pseudonymizer::from_key_file(&big).unwrap_err().to_string();
    assert!(e.contains("found 4096 bytes"), "{e}");
}

fn common_prefix(a: u128, b: u128) -> u32 {
    (a ^ b).leading_zeros()
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
        IpAddr::V6(v) => u128::from(v),
    }
}

/// Two addresses of one family sharing a random number of leading bits.
fn pair(v4: bool) -> impl Strategy<Value = (IpAddr, IpAddr)> {
    let width = if v4 { 32u32 } else { 128 };
    (any::<u128>(), any::<u128>(), 0..=width).prop_map(move |(a, r, k)| {
        // b: a's first k bits, then a flipped bit (if any bits remain), then random bits.
        let b = if k == width {
            a
        } else {
            let keep = prefix_mask(k + 128 - width);
            let flip = 1u128 << (width - 1 - k);
            (a & keep) | ((a ^ flip) & flip) | (r & !keep & (flip - 1))
        };
        let mk = |x: u128| -> IpAddr {
            if v4 {
                IpAddr::V4(Ipv4Addr::from(x as u32))
            } else {
                IpAddr::V6(Ipv6Addr::from(x))
            }
        };
        let narrow = |x: u128| if v4 { x & u128::from(u32::MAX) } else { x };
        (mk(narrow(a)), mk(narrow(b)))
    })
}

proptest! {
    #[test]
    fn prefix_preserving_v4((a, b) in pair(true), key in any::<[u8; 32]>()) {
        let p = Pseudonymizer::new(&key);
        let (pa, pb) = (p.pseudonymize(a), p.pseudonymize(b));
        prop_assert!(pa.is_ipv4() && pb.is_ipv4());
        prop_assert_eq!(common_prefix(bits(a), bits(b)), common_prefix(bits(pa), bits(pb)));
        prop_assert_eq!(p.reveal(pa), a);
        prop_assert_eq!(p.reveal(pb), b);
    }

    #[test]
    fn prefix_preserving_v6((a, b) in pair(false), key in any::<[u8; 32]>()) {
        let p = Pseudonymizer::new(&key);
        let (pa, pb) = (p.pseudonymize(a), p.pseudonymize(b));
        prop_assert!(pa.is_ipv6() && pb.is_ipv6());
        prop_assert_eq!(common_prefix(bits(a), bits(b)), common_prefix(bits(pa), bits(pb)));
        prop_assert_eq!(p.reveal(pa), a);
        prop_assert_eq!(p.reveal(pb), b);
    }

    #[test]
    fn different_keys_give_different_pseudonyms(k1 in any::<[u8; 32]>(), k2 in any::<[u8; 32]>(), a in any::<u128>()) {
        prop_assume!(k1 != k2);
        let (p1, p2) = (Pseudonymizer::new(&k1), Pseudonymizer::new(&k2));
        // One address can collide by chance (2^-32 for IPv4); an IPv6 address and a
        // 16-address IPv4 sample colliding under two keys cannot happen in practice.
        let v6 = IpAddr::V6(Ipv6Addr::from(a));
        prop_assert_ne!(p1.pseudonymize(v6), p2.pseudonymize(v6));
        let v4s: Vec<IpAddr> = (0..16u32).map(|i| IpAddr::V4(Ipv4Addr::from((a as u32).wrapping_add(i << 20)))).collect();
        prop_assert!(v4s.iter().any(|&x| p1.pseudonymize(x) != p2.pseudonymize(x)));
    }
}

#[test]
fn debug_hides_the_key() {
    let p = Pseudonymizer::new(&REFERENCE_KEY);
    assert_eq!(format!("{p:?}"), "Pseudonymizer { .. }");
}

#[test]
fn tags_are_keyed_and_stable() {
    let a = Pseudonymizer::new(&REFERENCE_KEY);
    let b = Pseudonymizer::new(&[7u8; 32]);
    assert_eq!(a.tag_u64(42), a.tag_u64(42));
    assert_ne!(a.tag_u64(42), a.tag_u64(43));
    assert_ne!(a.tag_u64(42), b.tag_u64(42));
    assert_ne!(a.tag_u64(42), 42);
}
