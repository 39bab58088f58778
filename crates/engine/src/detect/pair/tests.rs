#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

/// A burst's counters are written flat, as before they were a `Volume` (candidates on
/// hold are kept in the state file), and a file with the counters of seconds after the
/// last hot one still reads.
#[test]
fn a_bursts_counters_keep_their_state_file_form() {
    let acc = BurstAcc {
        vol: Volume {
            up: 5,
            down: 6,
            pk_up: 7,
            pk_down: 8,
        },
        pend: Volume {
            up: 1,
            ..Volume::default()
        },
        ..BurstAcc::default()
    };
    let v = serde_json::to_value(&acc).unwrap();
    assert_eq!(
        (&v["up"], &v["down"], &v["pk_up"], &v["pk_down"]),
        (&5.into(), &6.into(), &7.into(), &8.into())
    );
    assert!(v.get("vol").is_none() && v.get("pend").is_none(), "{v}");
    let mut old = v.clone();
    old["pend_up"] = 3.into();
    old["pend_pk_up"] = 1.into();
    let back: BurstAcc = serde_json::from_value(old).unwrap();
    assert_eq!(back.vol, acc.vol);
    assert_eq!(back.pend, Volume::default());
}
use super::*;

const NS_PER_SEC: i64 = 1_000_000_000;
const E500K: (f64, ThresholdBasis) = (500_000.0, ThresholdBasis::Floor);

/// Feed `bytes_per_sec` upstream in 10 packets per second over `[from, to)` seconds.
fn feed(p: &mut PairState, from: i64, to: i64, bytes_per_sec: u32, out: &mut Vec<FinishedBurst>) {
    for sec in from..to {
        for k in 0..10 {
            let ts = sec * NS_PER_SEC + k * NS_PER_SEC / 10;
            if let Some(f) = p.close_bin_before(
                ts.div_euclid(NS_PER_SEC),
                E500K,
                None,
                0.25,
                3,
                60 * NS_PER_SEC,
            ) {
                out.push(f);
            }
            let conn = Connection {
                proto: 6,
                from_subscriber: true,
                ports: Some((40_000 + (sec as u16 % 2), 443)),
            };
            p.add(
                ts,
                true,
                bytes_per_sec / 10,
                7 + (sec as u32 % 2),
                conn,
                443,
                true,
                2 * NS_PER_SEC,
            );
        }
    }
}

#[test]
fn a_burst_keeps_its_first_connections_from_its_first_second_on() {
    let mut p = PairState::new(0);
    let mut out = Vec::new();
    // 12 connections, 3 new ones a second from the first hot second on; the endpoint's
    // replies come first on every third.
    for sec in 10..20i64 {
        for k in 0..10u16 {
            let ts = sec * NS_PER_SEC + i64::from(k) * NS_PER_SEC / 10;
            if let Some(f) = p.close_bin_before(sec, E500K, None, 0.25, 3, 60 * NS_PER_SEC) {
                out.push(f);
            }
            let c = ((sec - 10) as u16 * 3 + k % 3).min(11);
            let up = c % 3 != 0 || k >= 3;
            let conn = Connection {
                proto: 6,
                from_subscriber: up,
                ports: Some(if up {
                    (50_000 + c, 443)
                } else {
                    (443, 50_000 + c)
                }),
            };
            p.add(
                ts,
                up,
                100_000,
                100 + u32::from(c),
                conn,
                443,
                true,
                2 * NS_PER_SEC,
            );
        }
    }
    out.extend(p.finish_burst(60 * NS_PER_SEC));
    assert_eq!(out.len(), 1, "{out:?}");
    let acc = &out[0].acc;
    assert_eq!(acc.flows, 12);
    let conns = acc.connections.as_slice();
    assert_eq!(conns.len(), 8);
    for (c, conn) in conns.iter().enumerate() {
        let c = c as u16;
        let want = if c % 3 == 0 {
            (false, (443, 50_000 + c))
        } else {
            (true, (50_000 + c, 443))
        };
        assert_eq!(
            (conn.from_subscriber, conn.ports),
            (want.0, Some(want.1)),
            "{c}"
        );
    }
}

