//! # burstwatch
//!
//! The command-line shell around the burstwatch crates: it parses arguments, opens files and
//! prints; the work is done by `burstwatch-capture` (packet sources), `burstwatch-wire`
//! (decoding) and `burstwatch-engine` (flows).
//!
//! Exit status: 0 clean, 1 if any input had an error (the rest was still processed), 2 for a
//! usage or configuration error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod alert_json;
mod analyze;
mod eval;
mod flow_json;
mod report;
mod simulate;
mod summary;

/// Find short, high-bandwidth bursts to unusual endpoints in ISP traffic.
#[derive(Debug, Parser)]
#[command(name = "burstwatch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read captures (pcap/pcapng, optionally .gz; files or directories) as one stream in
    /// timestamp order and write bidirectional flow records as JSON lines.
    Analyze(analyze::AnalyzeArgs),
    /// Write a seeded, synthetic ISP-like capture (pcap) for demos, tuning, tests and benchmarks.
    Simulate(simulate::SimulateArgs),
    /// Score alerts against a simulator ground truth: recall, precision and detection delay
    /// per scenario kind.
    Eval(eval::EvalArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BURSTWATCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Eval(args) => eval::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("burstwatch: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
