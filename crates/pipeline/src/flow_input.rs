//! `analyze --input-kind flow-export`: captures of flow-export datagrams (what `tcpdump -w` on a
//! collector writes) read through `burstwatch-flowexport` into the same engine.
//!
//! Every UDP datagram to one of the flow ports is pushed into a [`Collector`] at its capture
//! time; the bins it releases become synthetic packets (`engine_input`), one per sampled record
//! or packet of the bin (at most [`MAX_PIECES`]), each with its share of the estimated bytes, so
//! an alert's packet counts are the samples it rests on. Frames that are not such datagrams
//! are counted as filtered.

use std::net::IpAddr;

use burstwatch_capture::{Archive, BpfFilter};
use burstwatch_flowexport::{
    engine_input, udp_datagram, Bin, Collector, Config, ExporterStats, Kind, DEFAULT_PORTS,
};
use burstwatch_wire::PacketMeta;
use serde::Serialize;

use crate::pipeline::ReadCounts;
use crate::progress::Progress;
use crate::select::Selection;

/// Most synthetic packets one bin becomes.
pub const MAX_PIECES: u32 = 64;

/// What `analyze` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputKind {
    /// Captured packets (the default).
    Packets,
    /// Captured flow-export datagrams: NetFlow v5/v9, IPFIX, sFlow v5 to a flow port.
    FlowExport,
}

/// Flow-export options of `analyze`.
#[derive(Debug, Clone, clap::Args)]
pub struct FlowArgs {
    /// What the inputs hold: packets, or flow-export datagrams captured on a collector
    /// (NetFlow v5/v9, IPFIX, sFlow v5; the protocol is detected per datagram).
    #[arg(long, value_enum, default_value_t = InputKind::Packets, value_name = "KIND")]
    pub input_kind: InputKind,
    /// UDP port that flow export is sent to (repeatable) [default: 2055, 4739, 6343, 9995,
    /// 9996].
    #[arg(long = "flow-port", value_name = "PORT")]
    pub flow_ports: Vec<u16>,
    /// Sampling rate (1 in N) of records and samples that state none: neither in the record,
    /// options data nor a v5 header.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub default_sampling: u32,
    /// How long a second waits behind the newest datagram before the engine gets it: at
    /// least the exporters' active timeout.
    #[arg(long, value_name = "SECS", default_value_t = 75)]
    pub flow_hold: u32,
}

impl FlowArgs {
    /// Whether the inputs are flow export.
    pub fn enabled(&self) -> bool {
        self.input_kind == InputKind::FlowExport
    }

    fn ports(&self) -> Vec<u16> {
        if self.flow_ports.is_empty() {
            DEFAULT_PORTS.to_vec()
        } else {
            self.flow_ports.clone()
        }
    }

    /// The collector these options describe.
    pub fn collector(&self) -> anyhow::Result<Collector> {
        let cfg = Config {
            default_rate: self.default_sampling,
            hold_s: self.flow_hold,
            ..Config::default()
        };
        Ok(Collector::new(cfg)?)
    }
}

/// What alerts of a flow-export run say of their source, as seen so far: the protocols and
/// the highest sampling rate.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SourceTag {
    kinds: u8,
    /// Highest sampling rate applied (0 before any bin).
    pub max_rate: u32,
}

const KINDS: [Kind; 4] = [Kind::NetflowV5, Kind::NetflowV9, Kind::Ipfix, Kind::Sflow];

impl SourceTag {
    /// Note a datagram of protocol `k`.
    pub fn see_kind(&mut self, k: Kind) {
        if let Some(i) = KINDS.iter().position(|&x| x == k) {
            self.kinds |= 1 << i;
        }
    }

    /// Note a bin taken at sampling rate `rate`.
    pub fn see_rate(&mut self, rate: u32) {
        self.max_rate = self.max_rate.max(rate);
    }

    /// Both tags' protocols and the higher rate.
    pub fn merge(&mut self, o: SourceTag) {
        self.kinds |= o.kinds;
        self.see_rate(o.max_rate);
    }

    /// The protocols seen, by name.
    pub fn kinds(&self) -> Vec<&'static str> {
        KINDS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.kinds & (1 << i) != 0)
            .map(|(_, k)| k.as_str())
            .collect()
    }

    /// The source object of an alert: the samples (synthetic packets) behind it, its own
    /// sampling rate (a burst's; the run's highest for others) and the confidence of its
    /// upstream estimate at that rate.
    pub fn alert_source(&self, alert: &burstwatch_engine::Alert) -> AlertSource {
        let rate = if alert.sampling > 0 {
            alert.sampling
        } else {
            self.max_rate
        }
        .max(1);
        let confidence = burstwatch_engine::detect::sampling::confidence(alert.bytes_out, rate);
        AlertSource {
            kind: self.kinds().join("+"),
            sampling_rate: rate,
            sampled: alert.packets_out + alert.packets_in,
            confidence: (confidence * 1000.0).round() / 1000.0,
            beacon_scoring: false,
        }
    }
}