#[test]
fn segments_a_burst_between_quiet_periods() {
    let mut p = PairState::new(0);
    let mut out = Vec::new();
    feed(&mut p, 100, 110, 20_000, &mut out); // background
    feed(&mut p, 110, 120, 2_000_000, &mut out); // 10 s at 2 MB/s
    feed(&mut p, 120, 140, 20_000, &mut out); // background again
    assert_eq!(out.len(), 1, "{out:?}");
    let b = &out[0];
    assert!(!b.too_long);
    assert_eq!(b.acc.start_ns, 110 * NS_PER_SEC);
    assert_eq!(b.acc.end_ns, 119 * NS_PER_SEC + 9 * NS_PER_SEC / 10);
    assert_eq!(b.acc.vol.up, 20_000_000);
    assert_eq!(b.acc.peak_up, 2_000_000);
    assert_eq!(b.acc.flows, 2);
    assert_eq!(b.acc.main_port(), (6, 443));
}

#[test]
fn a_short_dip_does_not_split_a_burst_but_silence_ends_it() {
    let mut p = PairState::new(0);
    let mut out = Vec::new();
    feed(&mut p, 0, 5, 2_000_000, &mut out);
    feed(&mut p, 5, 6, 200_000, &mut out); // 0.1 of entry: a cool second
    feed(&mut p, 6, 10, 2_000_000, &mut out);
    assert!(out.is_empty());
    // The sweep closes the open bin (second 9) before asking.
    assert!(p
        .close_bin_before(12, E500K, None, 0.25, 3, 60 * NS_PER_SEC)
        .is_none());
    assert!(!p.burst_is_over(12, 3, 60 * NS_PER_SEC));
    assert!(p.burst_is_over(13, 3, 60 * NS_PER_SEC));
    let f = p.finish_burst(60 * NS_PER_SEC).unwrap();
    assert_eq!(f.acc.vol.up, 9 * 2_000_000 + 200_000);
}

/// Seconds `secs` of a pair, each with one sample of 1.5 MB (a full-size packet at 1:1000)
/// when its flag is set; the bursts that ended, in order.
fn sampled(p: &mut PairState, secs: &[(i64, bool)]) -> Vec<FinishedBurst> {
    let mut out = Vec::new();
    for &(sec, hot) in secs {
        let max = 60 * NS_PER_SEC;
        if let Some(f) = p.close_bin_before(sec, E500K, None, 0.25, 3, max) {
            out.push(f);
        }
        // As the sweep does for a pair with no packet to close its second.
        if p.burst_is_over(sec, 3, max) {
            out.extend(p.finish_burst(max));
        }
        if hot {
            p.note_sampling(1000);
            let conn = Connection {
                proto: 17,
                from_subscriber: true,
                ports: Some((40_000, 3478)),
            };
            p.add(
                sec * NS_PER_SEC,
                true,
                1_500_000,
                7,
                conn,
                3478,
                true,
                2 * NS_PER_SEC,
            );
        }
    }
    out
}

