//! `burstwatch eval`: score alerts (`burstwatch analyze --alerts`) against the ground truth of
//! a simulated capture (`burstwatch simulate` writes it beside the pcap). The matching rules
//! are those of `burstwatch_sim::eval`:
//!
//! * a burst EVENT of a scenario expecting `burst` is detected by a `burst` alert with the same
//!   src and dst whose [start_ts, end_ts] overlaps [event start − slack, event end + slack];
//! * a scenario expecting `beacon` is detected by a `beacon` alert with the same src/dst whose
//!   detected_ts lies in [first event start, last event end + slack];
//! * an alert that detects a positive scenario of its own kind is a true positive; any other
//!   alert is a false positive, attributed to the decoy it overlaps (same src/dst), else to a
//!   positive scenario of the same pair (wrong kind/time), else to `background`;
//! * events and beacon scenarios the truth marks `should_detect: false` are out of scope: left
//!   out of recall, counted apart; an alert on one is still a true positive;
//! * delay: earliest matching detected_ts − event end (bursts), − first event start (beacons).
//!
//! Exit status: 0; 1 when `--min-recall` (overall and per positive kind) or `--min-precision`
//! (overall) is given and not met; 2 for usage or I/O errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use burstwatch_sim::eval::{evaluate, parse_alerts, sweep, AlertRecord};
use burstwatch_sim::Truth;

/// Arguments of `burstwatch eval`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Matching rules (times in seconds, slack from --slack-seconds):
  burst event detected: a `burst` alert with the same src and dst whose [start_ts, end_ts]
    overlaps [event start - slack, event end + slack]; recall per kind = detected events / events.
  beacon scenario detected: a `beacon` alert with the same src/dst whose detected_ts lies in
    [first event start, last event end + slack]; recall = detected scenarios / scenarios
    (missed ones with only a `burst` alert for the pair are counted as burst_only).
  true positive: an alert that detects a positive scenario of its own kind; any other alert is a
    false positive, attributed to the decoy it overlaps (same src/dst, [start_ts,
    max(end_ts, detected_ts)] overlapping a decoy event +- slack), else to a positive scenario of
    the same pair (wrong kind/time), else to `background`. Precision = TP / alerts.
  delay: earliest matching detected_ts - event end (bursts) or - first event start (beacons).
  out of scope: events (bursts) and scenarios (beacons) with should_detect false in the truth
    (cut off by the end of the capture, below the gates, adversarial) are left out of recall
    and counted apart (out_of_scope: detected/all); an alert on one is still a true positive.
  The two parts of a beacon-plus-bursts mission are reported as burst_with_beacon/beacon and
  burst_with_beacon/burst_periodic.
--sweep: the detection limits over one or more runs (repeat --truth and --alerts in pairs)
  as markdown tables; deploy/bench/limits.sh makes the runs and prints them.
Exit status: 0; 1 when --min-recall (overall and each positive kind) or --min-precision
(overall) is not met; 2 on usage or I/O errors."
)]
pub struct EvalArgs {
    /// Ground-truth JSON written by `burstwatch simulate` (with --sweep: repeat, one per run,
    /// in the order of the --alerts files).
    #[arg(long, value_name = "FILE", required = true)]
    pub truth: Vec<PathBuf>,
    /// Alerts as JSON lines (`burstwatch analyze --alerts`; with --sweep: one per --truth).
    #[arg(long, value_name = "FILE", required = true)]
    pub alerts: Vec<PathBuf>,
    /// Print the detection limits as markdown tables instead: recall binned by burst rate ×
    /// volume and rate × duration, beacon period × jitter and period × polls, by shape, and
    /// the alerts each decoy kind drew, over every --truth/--alerts pair.
    #[arg(long, conflicts_with_all = ["json", "min_recall", "min_precision"])]
    pub sweep: bool,
    /// Also write the numbers as JSON to this file ('-' for standard output).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Widen truth windows by this many seconds when matching.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub slack_seconds: f64,
    /// Exit 1 unless recall (overall and of each positive kind) is at least this.
    #[arg(long, value_name = "R")]
    pub min_recall: Option<f64>,
    /// Exit 1 unless overall alert precision is at least this.
    #[arg(long, value_name = "P")]
    pub min_precision: Option<f64>,
}

/// Run the evaluation. `Err` is a usage or I/O error.
pub fn run(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.slack_seconds.is_finite() && args.slack_seconds >= 0.0,
        "--slack-seconds must be a non-negative number"
    );
    anyhow::ensure!(
        args.truth.len() == args.alerts.len(),
        "give one --alerts file per --truth file ({} and {})",
        args.truth.len(),
        args.alerts.len()
    );
    anyhow::ensure!(
        args.sweep || args.truth.len() == 1,
        "several --truth files need --sweep"
    );
    let mut runs = Vec::with_capacity(args.truth.len());
    for (t, a) in args.truth.iter().zip(&args.alerts) {
        runs.push(read_run(t, a)?);
    }
    if args.sweep {
        print!("{}", sweep(&runs, args.slack_seconds));
        return Ok(ExitCode::SUCCESS);
    }
    let Some((truth, alerts)) = runs.first() else {
        anyhow::bail!("no --truth file");
    };
    let report = evaluate(truth, alerts, args.slack_seconds);
    let failures = report.failures(args.min_recall, args.min_precision);
    if let Some(path) = &args.json {
        let mut json = serde_json::to_value(&report)?;
        if let Some(o) = json.as_object_mut() {
            o.insert("failures".into(), serde_json::to_value(&failures)?);
        }
        let mut out = serde_json::to_string_pretty(&json)?;
        out.push('\n');
        if path.as_os_str() == "-" {
            print!("{out}");
        } else {
            std::fs::write(path, out)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if args.json.as_deref() != Some(std::path::Path::new("-")) {
        print!("{}", report.table());
    }
    for f in &failures {
        eprintln!("burstwatch eval: target not met: {f}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Read one truth file and its alerts.
fn read_run(truth: &Path, alerts: &Path) -> anyhow::Result<(Truth, Vec<AlertRecord>)> {
    let text = std::fs::read_to_string(truth)
        .with_context(|| format!("cannot read {}", truth.display()))?;
    let t: Truth = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a truth file", truth.display()))?;
    let text = std::fs::read_to_string(alerts)
        .with_context(|| format!("cannot read {}", alerts.display()))?;
    let a = parse_alerts(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("bad alert in {}", alerts.display()))?;
    Ok((t, a))
}
