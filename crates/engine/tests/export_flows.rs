//! Flow export's synthetic packets (one per 5-tuple and second, with a sampling rate) give the
//! same alerts whether they go through the flow table (`FlowConfig::export_flows`, when flow
//! records are written) or pass it by: the flow hash and ports the detector gets are the same.
//! Captured packets beside them still make flows.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::net::{IpAddr, Ipv4Addr};

use burstwatch_engine::{Alert, DetectConfig, Engine, FlowConfig};
use burstwatch_wire::PacketMeta;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

mod common;
use common::{sharded, Rng};

fn bin(
    t: i64,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    bytes: u32,
    rate: u32,
) -> (i64, PacketMeta) {
    let meta = PacketMeta {
        src,
        dst,
        proto: 6,
        sport,
        dport,
        ip_len: bytes,
        payload_len: bytes.saturating_sub(40),
        sampling: rate,
        ..PacketMeta::default()
    };
    (t, meta)
}

fn sub(i: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 1, (i >> 8) as u8, i as u8))
}

/// Ten minutes of export bins of `subs` subscribers (both directions, a few endpoints each,
/// many shared) at sampling `rate`, with uploads of 20–100 Mbit/s for 5–15 s over 1–4
/// connections to rare endpoints; and, from another subscriber, captured packets (no rate).
fn traffic(seed: u64, subs: u64, rate: u32) -> Vec<(i64, PacketMeta)> {
    let mut r = Rng(seed);
    let mut out = Vec::new();
    let popular: Vec<IpAddr> = (0..20)
        .map(|i| IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)))
        .collect();
    for s in 0..subs {
        let home = sub(s);
        // Background: flows of 5–120 s to popular endpoints, a few kB/s each way.
        let mut t = T0 + r.below(30) as i64 * S;
        while t < T0 + 600 * S {
            let ext = popular[r.below(popular.len() as u64) as usize];
            let sport = 30_000 + r.below(30_000) as u16;
            let len = 5 + r.below(115) as i64;
            let up = 500 + r.below(5_000) as u32;
            let down = 2_000 + r.below(50_000) as u32;
            for k in 0..len {
                let ts = t + k * S;
                out.push(bin(ts, home, sport, ext, 443, up, rate));
                out.push(bin(ts, ext, 443, home, sport, down, rate));
            }
            t += (10 + r.below(60) as i64) * S;
        }
    }
    // Uploads to rare endpoints.
    for u in 0..3 {
        let home = sub(r.below(subs));
        let ext = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10 + u));
        let start = T0 + (120 + u as i64 * 150 + r.below(60) as i64) * S;
        let secs = 5 + r.below(11) as i64;
        let mbit = 20 + r.below(81);
        let conns = 1 + r.below(4) as u16;
        let per_sec = (mbit * 1_000_000 / 8 / u64::from(conns)) as u32;
        for c in 0..conns {
            for k in 0..secs {
                out.push(bin(
                    start + k * S,
                    home,
                    50_000 + c,
                    ext,
                    8443,
                    per_sec,
                    rate,
                ));
                out.push(bin(
                    start + k * S,
                    ext,
                    8443,
                    home,
                    50_000 + c,
                    per_sec / 50,
                    rate,
                ));
            }
        }
    }
    // Captured packets of one more subscriber (sampling 0): they make flows either way.
    let cap = sub(subs + 1);
    for k in 0..120 {
        out.push(bin(
            T0 + k * S + 300_000,
            cap,
            40_000,
            popular[0],
            443,
            1_400,
            0,
        ));
    }
    out.sort_by_key(|(t, _)| *t);
    out
}

fn run(input: &[(i64, PacketMeta)], export_flows: bool) -> (Vec<Alert>, Engine) {
    let flow = FlowConfig {
        export_flows,
        ..FlowConfig::default()
    };
    let mut e = Engine::new(flow, DetectConfig::default(), 3);
    for (t, m) in input {
        e.ingest(*t, m);
    }
    e.finish();
    let alerts = std::iter::from_fn(|| e.pop_alert()).collect();
    (alerts, e)
}

/// `input` with the bins of each second in a shuffled order: consecutive bins then seldom
/// share a pair, so the pair hint of passed-by bins is mostly another pair's.
fn shuffled_within_seconds(input: &[(i64, PacketMeta)], seed: u64) -> Vec<(i64, PacketMeta)> {
    shuffled_within(input, seed, |t| t.div_euclid(S))
}

/// `input` with the bins of each instant (all of a second's bins share one) in a shuffled order;
/// captured packets, each at an instant of its own, stay where they were.
fn shuffled_within_instants(input: &[(i64, PacketMeta)], seed: u64) -> Vec<(i64, PacketMeta)> {
    shuffled_within(input, seed, |t| t)
}

