//! The flow-export families: per exporter (label `exporter`, capped by the daemon at
//! [`crate::stats::FLOW_EXPORTER_LABELS`] addresses plus `other`) and per socket.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::stats::StatsSnapshot;

/// The flow-export families.
pub(crate) struct FlowFamilies {
    datagrams: IntCounterVec,
    records: IntCounterVec,
    parse_errors: IntCounterVec,
    template_misses: IntCounterVec,
    held_dropped: IntCounterVec,
    own_clock: IntCounterVec,
    sampling_rate: IntGaugeVec,
    socket_drops: IntCounterVec,
    socket_late: IntCounterVec,
    socket_late_behind: IntGaugeVec,
    if_octets: IntCounterVec,
    if_packets: IntCounterVec,
    if_errors: IntCounterVec,
    if_discards: IntCounterVec,
    if_speed: IntGaugeVec,
    if_up: IntGaugeVec,
    if_known: IntGauge,
}

/// Labels of an sFlow interface's directional series.
const IF_DIR: [&str; 3] = ["agent", "if_index", "direction"];

impl FlowFamilies {
    /// Build and register them.
    pub(crate) fn new(r: &Registry) -> Result<Self, prometheus::Error> {
        let cv = |n: &str, h: &str, l: &str| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(format!("burstwatch_{n}"), h), &[l])?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let sampling_rate = IntGaugeVec::new(
            Opts::new(
                "burstwatch_flow_export_sampling_rate",
                "The last sampling rate applied to the exporter's data (1: unsampled; for exporter=\"other\" the highest).",
            ),
            &["exporter"],
        )?;
        r.register(Box::new(sampling_rate.clone()))?;
        let socket_late_behind = IntGaugeVec::new(
            Opts::new(
                "burstwatch_flow_export_late_behind_seconds",
                "The most seconds a late bin of the socket's records came behind the hold: raise the hold (or shorten the routers' active timeout) by at least this much.",
            ),
            &["listen"],
        )?;
        r.register(Box::new(socket_late_behind.clone()))?;
        let cvd = |n: &str, h: &str| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(
                Opts::new(format!("burstwatch_sflow_interface_{n}"), h),
                &IF_DIR,
            )?;
            r.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gv = |n: &str, h: &str| -> Result<IntGaugeVec, prometheus::Error> {
            let g = IntGaugeVec::new(
                Opts::new(format!("burstwatch_sflow_interface_{n}"), h),
                &["agent", "if_index"],
            )?;
            r.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let if_known = IntGauge::new(
            "burstwatch_sflow_interfaces",
            "sFlow agents' interfaces known from counter samples (series of their own for the first 256 by agent and ifIndex).",
        )?;
        r.register(Box::new(if_known.clone()))?;
        Ok(Self {
            if_octets: cvd("octets_total", "Octets through an sFlow agent's interface as its counter samples report them (ifInOctets/ifOutOctets; direction in or out).")?,
            if_packets: cvd("packets_total", "Packets (unicast, multicast, broadcast) through an sFlow agent's interface, from its counter samples.")?,
            if_errors: cvd("errors_total", "ifInErrors/ifOutErrors of an sFlow agent's interface, from its counter samples.")?,
            if_discards: cvd("discards_total", "ifInDiscards/ifOutDiscards of an sFlow agent's interface, from its counter samples.")?,
            if_speed: gv("speed_bps", "ifSpeed of an sFlow agent's interface, bits per second.")?,
            if_up: gv("up", "1 when an sFlow agent's interface is operationally up (ifOperStatus), else 0.")?,
            if_known,
            datagrams: cv("flow_export_datagrams_total", "Flow-export datagrams received, by exporter.", "exporter")?,
            records: cv("flow_export_records_total", "Flow records and sFlow packet samples taken, by exporter.", "exporter")?,
            parse_errors: cv("flow_export_parse_errors_total", "Flow-export datagrams (or parts) that did not parse, by exporter.", "exporter")?,
            template_misses: cv("flow_export_template_misses_total", "NetFlow v9/IPFIX data sets that came before their template (held, bounded), by exporter.", "exporter")?,
            held_dropped: cv("flow_export_held_dropped_total", "Held data sets dropped (over the cap, or their template never came), by exporter.", "exporter")?,
            own_clock: cv("flow_export_records_own_clock_total", "Flow records whose times were more than a week from their export time (softflowd reading an old capture file), placed by the exporter's own clock pinned to an arrival, by exporter.", "exporter")?,
            sampling_rate,
            socket_drops: cv("flow_export_socket_drops_total", "Datagrams the kernel dropped at the flow-export socket's full receive buffer (/proc/net/udp drops).", "listen")?,
            socket_late: cv("flow_export_late_bins_total", "Per-second bins of the socket's records that came after their second had gone to the engine (records older than the hold when they arrived), added to the oldest second still held.", "listen")?,
            socket_late_behind,
        })
    }

    /// Show a snapshot; `set` moves a counter to a (monotonic) total under a key.
    pub(crate) fn update(&self, s: &StatsSnapshot, set: &mut dyn FnMut(&IntCounter, String, u64)) {
        for e in &s.flow_exporters {
            let l = [e.exporter.as_str()];
            let x = &e.exporter;
            set(
                &self.datagrams.with_label_values(&l),
                format!("fxd/{x}"),
                e.datagrams,
            );
            set(
                &self.records.with_label_values(&l),
                format!("fxr/{x}"),
                e.records,
            );
            set(
                &self.parse_errors.with_label_values(&l),
                format!("fxp/{x}"),
                e.parse_errors,
            );
            set(
                &self.template_misses.with_label_values(&l),
                format!("fxt/{x}"),
                e.template_misses,
            );
            set(
                &self.held_dropped.with_label_values(&l),
                format!("fxh/{x}"),
                e.held_dropped,
            );
            set(
                &self.own_clock.with_label_values(&l),
                format!("fxo/{x}"),
                e.own_clock,
            );
            self.sampling_rate
                .with_label_values(&l)
                .set(i64::from(e.sampling_rate));
        }
        for i in &s.flow_interfaces {
            let idx = i.if_index.to_string();
            let base = [i.agent.as_str(), idx.as_str()];
            for (d, dir) in ["in", "out"].into_iter().enumerate() {
                let l = [i.agent.as_str(), idx.as_str(), dir];
                for (fam, tag, v) in [
                    (&self.if_octets, "o", i.octets[d]),
                    (&self.if_packets, "p", i.packets[d]),
                    (&self.if_errors, "e", i.errors[d]),
                    (&self.if_discards, "d", i.discards[d]),
                ] {
                    set(
                        &fam.with_label_values(&l),
                        format!("sfi{tag}/{}/{idx}/{dir}", i.agent),
                        v,
                    );
                }
            }
            self.if_speed
                .with_label_values(&base)
                .set(i64::try_from(i.speed_bps).unwrap_or(i64::MAX));
            self.if_up
                .with_label_values(&base)
                .set(i64::from(i.oper_up));
        }
        self.if_known
            .set(i64::try_from(s.flow_interfaces_known).unwrap_or(i64::MAX));
        for k in &s.flow_sockets {
            let n = k.listen.as_str();
            set(
                &self.socket_drops.with_label_values(&[n]),
                format!("fxk/{n}"),
                k.kernel_drops,
            );
            set(
                &self.socket_late.with_label_values(&[n]),
                format!("fxl/{n}"),
                k.late_bins,
            );
            self.socket_late_behind
                .with_label_values(&[n])
                .set(i64::try_from(k.late_behind_seconds).unwrap_or(i64::MAX));
        }
    }
}
