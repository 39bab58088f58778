//! `burstwatch analyze`: captures in, flow records out.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use burstwatch_capture::{Archive, BpfFilter};
use burstwatch_config::Settings;
use burstwatch_engine::net::Prefix;
use burstwatch_engine::Alert;

use crate::alert_json::{print_top, write_alert_from};
use crate::engine_setup;
use crate::flow_input::{self, FlowArgs, FlowSummary, SourceTag};
use crate::flow_json::write_record;
use crate::outfile::{self, OutFile};
use crate::pipeline;
use crate::privacy::{Privacy, PrivacyArgs};
use crate::progress::Progress;
use crate::report::{Collector, ReportArgs};
use crate::select::SelectArgs;
use crate::shards::{EngineSpec, Engines};
use crate::summary::Summary;

/// Arguments of `burstwatch analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// Capture files (pcap, pcapng, optionally gzip-compressed), directories of them, glob
    /// patterns ('caps/*.pcap.gz') and streams ('-' for standard input, FIFOs); read as one
    /// stream ordered by time.
    #[arg(required_unless_present = "read", value_name = "FILE|DIR|GLOB|-")]
    pub inputs: Vec<PathBuf>,
    /// Read this input, as with tcpdump and tshark (repeatable; the same as naming it among the
    /// inputs).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<PathBuf>,
    /// Write flow records as JSON lines to this file ('-' for standard output).
    #[arg(long, value_name = "PATH|-")]
    pub flows: Option<String>,
    /// Write alerts as JSON lines to this file ('-' for standard output).
    #[arg(long, value_name = "PATH|-")]
    pub alerts: Option<String>,
    /// Subscriber prefix (repeatable); replaces `detect.home_nets` of the config.
    #[arg(long = "home-net", value_name = "CIDR")]
    pub home_nets: Vec<Prefix>,
    /// ASN database (MaxMind format, GeoLite2-ASN layout) for endpoint context and ASN lists;
    /// overrides `enrich.asn_database`.
    #[arg(long, value_name = "PATH")]
    pub asn_db: Option<PathBuf>,
    /// Country database (MaxMind format, GeoLite2-Country layout); overrides
    /// `enrich.country_database`.
    #[arg(long, value_name = "PATH")]
    pub country_db: Option<PathBuf>,
    /// Only count packets matching this libpcap filter expression (e.g. 'tcp port 443').
    #[arg(long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Configuration file (TOML); see config/burstwatch.toml for every key and its default.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the run's counters (packets, decode errors by reason, flows by end reason, ...) as
    /// one JSON object to this file.
    #[arg(long, value_name = "PATH")]
    pub stats: Option<PathBuf>,
    /// Threads: 1 reads, decodes and tracks on one thread; 2 reads and decodes on a second
    /// thread while the engine runs (the default where two cores exist). The output is the same.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,
    /// Engine workers: the flow table and per-subscriber detection are split by home host over
    /// this many threads (endpoint prevalence and scoring stay on one). The alerts are the same
    /// as with 1 (the default); flow records are the same set in another order. Runs with
    /// --report use 1.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Memory budget in MiB for the flow and detector tables and the rest of the process;
    /// overrides `limits.memory_budget_mib` (default 3072). The tables' caps are its shares.
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    pub memory_budget_mib: Option<u64>,
    /// Do not print progress or the summary on standard error.
    #[arg(long, short)]
    pub quiet: bool,
    /// With a shared prevalence store (`[cluster]`): wait at start, at most
    /// `cluster.peer_wait_seconds`, until this many sensors (this one included) run, so that
    /// several analyses of parts of one capture start together.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub cluster_peers: usize,
    /// Packet selection (time window, hosts, endpoints).
    #[command(flatten)]
    pub select: SelectArgs,
    /// Pseudonymisation of output addresses.
    #[command(flatten)]
    pub privacy: PrivacyArgs,
    /// Forensic report.
    #[command(flatten)]
    pub report: ReportArgs,
    /// Flow-export input.
    #[command(flatten)]
    pub flow: FlowArgs,
}

impl AnalyzeArgs {
    /// `analyze -r FILE...` with every other option at its default.
    pub fn reading(files: &[PathBuf]) -> Self {
        use clap::{Args as _, FromArgMatches as _};
        let argv = std::iter::once("analyze".into()).chain(
            files
                .iter()
                .flat_map(|f| [std::ffi::OsString::from("-r"), f.clone().into_os_string()]),
        );
        let matches = Self::augment_args(clap::Command::new("analyze")).get_matches_from(argv);
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// Move the `-r` files to the front of the inputs (read order does not matter: the inputs
    /// are merged by time).
    pub fn take_read_files(&mut self) {
        let rest = std::mem::take(&mut self.inputs);
        self.inputs = std::mem::take(&mut self.read);
        self.inputs.extend(rest);
    }

    /// Threads to use: `--threads`, else two where two cores exist.
    pub fn thread_count(&self) -> usize {
        self.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, |n| n.get().min(2)),
            usize::from,
        )
    }
}

