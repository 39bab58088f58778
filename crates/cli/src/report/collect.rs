//! [`Collector`]: feeds the report during `analyze` and writes it at the end.

use anyhow::Context as _;
use burstwatch_capture::{Archive, BpfFilter};
use burstwatch_engine::{Alert, Engine, FlowRecord, PrefixSet};
use burstwatch_report::{Format, OutputMap, Report, ReportError, RunInfo};
use burstwatch_wire::PacketMeta;

use super::{ReportArgs, ReportFormat};
use crate::analyze::AnalyzeArgs;
use crate::privacy::Privacy;
use crate::progress::Progress;
use crate::summary::Summary;

/// Undrained burst records the detector may hold (the shell drains after every packet).
const BURST_QUEUE: usize = 4_096;

/// The run's [`Privacy`] as the report's output map: addresses and alert ids are written
/// exactly as in the JSON outputs.
struct Pseudonyms(Privacy);

impl OutputMap for Pseudonyms {
    fn addr(&self, ip: std::net::IpAddr) -> std::net::IpAddr {
        self.0.addr(ip)
    }
    fn alert_id(&self, id: u64) -> u64 {
        self.0.alert_id(id)
    }
}

/// Collects the report during `analyze` and writes it at the end.
pub struct Collector {
    report: Report,
    err: Option<ReportError>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
}

impl Collector {
    /// A collector when `--report` was given. With `--pseudonymize` every address and alert
    /// id the report writes goes through `privacy`, as in the JSON outputs.
    pub fn start(
        args: &ReportArgs,
        home: &PrefixSet,
        privacy: &Privacy,
    ) -> anyhow::Result<Option<Self>> {
        let Some(dir) = &args.report else {
            return Ok(None);
        };
        let format = match args.report_format {
            ReportFormat::Parquet => Format::Parquet,
            ReportFormat::Csv => Format::Csv,
        };
        let mut report = Report::create(dir, format, home.clone())?;
        if privacy.enabled() {
            report.set_output_map(Box::new(Pseudonyms(privacy.clone())));
        }
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
            // The first pass's selection, from the same arguments.
            let inputs = crate::inputs::expand(&args.inputs)?;
            let selection = args.select.selection()?;
            let mut filter = match &args.filter {
                Some(expr) => {
                    Some(BpfFilter::new(expr).with_context(|| format!("bad --filter '{expr}'"))?)
                }
                None => None,
            };
            let mut archive = Archive::open(&inputs);
            let mut progress = Progress::new(archive.bytes_total(), args.quiet);
            super::second_pass::fill(
                &mut timelines,
                &mut archive,
                filter.as_mut(),
                &selection,
                &mut progress,
            );
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
