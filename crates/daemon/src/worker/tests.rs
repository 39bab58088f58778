//! The worker loop with the engine, fed batches as the capture threads hand them over.

use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;

use burstwatch_engine::{DetectConfig, FlowConfig};
use burstwatch_pipeline::privacy::Privacy;
use burstwatch_pipeline::shards::{EngineSpec, Engines};
use burstwatch_wire::PacketMeta;

use super::{run, Output, Recycle};
use crate::shared::Shared;

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

/// A subscriber's steady upload to one endpoint: `n` packets of 1,200 bytes, ten a second from
/// `from`.
fn steady(from: i64, n: i64) -> Vec<(i64, PacketMeta)> {
    let meta = PacketMeta {
        src: [10, 0, 0, 1].into(),
        dst: [198, 51, 100, 7].into(),
        proto: 6,
        sport: 40_000,
        dport: 443,
        ip_len: 1_200,
        payload_len: 1_160,
        ..PacketMeta::default()
    };
    (0..n).map(|i| (from + i * S / 10, meta.clone())).collect()
}

/// The alerts of the worker fed `batches` (then hung up on), and what it published.
fn alerts_of(batches: Vec<Vec<(i64, PacketMeta)>>) -> (Vec<burstwatch_engine::Alert>, Arc<Shared>) {
    let engines = Engines::new(
        1,
        EngineSpec {
            flow: FlowConfig::default(),
            detect: DetectConfig::default(),
            seed: 7,
            enrich: None,
            state: None,
        },
    )
    .expect("engine");
    let (tx, rx) = sync_channel(batches.len() + 1);
    for b in batches {
        tx.send(b).expect("queued");
    }
    drop(tx);
    let (_control_tx, control) = channel();
    let (out_tx, out) = channel();
    let shared = Arc::new(Shared::default());
    run(
        engines,
        rx,
        control,
        out_tx,
        Arc::clone(&shared),
        Privacy::disabled(),
        None,
        None,
        None,
        Recycle {
            write_flows: false,
            spare: Vec::new(),
        },
    );
    let alerts = out
        .try_iter()
        .filter_map(|o| match o {
            Output::Alert(_, a) => Some(*a),
            Output::Flows(_) => None,
        })
        .collect();
    (alerts, shared)
}

#[test]
fn a_clock_set_back_an_hour_does_not_pile_its_traffic_into_one_second() {
    // Two minutes of steady upload, then the system clock is set back an hour and the same
    // upload goes on for five minutes: no burst in it, before or after.
    let before = steady(T0, 1_200);
    let after = steady(T0 + 120 * S - 3_600 * S, 3_000);
    let (alerts, shared) = alerts_of(vec![before, after]);
    assert!(alerts.is_empty(), "{alerts:#?}");
    let w = shared.worker.lock().expect("counters");
    assert_eq!(w.clock_steps, 1);
    // The step's packets were counted from the newest time on: an hour, less the 6.4 s the
    // confirming packets took, less what five minutes of packet time shrank it by (1.5 s).
    let offset = w.clock_offset_ns;
    assert!((3_591 * S..=3_593 * S).contains(&offset), "{offset}");
    // Packet time went on: the newest is the last packet's, shifted by the offset.
    assert_eq!(
        w.last_packet_ns,
        Some(T0 + 120 * S - 3_600 * S + 2_999 * S / 10 + offset)
    );
}

#[test]
fn a_short_burst_after_the_step_is_still_found_at_its_shifted_time() {
    let before = steady(T0, 1_200);
    let mut after = steady(T0 + 120 * S - 3_600 * S, 3_000);
    // Four seconds of 2 MB/s to the same endpoint, a minute after the step.
    let burst_at = T0 + 180 * S - 3_600 * S;
    let mut p = after[0].1.clone();
    p.ip_len = 1_500;
    p.payload_len = 1_460;
    after.extend((0..5_600).map(|i| (burst_at + i * (4 * S) / 5_600, p.clone())));
    after.sort_by_key(|(t, _)| *t);
    let (alerts, shared) = alerts_of(vec![before, after]);
    let offset = shared.worker.lock().expect("counters").clock_offset_ns;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let start = alerts[0].start_ns;
    assert!(
        (burst_at + offset - 2 * S..=burst_at + offset + 2 * S).contains(&start),
        "burst at {} (shifted), alert from {start}",
        burst_at + offset
    );
}

#[test]
fn flow_exports_samples_held_behind_the_packets_are_not_a_clock_step() {
    // A daemon capturing packets and listening for flow export: the export's bins come out a
    // hold (75 s) behind the captured packets, hundreds in a row.
    let packets = steady(T0, 1_200);
    let mut bins = steady(T0 + 120 * S - 75 * S, 300);
    for (_, m) in &mut bins {
        m.sampling = 1;
        m.dst = [198, 51, 100, 9].into();
    }
    let (_, shared) = alerts_of(vec![packets, bins, steady(T0 + 121 * S, 100)]);
    let w = shared.worker.lock().expect("counters");
    assert_eq!((w.clock_steps, w.clock_offset_ns), (0, 0));
}