/// What the flow-export input saw, for the summary and `--stats`.
#[derive(Debug, Default, Clone)]
pub struct FlowSummary {
    /// Protocols and highest sampling rate.
    pub tag: SourceTag,
    /// Every exporter together.
    pub total: ExporterStats,
    /// Per exporter (up to the collector's cap).
    pub exporters: Vec<(IpAddr, ExporterStats)>,
    /// Late, forced and clamped bins.
    pub late_bins: u64,
    /// The most seconds a late bin was behind the hold.
    pub late_behind_s: u64,
    /// The hold the collector ran with (s).
    pub hold_s: u32,
    /// Seconds let out before the watermark (bin cap).
    pub forced_seconds: u64,
    /// Records longer than the span cap.
    pub clamped_spans: u64,
    /// Bins handed to the engine.
    pub bins: u64,
    /// Bins left out by --host/--endpoint.
    pub bins_filtered: u64,
    /// sFlow agents' interfaces with their latest counters.
    pub interfaces: Vec<burstwatch_flowexport::Interface>,
    /// Counter samples of interfaces beyond the table's cap.
    pub interfaces_dropped: u64,
}

/// The `source` object of an alert raised from flow export.
#[derive(Debug, Serialize)]
pub struct AlertSource {
    /// Protocols of the run, joined with '+'.
    pub kind: String,
    /// The 1-in-N sampling of the alert's own samples (1 = unsampled): for a burst, the
    /// highest rate among its packets, the one it was gated at; else the run's highest.
    pub sampling_rate: u32,
    /// Sampled records (per second they cover) or sampled packets behind the alert.
    pub sampled: u64,
    /// How far the byte estimate can be trusted, 0..1: 1 unsampled, else the share of the
    /// upstream estimate that its two-sigma lower bound keeps (what the burst gate weighs;
    /// see `burstwatch_engine::detect::sampling`).
    pub confidence: f64,
    /// Beacon scoring is off for flow export (records and samples lose packet timing).
    pub beacon_scoring: bool,
}

impl FlowSummary {
    fn see(&mut self, bin: &Bin) {
        self.tag.see_rate(bin.volume.rate);
        self.bins += 1;
    }

    fn finish(&mut self, c: &Collector) {
        self.total = c.total();
        self.exporters = c.exporters();
        self.interfaces = c.interfaces();
        self.interfaces_dropped = c.interfaces_dropped();
        let b = c.bin_stats();
        (self.late_bins, self.forced_seconds, self.clamped_spans) =
            (b.late, b.forced, b.clamped_spans);
        self.late_behind_s = b.late_behind_s;
    }

    /// As JSON, for `--stats`.
    pub fn to_json(&self) -> serde_json::Value {
        let t = &self.total;
        serde_json::json!({
            "kinds": self.tag.kinds(),
            "max_sampling_rate": self.tag.max_rate.max(1),
            "datagrams": t.datagrams,
            "records": t.records,
            "packet_samples": t.packet_samples,
            "parse_errors": t.parse_errors,
            "template_misses": t.template_misses,
            "replayed_sets": t.replayed_sets,
            "dropped_sets": t.dropped_sets,
            "incomplete_records": t.incomplete_records,
            "no_time": t.no_time,
            "own_clock": t.own_clock,
            "zero_rates": t.zero_rates,
            "estimated_bytes": t.bytes,
            "bins": self.bins,
            "bins_filtered": self.bins_filtered,
            "late_bins": self.late_bins,
            "late_behind_seconds": self.late_behind_s,
            "forced_seconds": self.forced_seconds,
            "clamped_spans": self.clamped_spans,
            "exporters": self.exporters.len(),
            "beacon_scoring": false,
            "interfaces": self.interfaces.iter().map(|i| {
                let mut v = serde_json::to_value(i).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    // Seconds, as every other time of the stats.
                    o.remove("seen_ns");
                    o.insert("seen".into(), serde_json::json!(i.seen_ns as f64 / 1e9));
                }
                v
            }).collect::<Vec<_>>(),
            "interfaces_dropped": self.interfaces_dropped,
        })
    }

    /// One line for the summary on standard error.
    pub fn line(&self) -> String {
        let t = &self.total;
        format!(
            "flow export: {} datagrams ({}), {} records, {} packet samples, sampling up to 1:{}, \
             {} parse errors, {} template misses, {} exporters; beacon scoring off{}",
            t.datagrams,
            self.tag.kinds().join(", "),
            t.records,
            t.packet_samples,
            self.tag.max_rate.max(1),
            t.parse_errors,
            t.template_misses,
            self.exporters.len(),
            if t.own_clock > 0 {
                format!(
                    "; {} records stamped weeks from their export (softflowd -r?) placed by \
                     their exporter's own clock: times shifted, intervals kept",
                    t.own_clock
                )
            } else {
                String::new()
            },
        ) + &self.late_line()
    }

    /// What the summary says of late bins: how many, and the hold that would have had none.
    fn late_line(&self) -> String {
        if self.late_bins == 0 {
            return String::new();
        }
        format!(
            "; {} bins came up to {} s after their second was released and were added to the \
             oldest second held (an exporter reading a file sends minutes of records at once: \
             for such a recording run again with --flow-hold {} or more)",
            self.late_bins,
            self.late_behind_s,
            u64::from(self.hold_s) + self.late_behind_s
        )
    }
}

