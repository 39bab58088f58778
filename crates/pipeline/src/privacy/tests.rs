#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn maps_home_addresses_and_optionally_endpoints() {
    let key: [u8; 32] = core::array::from_fn(|i| i as u8 * 7);
    let home = PrefixSet::new(vec![
        "10.0.0.0/8".parse().unwrap(),
        "fd00::/8".parse().unwrap(),
    ]);
    let p = Pseudonymizer::new(&key);
    let only_home = Privacy::new(p.clone(), home.clone(), false);
    let all = Privacy::new(p.clone(), home, true);
    for a in ["10.1.2.3", "fd00::1"] {
        assert_eq!(only_home.addr(ip(a)), p.pseudonymize(ip(a)));
        assert_ne!(only_home.addr(ip(a)), ip(a));
    }
    assert_eq!(only_home.addr(ip("192.0.2.1")), ip("192.0.2.1"));
    assert_eq!(all.addr(ip("192.0.2.1")), p.pseudonymize(ip("192.0.2.1")));
    assert_eq!(Privacy::disabled().addr(ip("10.1.2.3")), ip("10.1.2.3"));
    assert!(!Privacy::disabled().enabled() && all.enabled());
    assert_eq!(Privacy::disabled().alert_id(7), 7);
    assert_ne!(all.alert_id(7), 7);
}
