//! `analyze --report DIR`: the forensic report, behind the `report` cargo feature.
//!
//! Without the feature the arguments still parse, and `--report` is a usage error naming the
//! feature; [`Collector`] is then an empty enum, so the hooks in `analyze` compile to nothing.

use std::path::PathBuf;

/// Arguments of `analyze` for the report.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Write a forensic report into this directory: flows, alerts, bursts, hosts, endpoints and
    /// alert timelines as tables, and report.html (needs the `report` feature).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Table format of --report.
    #[arg(long, value_enum, default_value = "parquet", requires = "report")]
    pub report_format: ReportFormat,
}

/// Table format of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Apache Parquet.
    Parquet,
    /// CSV with a header row.
    Csv,
}

#[cfg(feature = "report")]
pub use with::Collector;

/// Without the `report` feature: no collector can exist.
#[cfg(not(feature = "report"))]
pub enum Collector {}

#[cfg(not(feature = "report"))]
impl Collector {
    /// `--report` given: a usage error; else no collector.
    pub fn start(
        args: &ReportArgs,
        _home: &burstwatch_engine::PrefixSet,
    ) -> anyhow::Result<Option<Self>> {
        if args.report.is_some() {
            anyhow::bail!(
                "--report needs burstwatch built with the `report` feature \
                 (cargo build --release --features report)"
            );
        }
        Ok(None)
    }
    /// Unreachable without the feature.
    pub fn enable(&self, _engine: &mut burstwatch_engine::Engine) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn packet(&mut self, _ts_ns: i64, _meta: &burstwatch_wire::PacketMeta) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn flow(&mut self, _rec: &burstwatch_engine::FlowRecord) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn alert(&mut self, _alert: &burstwatch_engine::Alert) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn bursts(&mut self, _engine: &mut burstwatch_engine::Engine) {
        match *self {}
    }
    /// Unreachable without the feature.
    pub fn finish(
        self,
        _args: &crate::analyze::AnalyzeArgs,
        _sum: &crate::summary::Summary,
    ) -> anyhow::Result<()> {
        match self {}
    }
}

#[cfg(feature = "report")]
mod with {
    use anyhow::Context as _;
    use burstwatch_capture::{Archive, BpfFilter};
    use burstwatch_engine::{Alert, Engine, FlowRecord, PrefixSet};
    use burstwatch_report::{Format, Report, ReportError, RunInfo};
    use burstwatch_wire::{decode, Decoded, PacketMeta};

    use super::{ReportArgs, ReportFormat};
    use crate::analyze::AnalyzeArgs;
    use crate::summary::Summary;

    /// Undrained burst records the detector may hold (the shell drains after every packet).
    const BURST_QUEUE: usize = 4_096;

    /// Collects the report during `analyze` and writes it at the end.
    pub struct Collector {
        report: Report,
        err: Option<ReportError>,
        first_ns: Option<i64>,
        last_ns: Option<i64>,
    }

    impl Collector {
        /// A collector when `--report` was given.
        pub fn start(args: &ReportArgs, home: &PrefixSet) -> anyhow::Result<Option<Self>> {
            let Some(dir) = &args.report else {
                return Ok(None);
            };
            let format = match args.report_format {
                ReportFormat::Parquet => Format::Parquet,
                ReportFormat::Csv => Format::Csv,
            };
            let report = Report::create(dir, format, home.clone())?;
            // Pseudonymisation hooks in here: `report.set_addr_map(...)` maps every address
            // the tables and the page write.
            Ok(Some(Self {
                report,
                err: None,
                first_ns: None,
                last_ns: None,
            }))
        }

        /// Turn on the detector's burst records.
        pub fn enable(&self, engine: &mut Engine) {
            engine.detector_mut().record_bursts(BURST_QUEUE);
        }

        /// One decoded IP packet (whole-run overview).
        #[inline]
        pub fn packet(&mut self, ts_ns: i64, meta: &PacketMeta) {
            self.first_ns = Some(self.first_ns.map_or(ts_ns, |f| f.min(ts_ns)));
            self.last_ns = Some(self.last_ns.map_or(ts_ns, |l| l.max(ts_ns)));
            self.report.packet(ts_ns, meta.src, meta.dst, meta.ip_len);
        }

        fn keep(&mut self, r: Result<(), ReportError>) {
            if let (Err(e), None) = (r, &self.err) {
                self.err = Some(e);
            }
        }

        /// One flow record.
        pub fn flow(&mut self, rec: &FlowRecord) {
            if self.err.is_none() {
                let r = self.report.add_flow(rec);
                self.keep(r);
            }
        }

        /// One alert.
        pub fn alert(&mut self, alert: &Alert) {
            self.report.add_alert(alert);
        }

        /// Every burst record the detector has ready.
        pub fn bursts(&mut self, engine: &mut Engine) {
            while let Some(b) = engine.detector_mut().pop_burst() {
                if self.err.is_none() {
                    let r = self.report.add_burst(&b);
                    self.keep(r);
                }
            }
        }

        /// Second pass for the alert timelines, then write every table and the page.
        pub fn finish(mut self, args: &AnalyzeArgs, sum: &Summary) -> anyhow::Result<()> {
            if let Some(e) = self.err.take() {
                return Err(e.into());
            }
            let mut timelines = self.report.plan_timelines();
            if !timelines.is_empty() {
                let mut filter = match &args.filter {
                    Some(expr) => Some(
                        BpfFilter::new(expr).with_context(|| format!("bad --filter '{expr}'"))?,
                    ),
                    None => None,
                };
                let mut archive = Archive::open(&args.inputs);
                let mut meta = PacketMeta::default();
                // Read errors were reported by the first pass.
                while let Some(event) = archive.next_event() {
                    let Ok(pkt) = event else { continue };
                    if filter.as_mut().is_some_and(|f| !f.matches(&pkt)) {
                        continue;
                    }
                    if let Ok(Decoded::Ip) = decode(pkt.link_type, pkt.data, &mut meta) {
                        timelines.add_packet(pkt.ts_ns, meta.src, meta.dst, meta.ip_len);
                    }
                }
            }
            let run = RunInfo {
                inputs: args
                    .inputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                version: format!("burstwatch {}", env!("CARGO_PKG_VERSION")),
                packets: sum.frames,
                bytes: sum.captured_bytes,
                first_ns: self.first_ns,
                last_ns: self.last_ns,
                input_errors: sum.input_errors,
            };
            let written = self.report.finish(&run, &timelines)?;
            tracing::info!(tables = ?written.tables, html = %written.html.display(), "report written");
            Ok(())
        }
    }
}
