//! `burstwatch carve`: the packets of one address pair within a time span, copied from the
//! captures byte for byte into an evidence file, with a manifest of what was selected and the
//! SHA-256 of every input and of the output.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use burstwatch_capture::{Archive, InputList};
use burstwatch_engine::Prefix;
use burstwatch_wire::{decode, Decoded, PacketMeta};

use crate::evidence::{sha256_file, HashingWriter, Layout};
use crate::select::{parse_time, Selection};

/// Arguments of `burstwatch carve`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["alert", "pair"])))]
pub struct CarveArgs {
    /// Capture files, directories and glob patterns, read as one stream ordered by time.
    #[arg(required_unless_present = "read", value_name = "FILE|DIR|GLOB")]
    pub inputs: Vec<PathBuf>,
    /// Read this capture, as with tcpdump and tshark (repeatable; the same as naming it among
    /// the inputs).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Vec<PathBuf>,
    /// Carve this alert (its id) from the alerts file: its pair and its start..end span.
    #[arg(long, value_name = "ID", requires = "alerts")]
    pub alert: Option<String>,
    /// The alerts file (JSON lines from `analyze --alerts`) holding --alert.
    #[arg(long, value_name = "ALERTS.jsonl")]
    pub alerts: Option<PathBuf>,
    /// Carve the packets between these two addresses (both directions).
    #[arg(long, value_name = "SRC,DST", requires_all = ["from", "to"], conflicts_with = "alert")]
    pub pair: Option<String>,
    /// Start of the span for --pair (RFC 3339 or epoch seconds).
    #[arg(long, value_name = "TS", value_parser = parse_time)]
    pub from: Option<i64>,
    /// End of the span for --pair (RFC 3339 or epoch seconds).
    #[arg(long, value_name = "TS", value_parser = parse_time)]
    pub to: Option<i64>,
    /// The alerts file is pseudonymised with this key (`analyze --pseudonymize KEYFILE`): the
    /// alert's subscriber address is revealed before packets are matched (the manifest keeps
    /// the pseudonyms beside the addresses).
    #[arg(long, value_name = "KEYFILE", requires = "alert")]
    pub key: Option<PathBuf>,
    /// With --key: the alert's endpoint is a pseudonym too (`--pseudonymize-endpoints`).
    #[arg(long, requires = "key")]
    pub pseudonymize_endpoints: bool,
    /// Seconds added before and after the span.
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub margin: f64,
    /// The evidence file: pcap with the packets' link type, or pcapng with one interface per
    /// link type when the packets have several. `OUT.pcap.manifest.json` (the output name plus `.manifest.json`) is written beside it.
    #[arg(short, long, value_name = "OUT.pcap")]
    pub output: PathBuf,
}

/// What was carved, for the manifest.
struct Target {
    src: IpAddr,
    dst: IpAddr,
    from_ns: i64,
    to_ns: i64,
    alert: Option<String>,
    /// The alert's (src, dst) as the pseudonymised alerts file names them, when revealed.
    pseudonyms: Option<(IpAddr, IpAddr)>,
}

/// Packets matched so far, and the facts that decide the container.
#[derive(Default)]
struct Tally {
    packets: u64,
    captured_bytes: u64,
    ip_bytes: u64,
    link_types: Vec<u32>,
    micros: bool,
}

fn parse_pair(s: &str) -> anyhow::Result<(IpAddr, IpAddr)> {
    let (a, b) = s
        .split_once(',')
        .context("--pair takes two addresses: SRC,DST")?;
    Ok((
        a.trim()
            .parse()
            .with_context(|| format!("bad address {a}"))?,
        b.trim()
            .parse()
            .with_context(|| format!("bad address {b}"))?,
    ))
}

/// Seconds (a JSON number with microseconds) to ns, on the microsecond grid.
fn json_ts(v: &serde_json::Value) -> Option<i64> {
    v.as_f64().map(|s| (s * 1e6).round() as i64 * 1_000)
}

fn find_alert(path: &Path, id: &str) -> anyhow::Result<Target> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut text = String::new();
    f.take(1 << 30)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        if v["id"].as_str() != Some(id) {
            continue;
        }
        let bad = || {
            format!(
                "{}:{}: alert without {{src, dst, start_ts, end_ts}}",
                path.display(),
                n + 1
            )
        };
        let addr = |k: &str| v[k].as_str().and_then(|s| s.parse::<IpAddr>().ok());
        return Ok(Target {
            src: addr("src").with_context(bad)?,
            dst: addr("dst").with_context(bad)?,
            from_ns: json_ts(&v["start_ts"]).with_context(bad)?,
            // Times are printed to the microsecond: the end covers its whole microsecond.
            to_ns: json_ts(&v["end_ts"]).with_context(bad)? + 999,
            alert: Some(id.to_string()),
            pseudonyms: None,
        });
    }
    anyhow::bail!("no alert {id} in {}", path.display())
}

