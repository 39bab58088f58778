//! [`StatsSnapshot`]: the plain-data interface between the daemon core and the exporter.
//!
//! The core fills one snapshot about once per second from its worker-local counters and hands
//! it to [`crate::metrics::Metrics::update`]. The per-packet path never touches Prometheus types
//! or locks. Counters are absolute totals since the worker started; the exporter keeps its
//! exported counters monotonic when a total goes backwards (a worker restarted).

use burstwatch_engine::{DetectConfig, DetectStats, EndReason, FlowStats};
use burstwatch_wire::DecodeErrorCounts;

/// Alert kinds, in the order of [`DetectStats::alerts`]' first index.
pub const ALERT_KINDS: [&str; 2] = ["burst", "beacon"];

/// Severities, in the order of [`DetectStats::alerts`]' second index.
pub const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// Directions of a packet relative to the home network.
pub const DIRECTIONS: [&str; 4] = ["up", "down", "internal", "transit"];

/// One capture interface.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterfaceStats {
    /// Interface name from the configuration (bounded: a label value).
    pub name: String,
    /// Whether the capture on it is open now.
    pub up: bool,
    /// Packets received from it.
    pub packets: u64,
    /// Captured bytes received from it (what the snap length kept).
    pub captured_bytes: u64,
    /// On-wire length of the packets received from it.
    pub wire_bytes: u64,
    /// Packets the kernel dropped (libpcap `ps_drop`).
    pub kernel_drops: u64,
    /// Packets the interface or driver dropped (libpcap `ps_ifdrop`).
    pub interface_drops: u64,
    /// Failed attempts to open the capture.
    pub open_failures: u64,
    /// Re-opens after the capture failed while running.
    pub reopens: u64,
}

/// One capture thread of an interface (`daemon.capture_threads`: each has its own ring).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureThreadStats {
    /// Interface name from the configuration.
    pub interface: String,
    /// The thread's index among those of its interface (0 ..< capture_threads).
    pub thread: u32,
    /// Packets this thread read.
    pub packets: u64,
    /// Packets its ring lost (the kernel's drops for its socket).
    pub kernel_drops: u64,
}

/// Packets and L3 bytes by direction, indexed like [`DIRECTIONS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DirectionStats {
    /// Packets per direction.
    pub packets: [u64; 4],
    /// L3 bytes per direction.
    pub bytes: [u64; 4],
}

/// Flow-table counters summed over workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlowTableStats {
    /// Flows open now.
    pub active: u64,
    /// Configured cap on open flows (summed over workers).
    pub capacity: u64,
    /// Flows created.
    pub created: u64,
    /// Flow records exported, by [`EndReason::index`] (`evicted` included).
    pub ended: [u64; 6],
}

impl FlowTableStats {
    /// Fill from one flow table's counters and its cap.
    pub fn from_flow_stats(stats: &FlowStats, capacity: usize) -> Self {
        Self {
            active: stats.active as u64,
            capacity: capacity as u64,
            created: stats.flows_created,
            ended: stats.ended,
        }
    }

    /// Add another worker's table.
    pub fn add(&mut self, other: &Self) {
        self.active += other.active;
        self.capacity += other.capacity;
        self.created += other.created;
        for (a, b) in self.ended.iter_mut().zip(other.ended) {
            *a += b;
        }
    }

    /// Flows evicted at the cap.
    pub fn evicted(&self) -> u64 {
        self.ended[EndReason::Evicted.index()]
    }
}

/// Detector state and counters summed over workers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectorStats {
    /// Tracked `[hosts, pairs, endpoints, prefixes]` now.
    pub tracked: [u64; 4],
    /// Caps on `[hosts, pairs, endpoints, prefixes]`.
    pub capacity: [u64; 4],
    /// Evictions at the caps, `[hosts, pairs, endpoints, prefixes]`.
    pub evicted: [u64; 4],
    /// Bursts segmented (before any gate).
    pub bursts: u64,
    /// Bursts and candidates stopped by a gate, indexed like [`DetectorStats::OUTCOMES`].
    pub burst_outcomes: [u64; 6],
    /// Alerts by kind ([`ALERT_KINDS`]) and severity ([`SEVERITIES`]).
    pub alerts: [[u64; 4]; 2],
}

impl DetectorStats {
    /// Burst outcome labels, in the order of [`DetectorStats::burst_outcomes`].
    pub const OUTCOMES: [&'static str; 6] = [
        "too_long",
        "too_small",
        "not_upstream",
        "allowed",
        "common",
        "low_score",
    ];

