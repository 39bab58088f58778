//! The Prometheus exporter: a registry of `burstwatch_*` metric families fed from
//! [`StatsSnapshot`]s, alert scores, config reloads and sink counters.
//!
//! Counters follow the snapshot's absolute totals. When a total goes backwards (a worker
//! restarted and its counters began again at zero) the exported counter keeps its value and
//! grows by the new total from then on: exported counters never go backwards.
//!
//! Label values come only from fixed sets (directions, reasons, kinds, severities, sink names)
//! or from the configuration (interface names, worker numbers, sink URLs and syslog addresses):
//! no traffic addresses, no ports.
//! `crates/exporter/METRICS.md` lists every family.

use std::collections::HashMap;
use std::sync::Mutex;

use burstwatch_engine::EndReason;
use burstwatch_wire::DecodeError;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::stats::{DetectorStats, StatsSnapshot, ALERT_KINDS, DIRECTIONS, SEVERITIES};

/// Errors of the exporter.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric family could not be built or registered (a programming error caught at start).
    #[error("metric registry: {0}")]
    Registry(#[from] prometheus::Error),
    /// The text encoder produced invalid UTF-8.
    #[error("metric text is not UTF-8")]
    Utf8,
}

/// Upper bounds of the alert-score histogram buckets (scores lie in [0, 1]).
pub const SCORE_BUCKETS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// What `burstwatch_build_info` labels.
#[derive(Debug, Clone, Copy)]
pub struct BuildInfo<'a> {
    /// The package version.
    pub version: &'a str,
    /// The git commit (short hash, `-dirty` when the tree had changes), or `unknown`.
    pub commit: &'a str,
    /// Enabled cargo features, comma-separated (empty when none).
    pub features: &'a str,
    /// The compiler's version, or `unknown`.
    pub rustc: &'a str,
}

impl BuildInfo<'static> {
    /// Nothing known.
    pub const UNKNOWN: Self = Self {
        version: "unknown",
        commit: "unknown",
        features: "",
        rustc: "unknown",
    };
}

/// Raw total last seen and the offset added since totals went backwards.
#[derive(Debug, Default, Clone, Copy)]
struct Mono {
    last_raw: u64,
    offset: u64,
}

impl Mono {
    /// The exported value for a new raw total.
    fn advance(&mut self, raw: u64) -> u64 {
        if raw < self.last_raw {
            self.offset = self.offset.saturating_add(self.last_raw);
        }
        self.last_raw = raw;
        self.offset.saturating_add(raw)
    }
}

/// Every metric family the exporter serves.
struct Families {
    if_up: IntGaugeVec,
    if_packets: IntCounterVec,
    if_bytes: IntCounterVec,
    if_wire_bytes: IntCounterVec,
    if_drops: IntCounterVec,
    thread_packets: IntCounterVec,
    thread_drops: IntCounterVec,
    if_open_failures: IntCounterVec,
    if_reopens: IntCounterVec,
    decode_errors: IntCounterVec,
    not_ip: IntCounter,
    filtered: IntCounter,
    dir_packets: IntCounterVec,
    dir_bytes: IntCounterVec,
    flows_active: IntGauge,
    flows_capacity: IntGauge,
    flows_created: IntCounter,
    flows_ended: IntCounterVec,
    det_tracked: IntGaugeVec,
    det_capacity: IntGaugeVec,
    det_evicted: IntCounterVec,
    bursts: IntCounter,
    burst_outcomes: IntCounterVec,
    alerts: IntCounterVec,
    alert_score: HistogramVec,
    workers: IntGauge,
    lag: GaugeVec,
    newest: GaugeVec,
    restored: IntGauge,
    snapshot_age: Gauge,
    clock_steps: IntCounter,
    clock_offset: Gauge,
    last_update: Gauge,
    sink_sent: IntCounterVec,
    sink_failed: IntCounterVec,
    sink_overflow: IntCounterVec,
    sink_retries: IntCounterVec,
    sink_queued: IntGaugeVec,
    output_dropped: IntCounterVec,
    output_failing: IntGaugeVec,
    reloads: IntCounterVec,
    reload_ok: IntGauge,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("burstwatch_{name}"), help)
}

macro_rules! reg {
    ($r:expr, $m:expr) => {{
        let m = $m;
        $r.register(Box::new(m.clone()))?;
        m
    }};
}