#[test]
fn sampled_input_ends_a_burst_only_after_a_silence_unlikely_at_its_rate() {
    // A steady stream whose samples come every 6 s (a 2 Mbit/s call at 1:1000) for 5 minutes:
    // one piece, longer than any burst; captured, the same seconds are 50 bursts.
    let secs: Vec<(i64, bool)> = (0..300).map(|s| (s, s % 6 == 0)).collect();
    let mut p = PairState::new(0);
    let mut out = sampled(&mut p, &secs);
    assert!(out.is_empty(), "{out:?}");
    out.extend(p.finish_burst(60 * NS_PER_SEC));
    assert_eq!(out.len(), 1);
    assert!(out[0].too_long);
    // A dense cluster of samples (12 Mbit/s for 5 s) then silence: over after 9 quiet
    // seconds (a sample a second; 0.1 % / 5 chance of 8.5 s without one).
    let mut p = PairState::new(0);
    let secs: Vec<(i64, bool)> = (0..30).map(|s| (s, (10..15).contains(&s))).collect();
    let out = sampled(&mut p, &secs);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(!out[0].too_long);
    assert_eq!(out[0].acc.vol.up, 5 * 1_500_000);
    let p = PairState::new(0);
    let secs: Vec<(i64, bool)> = (0..30).map(|s| (s, (10..15).contains(&s))).collect();
    let until = |n: usize| sampled(&mut p.clone(), &secs[..n]).len();
    assert_eq!(
        (until(24), until(25)),
        (0, 1),
        "ends once 9 quiet seconds have passed"
    );
    let gap = |p: &PairState| {
        p.burst
            .as_ref()
            .map(|b| b.quiet_secs(3, p.sampling, 60 * NS_PER_SEC))
    };
    // Captured packets keep the configured quiet time.
    let mut p = PairState::new(0);
    feed(&mut p, 0, 2, 2_000_000, &mut Vec::new());
    assert_eq!(gap(&p), Some(3));
}

#[test]
fn a_pair_is_held_from_the_baseline_in_its_burst_and_after_its_last_candidate() {
    let mut p = PairState::new(0);
    let mut out = Vec::new();
    let (max, hold) = (60 * NS_PER_SEC, 600 * NS_PER_SEC);
    feed(&mut p, 0, 10, 1_000, &mut out);
    assert!(
        !p.held_from_baseline(10 * NS_PER_SEC, max, hold),
        "no burst yet"
    );
    feed(&mut p, 10, 20, 2_000_000, &mut out);
    assert!(p.burst.is_some());
    assert!(
        p.held_from_baseline(20 * NS_PER_SEC, max, hold),
        "in its burst"
    );
    // Past the longest burst it is a sustained transfer: ordinary again.
    assert!(p.held_from_baseline(10 * NS_PER_SEC + max, max, hold));
    assert!(!p.held_from_baseline(10 * NS_PER_SEC + max + NS_PER_SEC, max, hold));
    feed(&mut p, 20, 30, 1_000, &mut out);
    assert_eq!(out.len(), 1);
    assert!(p.burst.is_none());
    assert!(
        !p.held_from_baseline(30 * NS_PER_SEC, max, hold),
        "ended, not a candidate"
    );
    // It became a candidate: held for `hold` from its start.
    p.push_burst_start(10);
    assert!(p.held_from_baseline(30 * NS_PER_SEC, max, hold));
    assert!(p.held_from_baseline(610 * NS_PER_SEC + NS_PER_SEC / 2, max, hold));
    assert!(!p.held_from_baseline(611 * NS_PER_SEC, max, hold));
}

#[test]
fn sustained_transfers_are_marked_too_long() {
    let mut p = PairState::new(0);
    let mut out = Vec::new();
    feed(&mut p, 0, 100, 2_000_000, &mut out);
    feed(&mut p, 100, 110, 1_000, &mut out);
    assert_eq!(out.len(), 1);
    assert!(out[0].too_long);
}

#[test]
fn smoothed_rates_follow_the_bins_at_two_time_scales() {
    let mut p = PairState::new(0);
    let mut out = Vec::new();
    feed(&mut p, 0, 120, 10_000, &mut out);
    let r = p.rates();
    assert!((r.up_10s - 10_000.0).abs() < 10.0, "{r:?}");
    assert!((r.up_60s - 10_000.0).abs() < 1_500.0, "{r:?}");
    assert_eq!(r.down_10s, 0.0);
    // After 30 silent seconds the 10 s view has mostly forgotten, the 60 s view less so.
    p.close_bin_before(
        121,
        (1e12, ThresholdBasis::Floor),
        None,
        0.25,
        3,
        60 * NS_PER_SEC,
    );
    p.fold_rates(151, 0, 0);
    let r = p.rates();
    assert!(r.up_10s < 600.0 && r.up_60s > 5_000.0, "{r:?}");
}
