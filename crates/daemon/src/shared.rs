//! State shared between the daemon's threads. Touched about once per second per thread,
//! never per packet.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use burstwatch_engine::detect::DetectStats;
use burstwatch_engine::DetectConfig;
use burstwatch_engine::FlowStats;
use burstwatch_pipeline::decode::Undecoded;

/// Counters of one capture interface.
#[derive(Debug, Clone, Default)]
pub struct IfaceCounters {
    /// Interface name.
    pub name: String,
    /// Whether the capture is open now.
    pub up: bool,
    /// Frames read.
    pub packets: u64,
    /// Captured bytes (what the snap length kept, as `analyze` counts them).
    pub captured_bytes: u64,
    /// The packets' on-wire length.
    pub wire_bytes: u64,
    /// Kernel drops (libpcap `ps_drop`).
    pub dropped: u64,
    /// Interface drops (libpcap `ps_ifdrop`).
    pub if_dropped: u64,
    /// Failed opens (each followed by a retry).
    pub open_failures: u64,
    /// Successful opens after the first (the interface came back).
    pub reopens: u64,
    /// Frames that are not IP or could not be decoded.
    pub undecoded: Undecoded,
    /// When the capture thread last reported (it reports about once a second while it reads,
    /// waits for packets or waits to retry; the systemd watchdog needs it recent).
    pub beat: Option<Instant>,
}

/// Counters of the engine worker.
#[derive(Debug, Clone, Default)]
pub struct WorkerCounters {
    /// Flow-table counters.
    pub flows: FlowStats,
    /// Detector counters.
    pub detect: DetectStats,
    /// Newest packet time seen (ns since the epoch).
    pub last_packet_ns: Option<i64>,
    /// Steps back of the capture clock taken (see `clock_step`).
    pub clock_steps: u64,
    /// What the steps add to packet times now (ns).
    pub clock_offset_ns: i64,
    /// Flow records written.
    pub records: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// When the worker last reported (about once a second, busy or idle).
    pub beat: Option<Instant>,
}

/// The flow-record file, as the output thread publishes it.
#[derive(Debug, Default)]
pub struct FlowsOutput {
    /// A flow file is configured.
    pub configured: AtomicBool,
    /// Records dropped (backlog full while failing, or unwritten at shutdown).
    pub dropped: AtomicU64,
    /// The file cannot be written now.
    pub failing: AtomicBool,
}

/// Everything the threads publish.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set once: stop capturing, flush and exit.
    pub stop: AtomicBool,
    /// Set on SIGHUP: reopen output files.
    pub reopen: AtomicBool,
    /// Capture interfaces, in config order.
    pub ifaces: Mutex<Vec<IfaceCounters>>,
    /// The engine worker.
    pub worker: Mutex<WorkerCounters>,
    /// Whether state was restored from a snapshot at start.
    pub restored: AtomicBool,
    /// Packet time of the restored snapshot.
    pub state_saved_ns: Mutex<Option<i64>>,
    /// Flow-table capacity and detector settings in force (for fill ratios), over all workers.
    pub caps: Mutex<(usize, DetectConfig)>,
    /// Engine workers (fixed at start).
    pub workers: AtomicUsize,
    /// The flow-record file.
    pub flows_output: FlowsOutput,
    /// Sockets receiving flow export (`daemon.flow_listen`) are open.
    pub flow_listening: AtomicBool,
    /// What the flow-export threads have seen (protocols, highest sampling rate), for the
    /// `source` of alerts.
    pub flow_tag: Mutex<burstwatch_pipeline::flow_input::SourceTag>,
    /// NetFlow v9 / IPFIX templates every flow-export thread learned, kept across a restart
    /// (saved beside the learned state: see `templates_file`).
    pub flow_templates: std::sync::Arc<burstwatch_flowexport::TemplateStash>,
    /// Each flow-export thread's counters, by its index.
    pub flow_stats: Mutex<Vec<super::flow_stats::FlowThreadStats>>,
    /// `daemon.sensor` (or `cluster.sensor_id`), fixed at start: written on every flow record
    /// and alert line.
    pub sensor: Option<String>,
}

impl Shared {
    /// Record the caps in force: flow, subscriber and pair caps hold per worker, the endpoint
    /// cap once.
    pub fn set_caps(&self, max_flows: usize, detect: &DetectConfig) {
        let n = self.workers.load(Ordering::Relaxed).max(1);
        let mut d = detect.clone();
        d.max_hosts = d.max_hosts.saturating_mul(n);
        d.max_pairs = d.max_pairs.saturating_mul(n);
        if let Ok(mut c) = self.caps.lock() {
            *c = (max_flows.saturating_mul(n), d);
        }
    }

    /// Whether shutdown was requested.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The capture thread in `slot` is alive (waiting to retry).
    pub fn beat_capture(&self, slot: usize) {
        if let Ok(mut v) = self.ifaces.lock() {
            if let Some(s) = v.get_mut(slot) {
                s.beat = Some(Instant::now());
            }
        }
    }

    /// Whether every interface is capturing.
    pub fn all_up(&self) -> bool {
        self.ifaces
            .lock()
            .map(|v| {
                (!v.is_empty() || self.flow_listening.load(Ordering::Relaxed))
                    && v.iter().all(|i| i.up)
            })
            .unwrap_or(false)
    }
}