impl Families {
    fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let cv = |n: &str, h: &str, l: &[&str]| IntCounterVec::new(opts(n, h), l);
        let gv = |n: &str, h: &str, l: &[&str]| IntGaugeVec::new(opts(n, h), l);
        Ok(Self {
            if_up: reg!(r, gv("interface_up", "1 while the capture on the interface is open, else 0.", &["interface"])?),
            if_packets: reg!(r, cv("interface_packets_total", "Packets received from the capture interface.", &["interface"])?),
            if_bytes: reg!(r, cv("interface_captured_bytes_total", "Captured bytes received from the capture interface (what the snap length kept).", &["interface"])?),
            if_wire_bytes: reg!(r, cv("interface_wire_bytes_total", "On-wire length of the packets received from the capture interface.", &["interface"])?),
            if_drops: reg!(r, cv("capture_drops_total", "Packets lost before burstwatch saw them: dropped by the kernel (where=kernel, ps_drop) or by the interface/driver (where=interface, ps_ifdrop).", &["interface", "where"])?),
            thread_packets: reg!(r, cv("capture_thread_packets_total", "Packets read by each capture thread of the interface (daemon.capture_threads; they add up to interface_packets_total).", &["interface", "thread"])?),
            thread_drops: reg!(r, cv("capture_thread_drops_total", "Packets each capture thread's ring lost (they add up to capture_drops_total{where=\"kernel\"}).", &["interface", "thread"])?),
            if_open_failures: reg!(r, cv("capture_open_failures_total", "Failed attempts to open the capture on the interface.", &["interface"])?),
            if_reopens: reg!(r, cv("capture_reopens_total", "Captures re-opened after failing while running.", &["interface"])?),
            decode_errors: reg!(r, cv("decode_errors_total", "Frames that could not be decoded, by reason.", &["reason"])?),
            not_ip: reg!(r, IntCounter::with_opts(opts("not_ip_frames_total", "Well-formed frames without IP (ARP, STP, ...)."))?),
            filtered: reg!(r, IntCounter::with_opts(opts("filtered_frames_total", "Frames dropped by the capture filter."))?),
            dir_packets: reg!(r, cv("packets_total", "IP packets by direction relative to the home network (up: home to outside, down: outside to home, internal, transit).", &["direction"])?),
            dir_bytes: reg!(r, cv("bytes_total", "IP (L3) bytes by direction relative to the home network.", &["direction"])?),
            flows_active: reg!(r, IntGauge::with_opts(opts("flows_active", "Flows open in the flow tables now."))?),
            flows_capacity: reg!(r, IntGauge::with_opts(opts("flows_capacity", "Cap on open flows, summed over workers."))?),
            flows_created: reg!(r, IntCounter::with_opts(opts("flows_created_total", "Flows created."))?),
            flows_ended: reg!(r, cv("flows_ended_total", "Flow records exported, by end reason (reason=evicted: pushed out at the cap).", &["reason"])?),
            det_tracked: reg!(r, gv("detector_entries", "Entries in the detector's tables now (hosts, pairs, endpoints, endpoint prefixes).", &["table"])?),
            det_capacity: reg!(r, gv("detector_capacity", "Caps on the detector's tables, summed over workers.", &["table"])?),
            det_evicted: reg!(r, cv("detector_evictions_total", "Detector entries evicted at the cap.", &["table"])?),
            bursts: reg!(r, IntCounter::with_opts(opts("bursts_total", "Bursts segmented, before any gate."))?),
            burst_outcomes: reg!(r, cv("bursts_suppressed_total", "Bursts or candidates that did not become alerts, by the gate that stopped them.", &["outcome"])?),
            alerts: reg!(r, cv("alerts_total", "Alerts raised, by kind and severity.", &["kind", "severity"])?),
            alert_score: reg!(r, HistogramVec::new(HistogramOpts::new("burstwatch_alert_score", "Scores of raised alerts, by kind.").buckets(SCORE_BUCKETS.to_vec()), &["kind"])?),
            workers: reg!(r, IntGauge::with_opts(opts("workers", "Capture/engine workers running."))?),
            lag: reg!(r, GaugeVec::new(opts("processing_lag_seconds", "Wall-clock time minus the newest packet timestamp the worker processed (also grows while its traffic is idle)."), &["worker"])?),
            newest: reg!(r, GaugeVec::new(opts("worker_last_packet_timestamp_seconds", "Timestamp of the newest packet the worker processed, seconds since the Unix epoch (0: none yet)."), &["worker"])?),
            restored: reg!(r, IntGauge::with_opts(opts("state_restored", "1 if engine state was restored from a snapshot at start."))?),
            snapshot_age: reg!(r, Gauge::with_opts(opts("state_snapshot_age_seconds", "Age of the restored state snapshot at start (0 when none)."))?),
            clock_steps: reg!(r, IntCounter::with_opts(opts("clock_steps_total", "Times the capture clock stepped back and packet times were shifted to go on from the newest."))?),
            clock_offset: reg!(r, Gauge::with_opts(opts("clock_offset_seconds", "What those steps add to packet times now (alerts and flow records carry shifted times)."))?),
            last_update: reg!(r, Gauge::with_opts(opts("stats_last_update_timestamp_seconds", "When the statistics behind these metrics were last gathered, seconds since the Unix epoch."))?),
            sink_sent: reg!(r, cv("sink_alerts_sent_total", "Alerts delivered by the sink.", &["sink", "target"])?),
            sink_failed: reg!(r, cv("sink_alerts_failed_total", "Alerts the sink gave up on after its retries.", &["sink", "target"])?),
            sink_overflow: reg!(r, cv("sink_queue_overflow_total", "Alerts dropped because the sink's queue was full.", &["sink", "target"])?),
            sink_retries: reg!(r, cv("sink_retries_total", "Delivery attempts the sink repeated after a failure.", &["sink", "target"])?),
            sink_queued: reg!(r, gv("sink_queue_length", "Alerts queued for the sink or being delivered by it.", &["sink", "target"])?),
            output_dropped: reg!(r, cv("output_dropped_total", "Records (flow records, alert lines) an output file could not write and dropped, by output (flows, alerts_file, alerts_stdout).", &["output"])?),
            output_failing: reg!(r, gv("output_failing", "1 while the output cannot write (records are held, then dropped and counted; /readyz is not ready), else 0.", &["output"])?),
            reloads: reg!(r, cv("config_reloads_total", "Configuration reloads, by result (ok, error).", &["result"])?),
            reload_ok: reg!(r, IntGauge::with_opts(opts("config_last_reload_successful", "1 if the last configuration reload succeeded (1 before any reload)."))?),
        })
    }
}

