//! A burst that fits in one second and is followed by silence (a fast upload, then nothing):
//! no later packet of the pair closes its second, so the detector's sweep must. Found on a live
//! link as time moves on (the daemon's idle ticks), and at the end of a capture.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::IpAddr;

use burstwatch_engine::{Alert, DetectConfig, Detector};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// 3 MB upstream from 10.0.0.5 to 198.18.9.9 within 0.4 s of one second (`offset_ms` into
/// it), nothing after.
fn upload(d: &mut Detector, at_sec: i64, offset_ms: i64) {
    for i in 0..2000i64 {
        let t = T0 + at_sec * S + offset_ms * 1_000_000 + i * 200_000;
        d.ingest(t, ip("10.0.0.5"), ip("198.18.9.9"), 40_000, 443, 6, 1500, 7);
    }
}

fn bursts(d: &mut Detector) -> Vec<Alert> {
    let mut out = Vec::new();
    while let Some(a) = d.pop_alert() {
        if a.kind.as_str() == "burst" {
            out.push(a);
        }
    }
    out
}

#[test]
fn a_burst_within_one_second_then_silence_is_found_as_time_moves_on() {
    for offset_ms in [0, 300, 590] {
        let mut d = Detector::new(DetectConfig::default(), 1);
        upload(&mut d, 100, offset_ms);
        // Packet time follows the clock (no packet of the pair); the alert waits its hold.
        d.advance_to(T0 + 100 * S + 70 * S);
        let got = bursts(&mut d);
        assert_eq!(got.len(), 1, "offset {offset_ms} ms: {got:#?}");
        assert_eq!(got[0].bytes_out, 3_000_000);
        assert_eq!(got[0].dst, ip("198.18.9.9"));
    }
}

#[test]
fn a_burst_within_one_second_at_the_end_of_a_capture_is_found() {
    let mut d = Detector::new(DetectConfig::default(), 1);
    upload(&mut d, 100, 200);
    d.finish();
    let got = bursts(&mut d);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].bytes_out, 3_000_000);
}
