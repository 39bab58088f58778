//! From the threads' published counters to a [`StatsSnapshot`] for the exporter, and alerts
//! to the sinks' [`AlertEvent`].

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use burstwatch_engine::Alert;
use burstwatch_exporter::sinks::AlertEvent;
use burstwatch_exporter::stats::{
    CaptureThreadStats, DetectorStats, DirectionStats, FlowTableStats, InterfaceStats, OutputStats,
    StatsSnapshot,
};
use burstwatch_wire::DecodeErrorCounts;

use super::shared::Shared;

/// Wall-clock now, ns since the epoch (the shell's clock; the engine never sees it).
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// The counters as the exporter wants them.
pub fn snapshot(
    shared: &Shared,
    sinks: Vec<burstwatch_exporter::stats::SinkStats>,
) -> StatsSnapshot {
    let mut s = StatsSnapshot::default();
    let mut errors = DecodeErrorCounts::default();
    if let Ok(ifaces) = shared.ifaces.lock() {
        for i in ifaces.iter() {
            // Several capture threads of one interface (fanout) add up to its series; it is
            // up while every one of them is.
            let at = match s.interfaces.iter().position(|x| x.name == i.name) {
                Some(at) => at,
                None => {
                    s.interfaces.push(InterfaceStats {
                        name: i.name.clone(),
                        up: true,
                        ..InterfaceStats::default()
                    });
                    s.interfaces.len() - 1
                }
            };
            let thread = s
                .capture_threads
                .iter()
                .filter(|t| t.interface == i.name)
                .count();
            s.capture_threads.push(CaptureThreadStats {
                interface: i.name.clone(),
                thread: u32::try_from(thread).unwrap_or(u32::MAX),
                packets: i.packets,
                kernel_drops: i.dropped,
            });
            let x = &mut s.interfaces[at];
            x.up &= i.up;
            x.packets += i.packets;
            x.captured_bytes += i.captured_bytes;
            x.wire_bytes += i.wire_bytes;
            x.kernel_drops += i.dropped;
            x.interface_drops += i.if_dropped;
            x.open_failures += i.open_failures;
            x.reopens += i.reopens;
            s.not_ip += i.undecoded.not_ip;
            errors.add(&i.undecoded.errors);
        }
    }
    s.decode_errors = StatsSnapshot::decode_errors_from(&errors);
    if let (Ok(w), Ok(caps)) = (shared.worker.lock(), shared.caps.lock()) {
        let d = &w.detect;
        s.direction = DirectionStats {
            packets: [
                d.packets_up,
                d.packets_down,
                d.packets_internal,
                d.packets_transit,
            ],
            bytes: [d.bytes_up, d.bytes_down, d.bytes_internal, d.bytes_transit],
        };
        s.flows = FlowTableStats::from_flow_stats(&w.flows, caps.0);
        s.detector = DetectorStats::from_detect(&w.detect, &caps.1);
        s.worker_newest_ns = vec![w.last_packet_ns.unwrap_or(0)];
        s.clock_steps = w.clock_steps;
        s.clock_offset_seconds = w.clock_offset_ns as f64 / 1e9;
    }
    s.state_restored = shared.restored.load(Ordering::Relaxed);
    if let Ok(saved) = shared.state_saved_ns.lock() {
        if let Some(t) = *saved {
            s.snapshot_age_seconds = (now_ns().saturating_sub(t)) as f64 / 1e9;
        }
    }
    let flows = &shared.flows_output;
    if flows.configured.load(Ordering::Relaxed) {
        s.outputs.push(OutputStats {
            name: "flows",
            dropped: flows.dropped.load(Ordering::Relaxed),
            failing: flows.failing.load(Ordering::Relaxed),
        });
    }
    // The alert line sinks are output files too: what they dropped (given up on, or lost at a
    // full queue) and whether they fail now.
    for k in &sinks {
        let name = match k.name {
            "file" => "alerts_file",
            "stdout" => "alerts_stdout",
            _ => continue,
        };
        s.outputs.push(OutputStats {
            name,
            dropped: k.failed + k.overflow,
            failing: k.failing,
        });
    }
    if let Ok(threads) = shared.flow_stats.lock() {
        (s.flow_exporters, s.flow_sockets) = super::flow_stats::merge(&threads);
        (s.flow_interfaces, s.flow_interfaces_known) = super::flow_stats::interfaces(&threads);
    }
    s.sinks = sinks;
    s
}

/// The sinks' view of an alert.
pub fn alert_event(line: &[u8], a: &Alert) -> AlertEvent {
    let json_line = String::from_utf8_lossy(line).trim_end().to_string();
    AlertEvent {
        json_line,
        id: burstwatch_pipeline::alert_json::id_string(a.id),
        kind: a.kind.as_str(),
        severity: a.severity.as_str(),
        score: a.score,
        src: a.src.to_string(),
        dst: a.dst.to_string(),
        starts_at_unix_ns: a.start_ns,
        ends_at_unix_ns: a.end_ns,
        summary: format!(
            "{} from {} to {}:{} ({} bytes up, score {:.2})",
            a.kind.as_str(),
            a.src,
            a.dst,
            a.dst_port,
            a.bytes_out,
            a.score
        ),
    }
}

/// One info line per alert raised: its decision in brief. The alert's addresses are already
/// the ones its outputs show (pseudonymised when privacy is on).
pub fn log_alert(a: &Alert) {
    let endpoint = match a.dst {
        IpAddr::V4(ip) => format!("{ip}:{}", a.dst_port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", a.dst_port),
    };
    tracing::info!(
        target: "burstwatch::alert",
        id = %burstwatch_pipeline::alert_json::id_string(a.id),
        subscriber = %a.src,
        endpoint = %endpoint,
        score = %format!("{:.2}", a.score),
        severity = %a.severity.as_str(),
        bytes_up = a.bytes_out,
        flows = a.flows,
        "alert {}",
        a.kind.as_str()
    );
}