    /// The table names, in the order of `tracked`, `capacity` and `evicted`.
    pub const TABLES: [&'static str; 4] = ["hosts", "pairs", "endpoints", "prefixes"];

    /// Fill from one detector's counters and settings.
    pub fn from_detect(stats: &DetectStats, cfg: &DetectConfig) -> Self {
        Self {
            tracked: [
                stats.hosts as u64,
                stats.pairs as u64,
                stats.endpoints as u64,
                stats.prefixes as u64,
            ],
            capacity: [
                cfg.max_hosts as u64,
                cfg.max_pairs as u64,
                cfg.max_endpoints as u64,
                burstwatch_engine::detect::prefix_cap(cfg.max_endpoints) as u64,
            ],
            evicted: stats.evicted,
            bursts: stats.bursts,
            burst_outcomes: [
                stats.bursts_too_long,
                stats.bursts_too_small,
                stats.bursts_not_upstream,
                stats.suppressed_allowed,
                stats.suppressed_common,
                stats.suppressed_low_score,
            ],
            alerts: stats.alerts,
        }
    }

    /// Add another worker's detector.
    pub fn add(&mut self, other: &Self) {
        for i in 0..4 {
            self.tracked[i] += other.tracked[i];
            self.capacity[i] += other.capacity[i];
            self.evicted[i] += other.evicted[i];
        }
        self.bursts += other.bursts;
        for (a, b) in self.burst_outcomes.iter_mut().zip(other.burst_outcomes) {
            *a += b;
        }
        for (ra, rb) in self.alerts.iter_mut().zip(other.alerts) {
            for (a, b) in ra.iter_mut().zip(rb) {
                *a += b;
            }
        }
    }
}

/// Counters of one alert sink.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkStats {
    /// Sink kind (`file`, `stdout`, `alertmanager`, `webhook`, `syslog`): a label value.
    pub name: &'static str,
    /// Its URL or address (empty for `file` and `stdout`): a label value from the config.
    pub target: String,
    /// Alerts delivered.
    pub sent: u64,
    /// Alerts given up on after the retries.
    pub failed: u64,
    /// Alerts dropped because the sink's queue was full.
    pub overflow: u64,
    /// Delivery attempts repeated after a failure.
    pub retries: u64,
    /// Alerts queued or being delivered now.
    pub queued: u64,
    /// The sink cannot write now (a failing alert file or standard output).
    pub failing: bool,
}

/// One output file of the daemon (flow records, the alert file, alerts on standard output).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputStats {
    /// `flows`, `alerts_file` or `alerts_stdout`: a label value.
    pub name: &'static str,
    /// Records the output could not write and dropped.
    pub dropped: u64,
    /// Whether the output cannot write now.
    pub failing: bool,
}

/// Everything the exporter shows, gathered by the daemon core about once per second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    /// Capture interfaces.
    pub interfaces: Vec<InterfaceStats>,
    /// Each capture thread of each interface (the interfaces' series are their sums).
    pub capture_threads: Vec<CaptureThreadStats>,
    /// Undecodable frames by reason; reasons from [`burstwatch_wire::DecodeError::ALL_REASONS`].
    pub decode_errors: Vec<(&'static str, u64)>,
    /// Well-formed frames without IP (ARP, STP, ...).
    pub not_ip: u64,
    /// Frames dropped by the capture filter.
    pub filtered: u64,
    /// IP packets and bytes by direction.
    pub direction: DirectionStats,
    /// Flow table.
    pub flows: FlowTableStats,
    /// Detector.
    pub detector: DetectorStats,
    /// Newest packet timestamp seen by each worker (ns since the Unix epoch; 0 = none yet).
    pub worker_newest_ns: Vec<i64>,
    /// Steps back of the capture clock that packet times were shifted over.
    pub clock_steps: u64,
    /// What those steps add to packet times now, in seconds.
    pub clock_offset_seconds: f64,
    /// Whether engine state was restored from a snapshot at start.
    pub state_restored: bool,
    /// Age of the restored snapshot at start, in seconds (0 when none was restored).
    pub snapshot_age_seconds: f64,
    /// Alert sinks.
    pub sinks: Vec<SinkStats>,
    /// Output files (flow records, alert lines).
    pub outputs: Vec<OutputStats>,
    /// Flow exporters (`daemon.flow_listen`), at most [`FLOW_EXPORTER_LABELS`] by address and
    /// the rest as `other`.
    pub flow_exporters: Vec<FlowExporterStats>,
    /// Flow-export sockets.
    pub flow_sockets: Vec<FlowSocketStats>,
    /// sFlow agents' interfaces from counter samples, at most [`FLOW_INTERFACE_LABELS`] (by
    /// agent and ifIndex).
    pub flow_interfaces: Vec<FlowInterfaceStats>,
    /// sFlow interfaces known in all (with a label or not).
    pub flow_interfaces_known: u64,
}

