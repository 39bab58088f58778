//! # burstwatch
//!
//! The command-line shell around the burstwatch crates: it parses arguments, opens files and
//! prints; the work is done by `burstwatch-capture` (packet sources), `burstwatch-wire`
//! (decoding) and `burstwatch-engine` (flows).
//!
//! Exit status: 0 clean, 1 if any input had an error (the rest was still processed) or an
//! output could not be written (the other outputs were completed), 2 for a usage or
//! configuration error.

use std::process::ExitCode;

use clap::{FromArgMatches as _, Parser, Subcommand};

mod analyze;
mod build_info;
mod carve;
mod daemon;
mod docs;
mod eval;
mod evidence;
mod examples;
mod inputs;
mod keys;
mod logging;
mod outfile;
mod report;
mod sim_export;
mod simulate;

// The path analyze shares with the daemon (crates/pipeline), under the names the commands use.
use burstwatch_pipeline::{
    alert_json, cluster, engine_setup, flow_input, flow_json, pipeline, privacy, progress, select,
    shards, summary,
};

/// Find short, high-bandwidth bursts to unusual endpoints in ISP traffic.
#[derive(Debug, Parser)]
#[command(name = "burstwatch", version = build_info::VERSION_LINE, about, long_about = None)]
#[command(arg_required_else_help = true)]
struct Cli {
    #[command(flatten)]
    log: logging::LogArgs,
    /// Read these captures as `burstwatch analyze -r FILE` does, with analyze's defaults (a
    /// summary and the top alerts on the terminal); for its other options, use `analyze`.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    read: Vec<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read captures (pcap/pcapng, optionally .gz; files or directories) as one stream in
    /// timestamp order and write bidirectional flow records as JSON lines.
    Analyze(Box<analyze::AnalyzeArgs>),
    /// Write a seeded, synthetic ISP-like capture (pcap) for demos, tuning, tests and benchmarks.
    Simulate(simulate::SimulateArgs),
    /// Capture live on the configured interfaces, export Prometheus metrics and write alerts,
    /// until SIGTERM (SIGHUP reloads thresholds and reopens output files).
    Daemon(daemon::DaemonArgs),
    /// Validate a configuration file: exit 0 (warnings, such as no interface named yet, on
    /// standard error), or 2 naming the key and line.
    CheckConfig(daemon::CheckConfigArgs),
    /// Score alerts against a simulator ground truth: recall, precision and detection delay
    /// per scenario kind.
    Eval(eval::EvalArgs),
    /// Copy the packets of one address pair within a time span (an alert's, or given) from
    /// captures into an evidence pcap with a manifest of hashes.
    Carve(carve::CarveArgs),
    /// The shared prevalence store of several sensors (`[cluster]`): `cluster status`.
    Cluster(cluster::ClusterArgs),
    /// Write a fresh random pseudonymisation key (for `analyze --pseudonymize`).
    Keygen(keys::KeygenArgs),
    /// Print the original address of each pseudonym: `pseudonym original` per line.
    Reveal(keys::RevealArgs),
    /// Write the shell completion script for bash, zsh, fish, elvish or PowerShell to standard
    /// output.
    Completions(docs::CompletionsArgs),
    /// Write the manual page of burstwatch or of one command (roff) to standard output, or every
    /// page into a directory.
    Man(docs::ManArgs),
}

fn main() -> ExitCode {
    let cli =
        Cli::from_arg_matches(&examples::command().get_matches()).unwrap_or_else(|e| e.exit());
    // The daemon tells its log what it does; the other commands print their results, and log
    // only what went wrong unless asked.
    let level = match cli.command {
        Some(Command::Daemon(_)) => logging::Level::Info,
        _ => logging::Level::Warn,
    };
    logging::init(&cli.log, level);
    // `burstwatch -r FILE` is `burstwatch analyze -r FILE`; beside a command, -r is refused
    // (clap's args_conflicts_with_subcommands would refuse the global log options too).
    if !cli.read.is_empty() && cli.command.is_some() {
        examples::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "-r before a command: put it after the command (burstwatch analyze -r FILE)",
            )
            .exit();
    }
    let command = cli
        .command
        .unwrap_or_else(|| Command::Analyze(Box::new(analyze::AnalyzeArgs::reading(&cli.read))));
    let result = match command {
        Command::Analyze(mut args) => {
            args.take_read_files();
            analyze::run(&args)
        }
        Command::Simulate(args) => simulate::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Daemon(args) => burstwatch_daemon::run(&args.config, &build_info::labels()),
        Command::CheckConfig(args) => burstwatch_daemon::check_config(&args.config, args.strict),
        Command::Carve(args) => carve::run(&args),
        Command::Keygen(args) => keys::keygen(&args),
        Command::Cluster(args) => cluster::run(&args),
        Command::Reveal(args) => keys::reveal(&args),
        Command::Completions(args) => docs::completions(&args),
        Command::Man(args) => docs::man(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("burstwatch: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
