#![allow(clippy::unwrap_used)] // tests: failures should panic
use super::*;
use crate::net::PrefixSet;

fn packet(l: &mut Subscribers, ts: i64, src: &str, dst: &str, hint: &mut u32) {
    let mut out = Vec::new();
    let (s, d) = (src.parse().unwrap(), dst.parse().unwrap());
    l.count_packet(
        ts, s, d, 40_000, 443, 6, None, 1_000, 960, 7, 0, hint, &mut out,
    );
}

#[test]
fn a_pair_hint_says_the_direction_only_under_the_home_networks_that_made_it() {
    let mut l = Subscribers::new(DetectConfig::default(), 1);
    let mut hint = u32::MAX;
    // 10.0.0.1 is home under the defaults: upstream, then downstream, through the hint.
    packet(&mut l, NS_PER_SEC, "10.0.0.1", "198.18.0.1", &mut hint);
    assert_ne!(hint, u32::MAX);
    packet(&mut l, 2 * NS_PER_SEC, "198.18.0.1", "10.0.0.1", &mut hint);
    packet(&mut l, 3 * NS_PER_SEC, "10.0.0.1", "198.18.0.1", &mut hint);
    let s = l.stats();
    assert_eq!((s.packets_up, s.packets_down), (2, 1));

    // Now only 198.18.0.0/15 is home: the same hint must not keep calling 10.0.0.1 home.
    let cfg = DetectConfig {
        home_nets: PrefixSet::new(vec!["198.18.0.0/15".parse().unwrap()]),
        ..DetectConfig::default()
    };
    l.set_config(cfg);
    packet(&mut l, 4 * NS_PER_SEC, "10.0.0.1", "198.18.0.1", &mut hint);
    let s = l.stats();
    assert_eq!((s.packets_up, s.packets_down), (2, 2));
    // The new pair (198.18.0.1, 10.0.0.1) vouches from then on.
    packet(&mut l, 5 * NS_PER_SEC, "198.18.0.1", "10.0.0.1", &mut hint);
    packet(&mut l, 6 * NS_PER_SEC, "10.0.0.1", "198.18.0.1", &mut hint);
    let s = l.stats();
    assert_eq!((s.packets_up, s.packets_down), (3, 3));
    assert_eq!(s.pairs, 2);
}

#[test]
fn held_bytes_count_in_the_uplink_peak_but_not_in_the_baseline() {
    // 40 s of 10 kB ordinary and 100 kB of a held pair per second, entry 125 kB/s.
    let run = |held: bool| {
        let mut h = HostState::default();
        for sec in 1..=41 {
            h.count_upstream(sec * NS_PER_SEC, 10_000, false, |_| 125_000.0);
            h.count_upstream(sec * NS_PER_SEC + NS_PER_SEC / 2, 100_000, held, |_| {
                125_000.0
            });
        }
        h
    };
    let h = run(true);
    let b = h.baseline_bytes(30).unwrap();
    assert!((5_000.0..25_000.0).contains(&b), "{b}");
    assert_eq!(h.peak_up, 110_000);
    // Not held, the same bytes are ordinary.
    let b = run(false).baseline_bytes(30).unwrap();
    assert!(b > 60_000.0, "{b}");
    // A second held whole is no active second.
    let mut h = HostState::default();
    for sec in 1..=41 {
        h.count_upstream(sec * NS_PER_SEC, 50_000, true, |_| 125_000.0);
    }
    assert_eq!((h.active_secs, h.baseline_bytes(0)), (0, None));
}

#[test]
fn a_late_packet_counts_in_the_open_second_and_any_packet_rolls_it() {
    let entry = |_: &HostState| 125_000.0;
    let mut h = HostState::default();
    h.count_upstream(5 * NS_PER_SEC, 1_000, false, entry);
    h.count_upstream(6 * NS_PER_SEC, 2_000, false, entry);
    // Second 5 again, late: it stays in second 6, which is not closed by it.
    h.count_upstream(5 * NS_PER_SEC + 900_000_000, 500, false, entry);
    assert_eq!((h.sec, h.bin_up, h.active_secs), (6, 2_500, 1));
    // A packet without upstream bytes (the subscriber's downstream) closes second 6.
    h.roll(7, entry);
    assert_eq!((h.sec, h.bin_up, h.active_secs), (7, 0, 2));
    assert_eq!(h.peak_up, 2_500);
    // An empty second may move back: a first packet before 1970 still opens its second.
    let mut h = HostState::default();
    h.count_upstream(-3 * NS_PER_SEC, 700, false, entry);
    assert_eq!((h.sec, h.bin_up), (-3, 700));
    h.roll(-2, entry);
    assert_eq!((h.sec, h.active_secs, h.peak_up), (-2, 1, 700));
}

#[test]
fn subscriber_hash_is_fixed_across_machines_and_versions() {
    // Golden values: these hashes are written to state files; a change here makes old
    // files unreadable and needs a new STATE_VERSION.
    let v4 = crate::key::addr_bytes("10.0.0.1".parse().unwrap());
    let v6 = crate::key::addr_bytes("2001:db8::1".parse().unwrap());
    assert_eq!(host_hash(&v4), GOLDEN_V4);
    assert_eq!(host_hash(&v6), GOLDEN_V6);
}
const GOLDEN_V4: u32 = 3_379_046_433;
const GOLDEN_V6: u32 = 2_714_305_622;