/// sFlow interfaces with series of their own; the rest are counted in
/// `burstwatch_sflow_interfaces` only.
pub const FLOW_INTERFACE_LABELS: usize = 256;

/// One sFlow agent's interface as its last counter sample reported it (the agent's totals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowInterfaceStats {
    /// The agent's address.
    pub agent: String,
    /// ifIndex.
    pub if_index: u32,
    /// ifSpeed, bits per second.
    pub speed_bps: u64,
    /// Operationally up.
    pub oper_up: bool,
    /// Octets received and sent.
    pub octets: [u64; 2],
    /// Packets received and sent.
    pub packets: [u64; 2],
    /// Errors received and sent.
    pub errors: [u64; 2],
    /// Discards received and sent.
    pub discards: [u64; 2],
}

/// Exporter addresses with a label of their own; the others share `exporter="other"`.
pub const FLOW_EXPORTER_LABELS: usize = 32;

/// What one flow exporter sent (totals since start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowExporterStats {
    /// The exporter's address, or `other`.
    pub exporter: String,
    /// Datagrams received.
    pub datagrams: u64,
    /// Flow records and sFlow packet samples taken.
    pub records: u64,
    /// Datagrams (or parts) that did not parse.
    pub parse_errors: u64,
    /// Data sets that came before their template (held, bounded).
    pub template_misses: u64,
    /// Held data sets dropped (over the cap, or their template never came).
    pub held_dropped: u64,
    /// Records whose times were weeks from their export time, placed by the exporter's own
    /// clock pinned to an arrival.
    pub own_clock: u64,
    /// The last sampling rate applied (1 = unsampled; the highest for `other`).
    pub sampling_rate: u32,
}

/// One flow-export socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowSocketStats {
    /// Its address, as configured (`udp://ADDR:PORT`).
    pub listen: String,
    /// Datagrams the kernel dropped at the socket's full receive buffer.
    pub kernel_drops: u64,
    /// Bins of its records that came after their second had gone to the engine (added to the
    /// oldest second still held).
    pub late_bins: u64,
    /// The most seconds such a bin came behind the hold.
    pub late_behind_seconds: u64,
}

impl StatsSnapshot {
    /// Number of workers (one newest-timestamp slot each).
    pub fn workers(&self) -> usize {
        self.worker_newest_ns.len()
    }

    /// Decode-error counters, every reason of [`burstwatch_wire::DecodeError::ALL_REASONS`] in its order.
    pub fn decode_errors_from(counts: &DecodeErrorCounts) -> Vec<(&'static str, u64)> {
        counts.by_reason().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_stats_map_every_field() {
        let st = DetectStats {
            bursts: 9,
            bursts_too_long: 1,
            bursts_too_small: 2,
            bursts_not_upstream: 3,
            suppressed_allowed: 4,
            suppressed_common: 5,
            suppressed_low_score: 6,
            hosts: 7,
            pairs: 8,
            endpoints: 10,
            prefixes: 5,
            evicted: [11, 12, 13, 14],
            alerts: [[1, 2, 3, 4], [5, 6, 7, 8]],
            ..DetectStats::default()
        };
        let cfg = DetectConfig::default();
        let mut d = DetectorStats::from_detect(&st, &cfg);
        assert_eq!(d.burst_outcomes, [1, 2, 3, 4, 5, 6]);
        assert_eq!(d.tracked, [7, 8, 10, 5]);
        assert_eq!(d.capacity[0], cfg.max_hosts as u64);
        let one = d.clone();
        d.add(&one);
        assert_eq!(d.alerts[1][3], 16);
        assert_eq!(d.evicted, [22, 24, 26, 28]);
    }

    #[test]
    fn decode_errors_cover_every_reason() {
        use burstwatch_wire::DecodeError;
        let mut counts = DecodeErrorCounts::default();
        counts.count(&DecodeError::UnsupportedLinkType(7));
        counts.count(&DecodeError::TruncatedLink);
        counts.count(&DecodeError::TruncatedLink);
        let v = StatsSnapshot::decode_errors_from(&counts);
        assert_eq!(v.len(), DecodeError::ALL_REASONS.len());
        assert_eq!(v[0], (DecodeError::ALL_REASONS[0], 1));
        assert_eq!(v[1], ("truncated_link", 2));
        assert!(v[2..].iter().all(|(_, n)| *n == 0));
    }

    #[test]
    fn flow_stats_sum_workers() {
        let fs = FlowStats {
            flows_created: 10,
            active: 4,
            ended: [1, 0, 0, 0, 2, 0],
            ..FlowStats::default()
        };
        let mut t = FlowTableStats::from_flow_stats(&fs, 100);
        t.add(&t.clone());
        assert_eq!(
            (t.active, t.capacity, t.created, t.evicted()),
            (8, 200, 20, 4)
        );
    }
}