/// The exporter: a Prometheus registry plus the state that keeps counters monotonic.
///
/// ```
/// use burstwatch_exporter::metrics::Metrics;
/// use burstwatch_exporter::stats::StatsSnapshot;
///
/// let m = Metrics::new("0.1.0").unwrap();
/// let mut s = StatsSnapshot::default();
/// s.not_ip = 7;
/// m.update(&s, 1_700_000_000_000_000_000);
/// assert!(m.render().unwrap().contains("burstwatch_not_ip_frames_total 7"));
/// ```
pub struct Metrics {
    registry: Registry,
    f: Families,
    flow: crate::flow_metrics::FlowFamilies,
    mono: Mutex<HashMap<String, Mono>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// [`Metrics::with_build`] for a build known only by its version (commit, features and
    /// compiler `unknown`).
    pub fn new(version: &str) -> Result<Self, MetricsError> {
        Self::with_build(&BuildInfo {
            version,
            ..BuildInfo::UNKNOWN
        })
    }

    /// A registry with every family, `burstwatch_build_info{version, commit, features, rustc}`
    /// set to 1, the series of every fixed label value (directions, reasons, kinds ×
    /// severities) present at zero, and on Linux the standard `process_*` families (CPU time,
    /// resident and virtual memory, open and maximum file descriptors, threads, start time).
    pub fn with_build(build: &BuildInfo<'_>) -> Result<Self, MetricsError> {
        Self::for_sensor(build, None)
    }