fn target(args: &CarveArgs) -> anyhow::Result<Target> {
    if let (Some(id), Some(alerts)) = (&args.alert, &args.alerts) {
        let mut t = find_alert(alerts, id)?;
        if let Some(key) = &args.key {
            let p = burstwatch_anon::Pseudonymizer::from_key_file(key)
                .with_context(|| format!("cannot read the key {}", key.display()))?;
            t.pseudonyms = Some((t.src, t.dst));
            t.src = p.reveal(t.src);
            if args.pseudonymize_endpoints {
                t.dst = p.reveal(t.dst);
            }
        }
        return Ok(t);
    }
    let pair = args
        .pair
        .as_deref()
        .context("--alert or --pair is required")?;
    let (src, dst) = parse_pair(pair)?;
    let (Some(from_ns), Some(to_ns)) = (args.from, args.to) else {
        anyhow::bail!("--pair needs --from and --to");
    };
    anyhow::ensure!(from_ns <= to_ns, "--from is after --to");
    Ok(Target {
        src,
        dst,
        from_ns,
        to_ns,
        alert: None,
        pseudonyms: None,
    })
}

/// Path with a suffix appended to its file name.
fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Runs the carve. `Err` is a usage error (exit 2); input faults give exit 1.
pub fn run(args: &CarveArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.margin.is_finite() && (0.0..=1e7).contains(&args.margin),
        "--margin must be between 0 and 10^7 seconds"
    );
    let t = target(args)?;
    let margin_ns = (args.margin * 1e9).round() as i64;
    let sel = Selection {
        since_ns: Some(t.from_ns.saturating_sub(margin_ns)),
        until_ns: Some(t.to_ns.saturating_add(margin_ns)),
        hosts: Prefix::new(t.src, if t.src.is_ipv4() { 32 } else { 128 })
            .into_iter()
            .collect(),
        endpoints: Prefix::new(t.dst, if t.dst.is_ipv4() { 32 } else { 128 })
            .into_iter()
            .collect(),
    };
    let named: Vec<PathBuf> = args.read.iter().chain(&args.inputs).cloned().collect();
    let inputs = crate::inputs::gather(&named)?;
    let spool_path = with_suffix(&args.output, ".spool");
    let others: Vec<&Path> = [&args.alerts, &args.key]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect();
    let outputs = [
        ("--output", args.output.clone()),
        ("--output", spool_path.clone()),
        ("--output", with_suffix(&args.output, ".manifest.json")),
    ];
    crate::inputs::refuse_overwriting_inputs(&inputs.list, &others, &outputs)?;
    anyhow::ensure!(
        !inputs.has_streams(),
        "carve hashes every input for its manifest after reading it, and standard input or a \
         FIFO can be read only once: write the stream to a file first"
    );
    if inputs.list.files.is_empty() {
        return Ok(ExitCode::from(1));
    }
    let problems = inputs.problems;
    let spool = File::create(&spool_path)
        .with_context(|| format!("cannot create {}", spool_path.display()))?;
    let result = carve_to_spool(inputs.list, &sel, BufWriter::new(spool));
    let finished = result.and_then(|(tally, errors, files)| {
        finish(args, &t, &spool_path, tally, &errors, &files).map(|()| errors.is_empty())
    });
    let _ = std::fs::remove_file(&spool_path);
    Ok(if finished? && problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Reads the inputs and spools matching packets: `ts_ns, link type, wire length, captured
/// length` (little-endian) and the bytes. Returns the tally, input errors and the files read.
fn carve_to_spool(
    inputs: InputList,
    sel: &Selection,
    mut spool: BufWriter<File>,
) -> anyhow::Result<(Tally, Vec<String>, Vec<PathBuf>)> {
    let mut archive = Archive::from_list(inputs);
    let files: Vec<PathBuf> = archive.paths().map(Path::to_path_buf).collect();
    let mut meta = PacketMeta::default();
    let mut tally = Tally {
        micros: true,
        ..Tally::default()
    };
    let mut errors = Vec::new();
    while let Some(event) = archive.next_event() {
        let pkt = match event {
            Ok(p) => p,
            Err(e) => {
                eprintln!("burstwatch: error: {e}");
                errors.push(e.to_string());
                continue;
            }
        };
        if !sel.time_ok(pkt.ts_ns) {
            continue;
        }
        if !matches!(decode(pkt.link_type, pkt.data, &mut meta), Ok(Decoded::Ip))
            || !sel.addrs_ok(meta.src, meta.dst)
        {
            continue;
        }
        anyhow::ensure!(
            pkt.ts_ns >= 0,
            "a matching packet is dated before 1970 and cannot be written"
        );
        tally.packets += 1;
        tally.captured_bytes += pkt.data.len() as u64;
        tally.ip_bytes += u64::from(meta.ip_len);
        tally.micros &= pkt.ts_ns % 1_000 == 0;
        if !tally.link_types.contains(&pkt.link_type.0) {
            tally.link_types.push(pkt.link_type.0);
        }
        spool.write_all(&pkt.ts_ns.to_le_bytes())?;
        spool.write_all(&pkt.link_type.0.to_le_bytes())?;
        spool.write_all(&pkt.wire_len.to_le_bytes())?;
        spool.write_all(&(pkt.data.len() as u32).to_le_bytes())?;
        spool.write_all(pkt.data)?;
    }
    spool.flush().context("writing the spool file")?;
    Ok((tally, errors, files))
}

/// Writes the evidence file from the spool, then the manifest.
fn finish(
    args: &CarveArgs,
    t: &Target,
    spool_path: &Path,
    tally: Tally,
    errors: &[String],
    files: &[PathBuf],
) -> anyhow::Result<()> {
    let layout = Layout {
        link_types: tally.link_types.clone(),
        micros: tally.micros,
    };
    let out = File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut w = HashingWriter::new(BufWriter::new(out));
    layout.write_header(&mut w)?;
    let mut r = BufReader::new(File::open(spool_path)?);
    let mut head = [0u8; 20];
    let mut data = vec![0u8; burstwatch_capture::MAX_RECORD as usize];
    for _ in 0..tally.packets {
        r.read_exact(&mut head)?;
        let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&head[..8]);
        let caplen = (word(16) as usize).min(data.len());
        r.read_exact(&mut data[..caplen])?;
        layout.write_packet(
            &mut w,
            i64::from_le_bytes(ts),
            word(8),
            word(12),
            &data[..caplen],
        )?;
    }
    let (_, out_sha, out_size) = w.finish()?;
    let mut input_list = Vec::with_capacity(files.len());
    for f in files {
        let (sha, size) = sha256_file(f).with_context(|| format!("cannot hash {}", f.display()))?;
        input_list.push(serde_json::json!({
            "path": f.to_string_lossy(),
            "size": size,
            "sha256": sha,
        }));
    }
    let ts = |ns: i64| crate::flow_json::Ts(ns);
    let manifest = serde_json::json!({
        "tool": "burstwatch",
        "version": env!("CARGO_PKG_VERSION"),
        "command_line": std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "inputs": input_list,
        "input_errors": errors,
        "selection": {
            "alert_id": t.alert,
            "src": t.src,
            "dst": t.dst,
            "from_ts": ts(t.from_ns),
            "to_ts": ts(t.to_ns),
            "margin_seconds": args.margin,
            "revealed_from": t.pseudonyms.map(|(src, dst)| serde_json::json!({
                "src": src,
                "dst": dst,
            })),
            "both_directions": true,
            "addresses": "innermost IP header",
        },
        "packets": tally.packets,
        "captured_bytes": tally.captured_bytes,
        "ip_bytes": tally.ip_bytes,
        "output": {
            "path": args.output.to_string_lossy(),
            "format": layout.format(),
            "timestamp_resolution": if layout.micros { "microseconds" } else { "nanoseconds" },
            "link_types": layout.link_types,
            "size": out_size,
            "sha256": out_sha,
        },
    });
    let manifest_path = with_suffix(&args.output, ".manifest.json");
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    std::fs::write(&manifest_path, text)
        .with_context(|| format!("cannot write {}", manifest_path.display()))?;
    if tally.packets == 0 {
        eprintln!(
            "burstwatch: warning: no packet matched {} <-> {} in the span (alerts of a pseudonymised run name pseudonyms: give their key with --key)",
            t.src, t.dst
        );
    }
    eprintln!(
        "burstwatch: carved {} packets ({} bytes captured, {} of IP) into {}",
        tally.packets,
        tally.captured_bytes,
        tally.ip_bytes,
        args.output.display()
    );
    Ok(())
}