/// Read every frame of `archive`; push the UDP datagrams to a flow port into `collector` and
/// hand each released bin's synthetic packets to `on_ip`, in time order.
pub fn run(
    archive: &mut Archive,
    filter: Option<&mut BpfFilter>,
    selection: &Selection,
    progress: &mut Progress,
    args: &FlowArgs,
    collector: &mut Collector,
    mut on_ip: impl FnMut(i64, &PacketMeta, SourceTag),
) -> (ReadCounts, FlowSummary) {
    let ports = args.ports();
    let mut fs = FlowSummary {
        hold_s: args.flow_hold,
        ..FlowSummary::default()
    };
    let mut meta = PacketMeta::default();
    let mut feed = |col: &mut Collector, fs: &mut FlowSummary| {
        while let Some(bin) = col.pop() {
            if !selection.addrs_ok(bin.key.src, bin.key.dst) {
                fs.bins_filtered += 1;
                continue;
            }
            fs.see(&bin);
            let tag = fs.tag;
            split_bin(&bin, &mut meta, &mut |ts, m| on_ip(ts, m, tag));
        }
    };
    let c = crate::pipeline::frames(archive, filter, selection, progress, |pkt, c| {
        let Some(d) =
            udp_datagram(pkt.link_type.0, pkt.data).filter(|d| ports.contains(&d.dst.port()))
        else {
            c.filtered += 1;
            return;
        };
        let kind = collector.push(pkt.ts_ns, d.src, d.payload);
        fs.tag.see_kind(kind);
        feed(collector, &mut fs);
    });
    collector.finish();
    feed(collector, &mut fs);
    fs.finish(collector);
    (c, fs)
}

/// `bin` as synthetic packets of equal shares, one per sample (at most [`MAX_PIECES`]; the
/// first takes the remainder).
pub fn split_bin(bin: &Bin, meta: &mut PacketMeta, on_ip: &mut impl FnMut(i64, &PacketMeta)) {
    let n = u64::from(bin.volume.samples.clamp(1, MAX_PIECES));
    if n == 1 {
        // Most bins (unsampled records, one a second): no shares to divide.
        if bin.volume.bytes > 0 {
            engine_input(bin, meta, |ts, m| on_ip(ts, m));
        }
        return;
    }
    let mut part = *bin;
    for i in 0..n {
        let share = |v: u64| v / n + if i == 0 { v % n } else { 0 };
        part.volume.bytes = share(bin.volume.bytes);
        part.volume.packets = share(bin.volume.packets);
        if part.volume.bytes == 0 {
            continue;
        }
        engine_input(&part, meta, |ts, m| on_ip(ts, m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The alerts of one burst of 40 synthetic packets of 1.5 MB, tagged 1:`tag`.
    fn burst_alerts(tag: u32) -> Vec<burstwatch_engine::Alert> {
        let mut e = burstwatch_engine::Engine::new(
            burstwatch_engine::FlowConfig::default(),
            burstwatch_engine::DetectConfig::default(),
            7,
        );
        let meta = PacketMeta {
            src: [10, 0, 0, 1].into(),
            dst: [198, 19, 7, 7].into(),
            proto: 17,
            sport: 40_000,
            dport: 443,
            ip_len: 1_500_000,
            payload_len: 1_499_972,
            sampling: tag,
            ..PacketMeta::default()
        };
        for i in 0..40 {
            e.ingest(1_767_225_600_000_000_000 + i * 200_000_000, &meta);
        }
        e.finish();
        std::iter::from_fn(|| e.pop_alert()).collect()
    }

    #[test]
    fn an_alert_source_gives_the_rate_of_the_alerts_own_samples() {
        let mut tag = SourceTag::default();
        tag.see_kind(Kind::Ipfix);
        tag.see_rate(1);
        tag.see_rate(1000);
        let plain = burst_alerts(1);
        assert_eq!(plain.len(), 1);
        let s = tag.alert_source(&plain[0]);
        assert_eq!((s.kind.as_str(), s.sampling_rate), ("ipfix", 1));
        assert_eq!((s.sampled, s.confidence), (40, 1.0));
        let sampled = burst_alerts(1000);
        assert_eq!(sampled.len(), 1);
        let s = tag.alert_source(&sampled[0]);
        assert_eq!(s.sampling_rate, 1000);
        assert!(s.confidence > 0.5 && s.confidence < 1.0, "{}", s.confidence);
        // An alert whose packets carried no rate: the run's highest.
        let mut other = plain[0].clone();
        other.sampling = 0;
        assert_eq!(tag.alert_source(&other).sampling_rate, 1000);
    }
}