    /// [`Metrics::with_build`] for a named sensor (`daemon.sensor`): every series carries a
    /// `sensor` label with that name, so several sensors' series stay apart in one Prometheus
    /// even when they are scraped through one target (a federation, a push gateway).
    pub fn for_sensor(build: &BuildInfo<'_>, sensor: Option<&str>) -> Result<Self, MetricsError> {
        let labels = sensor
            .filter(|s| !s.is_empty())
            .map(|s| std::collections::HashMap::from([("sensor".to_string(), s.to_string())]));
        let registry = Registry::new_custom(None, labels)?;
        let f = Families::new(&registry)?;
        let flow = crate::flow_metrics::FlowFamilies::new(&registry)?;
        let info = IntGaugeVec::new(
            opts(
                "build_info",
                "Always 1; the labels name the running build: version, git commit, cargo features and compiler.",
            ),
            &["version", "commit", "features", "rustc"],
        )?;
        registry.register(Box::new(info.clone()))?;
        info.with_label_values(&[build.version, build.commit, build.features, build.rustc])
            .set(1);
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        for d in DIRECTIONS {
            f.dir_packets.with_label_values(&[d]);
            f.dir_bytes.with_label_values(&[d]);
        }
        for r in DecodeError::ALL_REASONS {
            f.decode_errors.with_label_values(&[r]);
        }
        for r in EndReason::ALL {
            f.flows_ended.with_label_values(&[r.as_str()]);
        }
        for t in DetectorStats::TABLES {
            f.det_tracked.with_label_values(&[t]);
            f.det_capacity.with_label_values(&[t]);
            f.det_evicted.with_label_values(&[t]);
        }
        for o in DetectorStats::OUTCOMES {
            f.burst_outcomes.with_label_values(&[o]);
        }
        for k in ALERT_KINDS {
            f.alert_score.with_label_values(&[k]);
            for s in SEVERITIES {
                f.alerts.with_label_values(&[k, s]);
            }
        }
        for r in ["ok", "error"] {
            f.reloads.with_label_values(&[r]);
        }
        f.reload_ok.set(1);
        Ok(Self {
            registry,
            f,
            flow,
            mono: Mutex::new(HashMap::new()),
        })
    }