/// Run the analysis. `Err` is a usage/config error (exit 2); input faults and output write
/// errors give exit 1.
pub fn run(args: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    let mut settings = match &args.config {
        Some(path) => Settings::load(path)?,
        None => Settings::default(),
    };
    if !args.home_nets.is_empty() {
        settings.detect.home_nets = burstwatch_engine::PrefixSet::new(args.home_nets.clone());
    }
    let selection = args.select.selection()?;
    let privacy = args.privacy.privacy(&settings)?;
    if privacy.enabled() {
        tracing::info!("home-network addresses are pseudonymised in every output");
    }
    let inputs = crate::inputs::gather(&args.inputs)?;
    let others: Vec<&std::path::Path> = [&args.config, &args.asn_db, &args.country_db]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    let outputs = crate::inputs::analyze_outputs(args);
    crate::inputs::refuse_overwriting_inputs(&inputs.list, &others, &outputs)?;
    if args.report.report.is_some() && inputs.has_streams() {
        anyhow::bail!(
            "--report reads the inputs twice, and standard input or a FIFO can be read only \
             once: write the stream to a file first"
        );
    }
    if args.report.report.is_some() && args.flow.enabled() {
        anyhow::bail!("--report follows packets: it cannot be made from --input-kind flow-export");
    }
    if inputs.list.files.is_empty() {
        return Ok(ExitCode::from(1));
    }
    if args.flow.enabled() {
        // Records and 1-in-N samples keep no packet timing: beacon scoring would be noise.
        settings.detect.beacon_min_events = u32::MAX;
    }
    let mut filter = match &args.filter {
        Some(expr) => Some(BpfFilter::new(expr).with_context(|| format!("bad --filter '{expr}'"))?),
        None => None,
    };
    // Every output is opened before any is emptied; a write error later ends only its own.
    let mut opened = outfile::open_all(&[
        (
            "--flows",
            "flow records",
            args.flows.as_deref().map(Path::new),
        ),
        ("--alerts", "alerts", args.alerts.as_deref().map(Path::new)),
        ("--stats", "the run's counters", args.stats.as_deref()),
    ])?
    .into_iter();
    let (flows_out, alerts_out, stats_out) = (
        opened.next().flatten(),
        opened.next().flatten(),
        opened.next().flatten(),
    );
    let started = Instant::now();
    let seed = engine_setup::hash_seed();
    let asn_db = args.asn_db.clone().or(settings.enrich.asn_database.clone());
    let country_db = args
        .country_db
        .clone()
        .or(settings.enrich.country_database.clone());
    let enricher = engine_setup::open_enrich(asn_db.as_deref(), country_db.as_deref())?;
    let report = Collector::start(args, &settings.detect.home_nets, &privacy)?;
    let mut workers = usize::from(args.workers);
    if report.is_some() && workers > 1 {
        tracing::info!("--report follows every packet on one engine: --workers 1");
        workers = 1;
    }
    if let Some(mib) = args.memory_budget_mib {
        settings.limits.memory_budget_mib = mib;
    }
    let plan = settings
        .apply_memory_budget(workers, 0)
        .context("--memory-budget-mib / limits.memory_budget_mib")?;
    tracing::debug!(?plan, "memory budget");
    let mut shared = crate::cluster::Shared::start(&settings, burstwatch_cluster::Mode::Batch)?;
    let global_cfg = crate::cluster::Shared::global_config(&settings);
    let peer_wait = std::time::Duration::from_millis(settings.cluster.peer_wait_ms);
    // Flow export makes flow records only where they are read (a record file or the report):
    // without them its synthetic packets skip the flow table (the alerts are the same).
    settings.flow.export_flows = flows_out.is_some() || report.is_some();
    let mut engines = Engines::new(
        workers,
        EngineSpec {
            flow: settings.flow,
            detect: settings.detect,
            seed,
            enrich: enricher,
            state: None,
        },
    )?;
    if let (Some(r), Some(engine)) = (&report, engines.single()) {
        r.enable(engine);
    }
    if let Some(s) = &shared {
        engines.scorer_mut().enable_global(global_cfg);
        if args.cluster_peers > 1 {
            let seen = s.wait_for_sensors(args.cluster_peers, peer_wait);
            if seen < args.cluster_peers {
                tracing::warn!("{seen} of {} sensors running; going on", args.cluster_peers);
            }
        }
    }
    let mut outputs = Outputs {
        flows: flows_out,
        alerts: alerts_out,
        kept: Vec::new(),
        privacy,
        report,
        source: None,
        sensor: settings.daemon.sensor.clone().filter(|s| !s.is_empty()),
    };
    let problems = inputs.problems;
    let mut archive = Archive::from_list(inputs.list);
    let mut sum = Summary::new(archive.files());
    sum.input_errors += problems as u64;
    sum.memory = Some(plan);
    let threads = args.thread_count();
    let mut progress = Progress::new(archive.bytes_total(), args.quiet);
    let mut flow_summary: Option<FlowSummary> = None;
    let counts = if args.flow.enabled() {
        let mut collector = args.flow.collector()?;
        let (counts, fs) = flow_input::run(
            &mut archive,
            filter.as_mut(),
            &selection,
            &mut progress,
            &args.flow,
            &mut collector,
            |ts, meta, tag| {
                // Each synthetic packet carries its sampling rate: the engine gates and
                // segments sampled bursts by it.
                engines.ingest(ts, meta);
                if let Some(s) = shared.as_mut() {
                    s.after_packet(engines.scorer_mut());
                }
                outputs.source = Some(tag);
                if engines.has_output() {
                    outputs.drain(&mut engines, &mut sum);
                }
            },
        );
        outputs.source = Some(fs.tag);
        flow_summary = Some(fs);
        counts
    } else {
        pipeline::run(
            &mut archive,
            filter.as_mut(),
            &selection,
            &mut progress,
            threads,
            |ts, meta| {
                engines.ingest(ts, meta);
                if let Some(s) = shared.as_mut() {
                    s.after_packet(engines.scorer_mut());
                }
                if let Some(r) = outputs.report.as_mut() {
                    r.packet(ts, meta);
                }
                if outputs.report.is_some() || engines.has_output() {
                    outputs.drain(&mut engines, &mut sum);
                }
            },
        )
    };
    counts.merge_into(&mut sum);
    progress.finish();
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "first pass done");
    engines.finish();
    if let Some(s) = shared.as_mut() {
        s.finish_batch(engines.scorer_mut());
    }
    outputs.drain(&mut engines, &mut sum);
    outputs.flush();
    sum.bytes_read = archive.bytes_consumed();
    sum.flow_stats = engines.flow_stats();
    sum.detect_stats = engines.detect_stats();
    let wall = started.elapsed();
    if !args.quiet {
        let mut err = std::io::stderr().lock();
        sum.print(&mut err, wall);
        if let Some(fs) = &flow_summary {
            let _ = writeln!(err, "{}", fs.line());
        }
        print_top(&mut err, &outputs.kept, 10, &outputs.privacy);
    }
    if let Some(s) = shared.take() {
        if !args.quiet {
            eprintln!("{}", s.summary());
        }
        s.finish();
    }
    if let Some(w) = sum.transit_warning() {
        tracing::warn!("{w}");
    }
    // Every output is completed whatever happened to another; each failure is named.
    let mut failed: Vec<String> = Vec::new();
    if let Some(mut out) = stats_out {
        let now_ns = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(0);
        let mut json = sum.to_json(wall, now_ns);
        if let (Some(fs), Some(obj)) = (&flow_summary, json.as_object_mut()) {
            obj.insert("flow_export".into(), fs.to_json());
        }
        out.write(|w| {
            serde_json::to_writer(&mut *w, &json)?;
            w.write_all(b"\n")
        });
        out.flush();
        failed.extend(out.error());
    }
    if let Some(r) = outputs.report.take() {
        if let Err(e) = r.finish(args, &sum, &archive) {
            failed.push(format!("report: {e:#}"));
        }
    }
    failed.extend(outputs.flows.as_ref().and_then(OutFile::error));
    failed.extend(outputs.alerts.as_ref().and_then(OutFile::error));
    for msg in &failed {
        eprintln!("burstwatch: error: {msg}");
    }
    Ok(if sum.input_errors > 0 || !failed.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Where a run's records and alerts go.
struct Outputs {
    /// `--flows`.
    flows: Option<OutFile>,
    /// `--alerts`.
    alerts: Option<OutFile>,
    /// Alerts kept for the closing table (capped).
    kept: Vec<Alert>,
    privacy: Privacy,
    report: Option<Collector>,
    /// Flow-export input: what its alerts say of their source.
    source: Option<SourceTag>,
    /// `daemon.sensor` (or `cluster.sensor_id`): written on every record and alert.
    sensor: Option<String>,
}

impl Outputs {
    /// Write out every record and alert the engine has ready.
    fn drain(&mut self, engine: &mut Engines, sum: &mut Summary) {
        while let Some(rec) = engine.pop_record() {
            if let Some(out) = self.flows.as_mut() {
                out.write(|w| write_record(w, &rec, &self.privacy, self.sensor.as_deref()));
            }
            sum.records += 1;
            if let Some(r) = self.report.as_mut() {
                r.flow(&rec);
            }
        }
        while let Some(alert) = engine.pop_alert() {
            if let Some(out) = self.alerts.as_mut() {
                let source = self.source.map(|t| t.alert_source(&alert));
                out.write(|w| {
                    write_alert_from(w, &alert, &self.privacy, source, self.sensor.as_deref())
                });
            }
            sum.alerts += 1;
            if let Some(r) = self.report.as_mut() {
                r.alert(&alert);
            }
            // Kept for the closing table; alerts are few (one per event, rare endpoints only).
            if self.kept.len() < 100_000 {
                self.kept.push(alert);
            }
        }
        if let (Some(r), Some(engine)) = (self.report.as_mut(), engine.single()) {
            r.bursts(engine);
        }
    }

    /// Flush both outputs (each on its own: one failing leaves the other whole).
    fn flush(&mut self) {
        self.flows.iter_mut().for_each(OutFile::flush);
        self.alerts.iter_mut().for_each(OutFile::flush);
    }
}
