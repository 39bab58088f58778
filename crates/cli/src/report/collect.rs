//! [`Collector`]: feeds the report during `analyze` and writes it at the end.
//!
//! Records and alerts go to the report's [`Sink`] (on a thread of its own when the run has two
//! threads). Whole-run traffic (the overview plot) is summed per second on the engine thread,
//! two prefix look-ups per packet, and handed over when the second changes.

use burstwatch_capture::Archive;
use burstwatch_engine::{Alert, Engine, FlowRecord, PrefixSet};
use burstwatch_report::{Format, OutputMap, Report, RunInfo};
use burstwatch_wire::PacketMeta;

use super::second_pass::{self, Part, Pass};
use super::sink::{Item, Sink};
use super::ReportFormat;
use crate::analyze::AnalyzeArgs;
use crate::privacy::Privacy;
use crate::progress::Progress;
use crate::summary::Summary;

/// Undrained burst records the detector may hold (the shell drains after every packet).
const BURST_QUEUE: usize = 4_096;

const S: i64 = 1_000_000_000;

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
    sink: Sink,
    home: PrefixSet,
    /// The second being summed: (start ns, bytes up, bytes down).
    second: Option<(i64, u64, u64)>,
    first_ns: Option<i64>,
    last_ns: Option<i64>,
}

impl Collector {
    /// A collector when `--report` was given; the report is built on a thread of its own
    /// when the run has two or more. With `--pseudonymize` every address and alert id the
    /// report writes goes through `privacy`, as in the JSON outputs.
    pub fn start(
        args: &AnalyzeArgs,
        home: &PrefixSet,
        privacy: &Privacy,
    ) -> anyhow::Result<Option<Self>> {
        let Some(dir) = &args.report.report else {
            return Ok(None);
        };
        let format = match args.report.report_format {
            ReportFormat::Parquet => Format::Parquet,
            ReportFormat::Csv => Format::Csv,
        };
        let mut report = Report::create(dir, format, home.clone())?;
        if privacy.enabled() {
            report.set_output_map(Box::new(Pseudonyms(privacy.clone())));
        }
        Ok(Some(Self {
            sink: Sink::new(report, args.thread_count() >= 2)?,
            home: home.clone(),
            second: None,
            first_ns: None,
            last_ns: None,
        }))
    }

    /// Turn on the detector's burst records.
    pub fn enable(&self, engine: &mut Engine) {
        engine.detector_mut().record_bursts(BURST_QUEUE);
    }

    /// One decoded IP packet: the run's span, and subscriber ↔ external bytes per second.
    #[inline]
    pub fn packet(&mut self, ts_ns: i64, meta: &PacketMeta) {
        self.first_ns = Some(self.first_ns.map_or(ts_ns, |f| f.min(ts_ns)));
        self.last_ns = Some(self.last_ns.map_or(ts_ns, |l| l.max(ts_ns)));
        let Some(up) = self.home.upstream(meta.src, meta.dst) else {
            return;
        };
        let sec = ts_ns.div_euclid(S) * S;
        let (t, mut bytes_up, mut bytes_down) = match self.second {
            Some(cur) if cur.0 == sec => cur,
            prev => {
                if let Some((t, u, d)) = prev {
                    self.sink.put(Item::Traffic(t, u, d));
                }
                (sec, 0, 0)
            }
        };
        let len = u64::from(meta.ip_len);
        if up {
            bytes_up += len;
        } else {
            bytes_down += len;
        }
        self.second = Some((t, bytes_up, bytes_down));
    }

    /// One flow record.
    pub fn flow(&mut self, rec: &FlowRecord) {
        self.sink.put(Item::Flow(rec.clone()));
    }

    /// One alert.
    pub fn alert(&mut self, alert: &Alert) {
        self.sink.put(Item::Alert(Box::new(alert.clone())));
    }

    /// Every burst record the detector has ready.
    pub fn bursts(&mut self, engine: &mut Engine) {
        while let Some(b) = engine.detector_mut().pop_burst() {
            self.sink.put(Item::Burst(b));
        }
    }

    /// Second pass for the alert timelines over the files the first pass read from `archive`
    /// (those whose packets all lie outside every timeline window are skipped), then write
    /// every table and the page.
    pub fn finish(
        mut self,
        args: &AnalyzeArgs,
        sum: &Summary,
        archive: &Archive,
    ) -> anyhow::Result<()> {
        if let Some((t, u, d)) = self.second.take() {
            self.sink.put(Item::Traffic(t, u, d));
        }
        let (plan, closed) = self.sink.close();
        // On the report thread, the other tables are written meanwhile.
        let timelines = match plan {
            Some(mut timelines) if !timelines.is_empty() => {
                // The first pass's files and selection: of a plain pcap file read in order,
                // only the byte ranges of the windows' seconds; other files whole.
                let mut files: Vec<Part> = Vec::new();
                for ((path, span), index) in
                    archive.paths().zip(archive.spans()).zip(archive.indexes())
                {
                    if !span.is_some_and(|(a, b)| timelines.overlaps(a, b)) {
                        continue;
                    }
                    let path = path.to_path_buf();
                    match index
                        .as_ref()
                        .and_then(|ix| ix.ranges(timelines.covered(), second_pass::PART_BYTES))
                    {
                        Some(ranges) => files.extend(ranges.into_iter().map(|r| Part {
                            path: path.clone(),
                            range: Some(r),
                        })),
                        None => files.push(Part { path, range: None }),
                    }
                }
                let bytes = files.iter().map(Part::size).sum();
                let selection = args.select.selection()?;
                let pass = Pass {
                    files,
                    filter: args.filter.as_deref(),
                    selection: &selection,
                    threads: args.thread_count(),
                };
                let mut progress = Progress::new(bytes, args.quiet);
                let started = std::time::Instant::now();
                let reread = pass.files.len();
                second_pass::fill(&mut timelines, &pass, &mut progress)?;
                tracing::debug!(
                    files = reread,
                    bytes,
                    seconds = started.elapsed().as_secs_f64(),
                    "timeline pass done"
                );
                timelines
            }
            Some(empty) => empty,
            None => Default::default(),
        };
        let waited = std::time::Instant::now();
        let built = closed.join();
        tracing::debug!(
            waited_seconds = waited.elapsed().as_secs_f64(),
            "report thread joined"
        );
        if let Some(e) = built.err {
            return Err(e.into());
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
        let paged = std::time::Instant::now();
        let written = built.report.finish(&run, &timelines)?;
        tracing::debug!(
            seconds = paged.elapsed().as_secs_f64(),
            "timeline table and page written"
        );
        tracing::info!(tables = ?written.tables, html = %written.html.display(), "report written");
        Ok(())
    }
}
