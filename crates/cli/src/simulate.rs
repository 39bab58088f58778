//! `burstwatch simulate`: write a seeded, deterministic synthetic ISP capture (classic pcap) for
//! demos, tuning and benchmarks. See the `burstwatch-sim` crate for the traffic model.
//!
//! Unless `--no-scenarios` is given, labelled scenarios (upstream bursts and beacons to rare
//! endpoints, and decoys that should not alert) are injected after the first 40 % of the
//! duration, and their ground truth is written as JSON beside the pcap (`X.truth.json`, or
//! `--truth PATH`), for `burstwatch eval`.

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use burstwatch_sim::{SimConfig, Simulator};

/// Arguments of `burstwatch simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Output pcap file.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Seed; the same arguments always give a byte-identical file.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of home subscribers.
    #[arg(long, default_value_t = 2000)]
    pub subscribers: u32,
    /// Packet-time span in seconds (with --size: the span the traffic rate is scaled to).
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub duration: u32,
    /// Stop once the file reaches this size, e.g. 1G, 500M, 10k (binary multiples: 1k = 1024).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub size: Option<u64>,
    /// Share of flows over IPv6 (0 to 1).
    #[arg(long, default_value_t = 0.2, value_name = "FRACTION")]
    pub ipv6_share: f64,
    /// Activities started per subscriber per second [default: 1/150, or scaled to --size].
    /// Lower it for large populations, e.g. 0.0005 for 20 000 subscribers.
    #[arg(long, value_name = "RATE")]
    pub activity_rate: Option<f64>,
    /// Number of external servers in the popularity pool.
    #[arg(long, default_value_t = 4000)]
    pub servers: u32,
    /// Ground-truth JSON of the injected scenarios [default: the output path with its
    /// extension replaced by `.truth.json`].
    #[arg(long, value_name = "FILE")]
    pub truth: Option<PathBuf>,
    /// Multiply the byte volumes (and rates) of scenario transfers and calls, e.g. 0.1 for a
    /// small capture meant to be replayed ten times faster (`tcpreplay --multiplier 10`).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    pub scenario_scale: f64,
    /// Pure background traffic: inject no scenarios and write no truth file (for benchmarks).
    #[arg(long, conflicts_with = "truth")]
    pub no_scenarios: bool,
    /// Write the flow export of the traffic instead of its packets: the datagrams a router
    /// would send to its collector (from 192.0.2.250 to 192.0.2.251 on the protocol's port),
    /// as a capture that `analyze --input-kind flow-export` reads. The truth file is the same.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub export: Option<crate::sim_export::ExportFormat>,
    /// With --export: 1-in-N random packet sampling.
    #[arg(long, default_value_t = 1, value_name = "N", requires = "export", value_parser = clap::value_parser!(u32).range(1..=16383))]
    pub sampling: u32,
    /// With --export: the router's active timeout (a flow running longer is reported every
    /// SECS seconds).
    #[arg(long, default_value_t = 60, value_name = "SECS", requires = "export", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub active_timeout: u32,
    /// With --export: also send each datagram to this collector (`udp://HOST:PORT`, e.g. a
    /// daemon's `flow_listen`), paced by --send-speed, as a router would.
    #[arg(long, value_name = "URL", requires = "export")]
    pub send: Option<String>,
    /// With --send: seconds of traffic per second of sending (0: as fast as possible).
    #[arg(long, default_value_t = 1.0, value_name = "X", requires = "send")]
    pub send_speed: f64,
    /// With --export: the router's idle timeout.
    #[arg(long, default_value_t = 15, value_name = "SECS", requires = "export", value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub idle_timeout: u32,
    /// Also inject adversarial scenarios: bursts at and below the gates, low and slow, split
    /// into many flows or into a popular cloud's prefix; beacons at and past the regularity
    /// rule. Each is tagged `adversarial` and scoped (`should_detect`) in the truth.
    #[arg(long, conflicts_with = "no_scenarios")]
    pub adversarial: bool,
    /// Every burst of the plain burst scenarios (single and in series) at this mean upstream
    /// rate, in Mbit/s, for --burst-duration seconds, instead of drawn; the rest of the run is
    /// as without (the same subscribers, endpoints, times and background). For measuring
    /// detection by burst shape (`deploy/bench/flow_limits.sh`).
    #[arg(
        long,
        value_name = "MBIT",
        requires = "burst_duration",
        conflicts_with = "no_scenarios"
    )]
    pub burst_rate: Option<f64>,
    /// With --burst-rate: every plain burst lasts this long, in seconds.
    #[arg(long, value_name = "SECS", requires = "burst_rate")]
    pub burst_duration: Option<f64>,
    /// Do not print the summary on standard error.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Parse a byte size: a number with an optional suffix k/K, M, G, T (powers of 1024; an
/// optional trailing `B` or `iB` is accepted, e.g. `1GiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("unknown size suffix in '{s}' (use k, M, G or T)")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a size: '{s}'"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("not a size: '{s}'"));
    }
    Ok((v * mult as f64).round() as u64)
}