/// `input` shuffled among the packets whose times `group` maps to one value.
fn shuffled_within(
    input: &[(i64, PacketMeta)],
    seed: u64,
    group: impl Fn(i64) -> i64,
) -> Vec<(i64, PacketMeta)> {
    let mut r = Rng(seed);
    let mut out: Vec<(u64, (i64, PacketMeta))> = input
        .iter()
        .map(|x| (r.below(u64::MAX), x.clone()))
        .collect();
    out.sort_by_key(|(k, (t, _))| (group(*t), *k));
    out.into_iter().map(|(_, x)| x).collect()
}

#[test]
fn shuffled_export_bins_give_the_same_alerts_with_or_without_the_flow_table() {
    for seed in 1..=3 {
        let input = shuffled_within_seconds(&traffic(seed, 40, 1), seed);
        let (with, on) = run(&input, true);
        let (without, off) = run(&input, false);
        assert!(!with.is_empty(), "seed {seed}: no alert to compare");
        assert_eq!(with, without, "seed {seed}");
        assert_eq!(on.detector().stats(), off.detector().stats(), "seed {seed}");
        // Each host shard keeps its own hint for the bins it is given.
        let pass_by = FlowConfig {
            export_flows: false,
            ..FlowConfig::default()
        };
        for (n, batch) in [(2, 512), (3, 1)] {
            let (got, _, stats) = sharded(&input, n, batch, pass_by.clone());
            assert_eq!(got, with, "seed {seed}, {n} shards");
            assert_eq!(stats, on.detector().stats(), "seed {seed}, {n} shards");
        }
    }
}

#[test]
fn export_bins_give_the_same_alerts_with_or_without_the_flow_table() {
    for seed in 1..=6 {
        let rate = [1, 1, 10, 100, 1, 1000][seed as usize - 1];
        let input = traffic(seed, 40, rate);
        let export = input.iter().filter(|(_, m)| m.sampling > 0).count() as u64;
        let (with, mut on) = run(&input, true);
        let (without, mut off) = run(&input, false);
        assert!(
            with.iter()
                .any(|a| a.kind == burstwatch_engine::AlertKind::Burst),
            "seed {seed}: no burst alert to compare"
        );
        assert_eq!(with, without, "seed {seed} (1:{rate})");
        // Passed-by bins share one pair hint (the last pair's slot): it may only save lookups.
        assert_eq!(on.detector().stats(), off.detector().stats(), "seed {seed}");
        // With the table: flows of every bin; without: only the captured subscriber's.
        let (son, soff) = (on.flows().stats(), off.flows().stats());
        assert_eq!(son.passed_by, 0);
        assert_eq!(soff.passed_by, export, "seed {seed}");
        assert_eq!((son.packets, son.bytes), (soff.packets, soff.bytes));
        assert_eq!(soff.flows_created, 1, "seed {seed}: the captured flow only");
        assert!(son.flows_created > 40, "seed {seed}");
        let off_records: Vec<_> = std::iter::from_fn(|| off.pop_record()).collect();
        assert_eq!(off_records.len(), 1);
        assert_eq!(off_records[0].packets(), 120);
        assert!(std::iter::from_fn(|| on.pop_record()).count() > 40);
    }
}

/// What a burst alert says that must not depend on the order of the bins within a second:
/// everything but the `port_rarity` count (pairs made on the port so far, which counts pairs
/// made within one second in their order) and the connections' order.
fn order_free(a: &Alert) -> String {
    let mut a = a.clone();
    for r in &mut a.reasons {
        if r.name == "port_rarity" {
            r.value = 0.0;
        }
    }
    a.connections = Default::default();
    format!("{a:?}")
}

#[test]
fn the_order_of_bins_within_a_second_changes_no_burst_alert() {
    for seed in 1..=6 {
        let rate = [1, 1, 10, 100, 1, 1000][seed as usize - 1];
        let input = traffic(seed, 40, rate);
        let (sorted, _) = run(&input, false);
        assert!(sorted
            .iter()
            .any(|a| a.kind == burstwatch_engine::AlertKind::Burst));
        let want: Vec<String> = sorted.iter().map(order_free).collect();
        for shuffle in 1..=3 {
            let (got, _) = run(
                &shuffled_within_instants(&input, seed * 10 + shuffle),
                false,
            );
            let got: Vec<String> = got.iter().map(order_free).collect();
            assert_eq!(got, want, "seed {seed} (1:{rate}), shuffle {shuffle}");
        }
    }
}
