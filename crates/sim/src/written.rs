//! What was written of the scenarios, and the truth built from it: every event with a packet
//! in the capture, cut or not, and whether the detector must find it (`should_detect`).
//!
//! The scope rule (what the detector is documented to find, with the default configuration):
//! * a burst event: planned in scope (not into shared infrastructure), complete, at least
//!   [`SCOPE_BURST_BYTES`] upstream within [`SCOPE_BURST_SECS`] at a mean rate of at least
//!   [`SCOPE_BURST_BPS`];
//! * a beacon: planned in scope (period 1–600 s, jitter within the rule), every session it
//!   has written complete, and at least [`SCOPE_BEACON_POLLS`] polls.

use crate::frame;
use crate::scenario;
use crate::truth::{self, Expect, TruthEvent, TruthScenario};

/// A burst in scope moves at least this many L3 bytes upstream ...
pub const SCOPE_BURST_BYTES: u64 = 2_000_000;
/// ... at a mean rate (over its first to last packet) of at least this many bit/s ...
pub const SCOPE_BURST_BPS: f64 = 1.5e6;
/// ... within this many seconds.
pub const SCOPE_BURST_SECS: f64 = 60.0;
/// A beacon in scope has at least this many polls.
pub const SCOPE_BEACON_POLLS: usize = 10;

/// What was measured of one scenario event while writing.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct EventAcc {
    pub first: i64,
    pub last: i64,
    pub up: u64,
    pub down: u64,
    pub packets: u64,
    /// Flows of the event still open (or not started) when the run ended.
    pub open: u32,
}

/// Direction (from the subscriber?) and L3 length of the frame just built.
pub(crate) fn frame_facts(buf: &[u8], sub_ip: &[u8; 16]) -> (bool, u64) {
    let ip = frame::REC + 14;
    if buf[ip] >> 4 == 6 {
        let l3 = u64::from(u16::from_be_bytes([buf[ip + 4], buf[ip + 5]])) + 40;
        (buf[ip + 8..ip + 24] == sub_ip[..], l3)
    } else {
        let l3 = u64::from(u16::from_be_bytes([buf[ip + 2], buf[ip + 3]]));
        (buf[ip + 12..ip + 16] == sub_ip[..4], l3)
    }
}

fn ip_of(a: &[u8; 16], v6: bool) -> std::net::IpAddr {
    if v6 {
        std::net::IpAddr::from(*a)
    } else {
        std::net::IpAddr::from([a[0], a[1], a[2], a[3]])
    }
}

/// Truth entries of the scenarios as written: every event with at least one packet written,
/// marked `cut` (and out of scope) when the capture ended before it did; scenarios none of
/// whose events was reached are left out.
pub(crate) fn build_truth(plan: &scenario::Plan, events: &[EventAcc]) -> Vec<TruthScenario> {
    let mut out = Vec::new();
    for sc in &plan.scenarios {
        let expect = sc.kind.expect();
        let evs: Vec<TruthEvent> = sc
            .events
            .iter()
            .filter(|&&e| events[e as usize].packets > 0)
            .map(|&e| {
                let ev = &events[e as usize];
                let cut = ev.open > 0;
                let secs = truth::ns_to_ts(ev.last) - truth::ns_to_ts(ev.first);
                let burst_in_scope = ev.up >= SCOPE_BURST_BYTES
                    && secs <= SCOPE_BURST_SECS
                    && ev.up as f64 * 8.0 / secs.max(1e-3) >= SCOPE_BURST_BPS;
                TruthEvent {
                    start_ts: truth::ns_to_ts(ev.first),
                    end_ts: truth::ns_to_ts(ev.last),
                    bytes_out: ev.up,
                    bytes_in: ev.down,
                    src: sc
                        .per_event_src
                        .then(|| ip_of(&plan.event_src[e as usize], sc.v6)),
                    cut,
                    should_detect: expect == Expect::Burst && sc.scope && !cut && burst_in_scope,
                }
            })
            .collect();
        if evs.is_empty() {
            continue;
        }
        let complete = evs.len() == sc.events.len() && !evs.iter().any(|e| e.cut);
        let polls = if sc.rounds > 0 {
            sc.rounds as usize
        } else {
            evs.len()
        };
        out.push(TruthScenario {
            id: format!("s{:04}", out.len() + 1),
            kind: sc.kind,
            expect,
            src: ip_of(&sc.src, sc.v6),
            dst: ip_of(&sc.dst, sc.v6),
            dst_port: sc.dst_port,
            proto: if sc.udp { "udp" } else { "tcp" }.to_owned(),
            flows: sc.flows,
            part_of: sc.part_of.map(str::to_owned),
            mission: sc.mission.map(|m| format!("m{m:03}")),
            should_detect: expect == Expect::Beacon
                && sc.scope
                && complete
                && polls >= SCOPE_BEACON_POLLS,
            tags: sc.tags.iter().map(|t| (*t).to_owned()).collect(),
            polls: sc.beacon.map(|_| polls as u32),
            period_s: sc.beacon.map(|b| (b.0 * 1e3).round() / 1e3),
            jitter: sc.beacon.map(|b| (b.1 * 1e3).round() / 1e3),
            events: evs,
        });
    }
    out
}