/// Run the simulation. `Err` is a usage or I/O error.
pub fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.ipv6_share),
        "--ipv6-share must be between 0 and 1"
    );
    anyhow::ensure!(
        args.activity_rate.is_none_or(|r| r.is_finite() && r >= 0.0),
        "--activity-rate must be a non-negative number"
    );
    anyhow::ensure!(
        args.scenario_scale.is_finite()
            && args.scenario_scale > 0.0
            && args.scenario_scale <= 100.0,
        "--scenario-scale must be a number above 0 and at most 100"
    );
    let burst_shape = match (args.burst_rate, args.burst_duration) {
        (Some(mbit), Some(secs)) => {
            anyhow::ensure!(
                mbit.is_finite() && mbit > 0.0 && mbit <= 10_000.0,
                "--burst-rate must be a number of Mbit/s above 0 and at most 10000"
            );
            anyhow::ensure!(
                secs.is_finite() && (0.5..=60.0).contains(&secs),
                "--burst-duration must be a number of seconds from 0.5 to 60"
            );
            Some((mbit * 1e6, secs))
        }
        _ => None,
    };
    let cfg = SimConfig {
        seed: args.seed,
        subscribers: args.subscribers,
        servers: args.servers,
        duration_secs: args.duration,
        target_bytes: args.size,
        ipv6_share: args.ipv6_share,
        scenarios: !args.no_scenarios,
        activity_rate: args.activity_rate,
        scenario_scale: args.scenario_scale,
        adversarial: args.adversarial,
        burst_shape,
        ..SimConfig::default()
    };
    let file = File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let started = Instant::now();
    let mut exported = None;
    let mut send_failures = None;
    let (summary, truth) = match args.export {
        None => Simulator::new(cfg).write_pcap_with_truth(file),
        Some(format) => {
            let out = std::io::BufWriter::with_capacity(1 << 20, file);
            let mut tap = crate::sim_export::ExportTap::new(
                format,
                args.sampling,
                args.active_timeout,
                args.idle_timeout,
                args.seed,
                out,
            )?;
            if let Some(url) = &args.send {
                let to = crate::sim_export::parse_udp_url(url)?;
                anyhow::ensure!(
                    args.send_speed.is_finite() && args.send_speed >= 0.0,
                    "--send-speed must be a number >= 0"
                );
                let (tee, failures) = crate::sim_export::udp_sender(to, args.send_speed)?;
                tap.tee(tee);
                send_failures = Some((url.clone(), failures));
            }
            let res = Simulator::new(cfg).write_pcap_with_truth(&mut tap);
            exported = Some(tap.finish()?);
            res
        }
    }
    .with_context(|| format!("cannot write {}", args.output.display()))?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let truth_path = (!args.no_scenarios).then(|| {
        args.truth
            .clone()
            .unwrap_or_else(|| default_truth_path(&args.output))
    });
    if let Some(path) = &truth_path {
        let mut text = serde_json::to_string_pretty(&truth)?;
        text.push('\n');
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if !args.quiet {
        eprintln!(
            "burstwatch simulate: {} packets, {} bytes, {} flows, {:.1} s of traffic, {:.1} s, {:.0} MB/s -> {}",
            summary.packets,
            summary.bytes,
            summary.flows,
            (summary.last_ts_ns - summary.first_ts_ns) as f64 / 1e9,
            secs,
            summary.bytes as f64 / 1e6 / secs,
            args.output.display()
        );
        if let Some(e) = &exported {
            eprintln!(
                "burstwatch simulate: exported as {} datagrams, {} records/samples of {} bytes (1:{} sampling), {} bytes of capture",
                e.datagrams, e.records, e.bytes, args.sampling, e.file_bytes
            );
        }
        if let Some(path) = &truth_path {
            let events: usize = truth.scenarios.iter().map(|s| s.events.len()).sum();
            eprintln!(
                "burstwatch simulate: {} scenarios ({} events) -> {}",
                truth.scenarios.len(),
                events,
                path.display()
            );
        }
    }
    if let Some((url, f)) = send_failures {
        let n = f.count.load(std::sync::atomic::Ordering::Relaxed);
        if n > 0 {
            let first = f
                .first
                .lock()
                .ok()
                .and_then(|g| g.clone())
                .unwrap_or_default();
            let sent = exported.as_ref().map_or(0, |e| e.datagrams);
            eprintln!(
                "burstwatch: error: --send {url}: {n} of {sent} datagrams not sent (first: {first}); the capture holds them all"
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `X.pcap` -> `X.truth.json` (any extension is replaced; none: appended).
pub fn default_truth_path(pcap: &std::path::Path) -> PathBuf {
    pcap.with_extension("truth.json")
}

#[cfg(test)]
mod tests {
    use super::{default_truth_path, parse_size};
    use std::path::Path;

    #[test]
    fn truth_path_sits_beside_the_pcap() {
        assert_eq!(
            default_truth_path(Path::new("/tmp/x.pcap")),
            Path::new("/tmp/x.truth.json")
        );
        assert_eq!(
            default_truth_path(Path::new("y")),
            Path::new("y.truth.json")
        );
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("10k"), Ok(10 << 10));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("123"), Ok(123));
        assert!(parse_size("12x").is_err());
        assert!(parse_size("").is_err());
    }
}