    /// The registry (to add process metrics or to gather families directly).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Show a new snapshot. `now_unix_ns` is the wall clock, for the processing-lag gauges.
    pub fn update(&self, s: &StatsSnapshot, now_unix_ns: i64) {
        let mut mono = match self.mono.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut set = |c: &IntCounter, key: String, raw: u64| {
            let v = mono.entry(key).or_default().advance(raw);
            let cur = c.get();
            if v > cur {
                c.inc_by(v - cur);
            }
        };
        let f = &self.f;
        for i in &s.interfaces {
            let n = i.name.as_str();
            f.if_up.with_label_values(&[n]).set(i64::from(i.up));
            set(
                &f.if_packets.with_label_values(&[n]),
                format!("ifp/{n}"),
                i.packets,
            );
            set(
                &f.if_bytes.with_label_values(&[n]),
                format!("ifb/{n}"),
                i.captured_bytes,
            );
            set(
                &f.if_wire_bytes.with_label_values(&[n]),
                format!("ifw/{n}"),
                i.wire_bytes,
            );
            set(
                &f.if_drops.with_label_values(&[n, "kernel"]),
                format!("ifdk/{n}"),
                i.kernel_drops,
            );
            set(
                &f.if_drops.with_label_values(&[n, "interface"]),
                format!("ifdi/{n}"),
                i.interface_drops,
            );
            set(
                &f.if_open_failures.with_label_values(&[n]),
                format!("ifo/{n}"),
                i.open_failures,
            );
            set(
                &f.if_reopens.with_label_values(&[n]),
                format!("ifr/{n}"),
                i.reopens,
            );
        }
        for t in &s.capture_threads {
            let (n, th) = (t.interface.as_str(), t.thread.to_string());
            set(
                &f.thread_packets.with_label_values(&[n, &th]),
                format!("tp/{n}/{th}"),
                t.packets,
            );
            set(
                &f.thread_drops.with_label_values(&[n, &th]),
                format!("td/{n}/{th}"),
                t.kernel_drops,
            );
        }
        for (reason, n) in &s.decode_errors {
            if DecodeError::ALL_REASONS.contains(reason) {
                set(
                    &f.decode_errors.with_label_values(&[reason]),
                    format!("de/{reason}"),
                    *n,
                );
            }
        }
        set(&f.not_ip, "not_ip".into(), s.not_ip);
        set(&f.filtered, "filtered".into(), s.filtered);
        for (k, d) in DIRECTIONS.iter().enumerate() {
            set(
                &f.dir_packets.with_label_values(&[d]),
                format!("dp/{d}"),
                s.direction.packets[k],
            );
            set(
                &f.dir_bytes.with_label_values(&[d]),
                format!("db/{d}"),
                s.direction.bytes[k],
            );
        }
        f.flows_active.set(clamp_i64(s.flows.active));
        f.flows_capacity.set(clamp_i64(s.flows.capacity));
        set(&f.flows_created, "fc".into(), s.flows.created);
        for r in EndReason::ALL {
            let n = r.as_str();
            set(
                &f.flows_ended.with_label_values(&[n]),
                format!("fe/{n}"),
                s.flows.ended[r.index()],
            );
        }
        let d = &s.detector;
        for (k, t) in DetectorStats::TABLES.iter().enumerate() {
            f.det_tracked
                .with_label_values(&[t])
                .set(clamp_i64(d.tracked[k]));
            f.det_capacity
                .with_label_values(&[t])
                .set(clamp_i64(d.capacity[k]));
            set(
                &f.det_evicted.with_label_values(&[t]),
                format!("dev/{t}"),
                d.evicted[k],
            );
        }
        set(&f.bursts, "bursts".into(), d.bursts);
        for (k, o) in DetectorStats::OUTCOMES.iter().enumerate() {
            set(
                &f.burst_outcomes.with_label_values(&[o]),
                format!("bo/{o}"),
                d.burst_outcomes[k],
            );
        }
        for (ki, kind) in ALERT_KINDS.iter().enumerate() {
            for (si, sev) in SEVERITIES.iter().enumerate() {
                set(
                    &f.alerts.with_label_values(&[kind, sev]),
                    format!("al/{kind}/{sev}"),
                    d.alerts[ki][si],
                );
            }
        }
        f.workers.set(clamp_i64(s.workers() as u64));
        for (w, newest) in s.worker_newest_ns.iter().enumerate() {
            let w = w.to_string();
            let (lag, ts) = if *newest > 0 {
                let lag = now_unix_ns.saturating_sub(*newest).max(0) as f64 / 1e9;
                (lag, *newest as f64 / 1e9)
            } else {
                (0.0, 0.0)
            };
            f.lag.with_label_values(&[&w]).set(lag);
            f.newest.with_label_values(&[&w]).set(ts);
        }
        f.restored.set(i64::from(s.state_restored));
        f.snapshot_age.set(s.snapshot_age_seconds.max(0.0));
        set(&f.clock_steps, "clock_steps".into(), s.clock_steps);
        f.clock_offset.set(s.clock_offset_seconds);
        f.last_update.set(now_unix_ns as f64 / 1e9);
        for k in &s.sinks {
            let l = [k.name, k.target.as_str()];
            let (n, t) = (k.name, &k.target);
            set(
                &f.sink_sent.with_label_values(&l),
                format!("ss/{n}/{t}"),
                k.sent,
            );
            set(
                &f.sink_failed.with_label_values(&l),
                format!("sf/{n}/{t}"),
                k.failed,
            );
            set(
                &f.sink_overflow.with_label_values(&l),
                format!("so/{n}/{t}"),
                k.overflow,
            );
            set(
                &f.sink_retries.with_label_values(&l),
                format!("sr/{n}/{t}"),
                k.retries,
            );
            f.sink_queued.with_label_values(&l).set(clamp_i64(k.queued));
        }
        for o in &s.outputs {
            let n = o.name;
            set(
                &f.output_dropped.with_label_values(&[n]),
                format!("od/{n}"),
                o.dropped,
            );
            f.output_failing
                .with_label_values(&[n])
                .set(i64::from(o.failing));
        }
        self.flow.update(s, &mut set);
    }

    /// Record the score of a raised alert. Unknown kinds are counted under `other`.
    pub fn observe_alert(&self, kind: &str, severity: &str, score: f64) {
        let _ = severity; // severities are counted from the snapshot; scores vary by kind only
        let kind = if ALERT_KINDS.contains(&kind) {
            kind
        } else {
            "other"
        };
        if score.is_finite() {
            self.f.alert_score.with_label_values(&[kind]).observe(score);
        }
    }

    /// Record a configuration reload.
    pub fn config_reload(&self, ok: bool) {
        let r = if ok { "ok" } else { "error" };
        self.f.reloads.with_label_values(&[r]).inc();
        self.f.reload_ok.set(i64::from(ok));
    }

    /// The text exposition format of every family.
    pub fn render(&self) -> Result<String, MetricsError> {
        let mut buf = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|_| MetricsError::Utf8)
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
