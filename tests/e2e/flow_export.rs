//! Flow-export input end to end: `simulate --export` writes NetFlow v5/v9, IPFIX and sFlow
//! datagrams as a capture, `analyze --input-kind flow-export` reads it, and its record, sample
//! and byte totals must equal tshark's decoding of the same datagrams (times the sampling rate
//! tshark reads from them). The seed, sampling rate and active timeout are drawn per run and
//! printed. sFlow captures of the shared corpus go through the same comparison.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use burstwatch_tests::{corpus, manifest, run_ok};

use crate::alerts::check_schema;

/// A seed for this run's parameters (printed, so a failure can be replayed).
pub(crate) fn run_seed() -> u64 {
    use std::hash::BuildHasher;
    let seed = std::env::var("FLOW_EXPORT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(1u8));
    eprintln!("flow_export: FLOW_EXPORT_SEED={seed}");
    seed
}

/// splitmix64 step.
pub(crate) fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// tshark's fields of every frame, one `Vec` per field, each value split at commas.
fn tshark(pcap: &Path, decode_as: Option<&str>, fields: &[&str]) -> Vec<Vec<Vec<u64>>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-E", "occurrence=a"]);
    if let Some(d) = decode_as {
        cmd.args(["-d", d]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.split('\t')
                .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
                .collect()
        })
        .collect()
}

/// burstwatch's `flow_export` counters for a capture of export datagrams.
pub(crate) fn analyze(pcap: &Path, dir: &Path, extra: &[&str]) -> serde_json::Value {
    let stats = dir.join("stats.json");
    let alerts = dir.join("alerts.jsonl");
    let mut args = vec![
        "analyze",
        pcap.to_str().unwrap(),
        "--input-kind",
        "flow-export",
        "--quiet",
        "--stats",
        stats.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    let alert_bytes = std::fs::read(&alerts).unwrap();
    check_schema("deploy/schema/alert.schema.json", &alert_bytes);
    for line in alert_bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let a: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(a["source"]["beacon_scoring"], false);
        assert_eq!(a["kind"], "burst", "no beacon from flow export");
    }
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    s["flow_export"].clone()
}

/// Sum of a field over every frame.
fn sum(rows: &[Vec<Vec<u64>>], field: usize) -> u64 {
    rows.iter().filter_map(|r| r.get(field)).flatten().sum()
}

/// Values of a field over every frame.
fn count(rows: &[Vec<Vec<u64>>], field: usize) -> u64 {
    rows.iter()
        .filter_map(|r| r.get(field))
        .map(|v| v.len() as u64)
        .sum()
}

#[test]
fn simulated_exports_match_tshark() {
    let mut rng = run_seed();
    let dir = tempfile::tempdir().unwrap();
    for format in ["ipfix", "netflow9", "netflow5", "sflow"] {
        let sampling = [1u64, 1, 10, 100, 1000][(next(&mut rng) % 5) as usize];
        let sampling = if format == "sflow" {
            sampling.max(4)
        } else {
            sampling
        };
        let active = (5 + next(&mut rng) % 120).to_string();
        let subs = (40 + next(&mut rng) % 80).to_string();
        let pcap = dir.path().join(format!("{format}.pcap"));
        // A small scenario at 1:1000 can have nothing sampled at all (no datagram): draw
        // another seed then.
        let mut datagrams = 0;
        for _ in 0..8 {
            let seed = (next(&mut rng) % 1000).to_string();
            eprintln!(
                "{format}: seed {seed}, 1:{sampling}, active timeout {active} s, {subs} subscribers"
            );
            run_ok(&[
                "simulate",
                "-q",
                "-o",
                pcap.to_str().unwrap(),
                "--export",
                format,
                "--sampling",
                &sampling.to_string(),
                "--active-timeout",
                &active,
                "--subscribers",
                &subs,
                "--duration",
                "120",
                "--seed",
                &seed,
            ]);
            datagrams = tshark(&pcap, None, &["frame.number"]).len() as u64;
            if datagrams > 0 {
                break;
            }
        }
        assert!(
            datagrams > 0,
            "{format}: eight scenarios without a datagram"
        );
        let got = analyze(&pcap, dir.path(), &[]);
        assert_eq!(got["datagrams"], datagrams, "{format}");
        assert_eq!(got["parse_errors"], 0, "{format}");
        assert_eq!(got["template_misses"], 0, "{format}");
        if format == "sflow" {
            let rows = tshark(
                &pcap,
                None,
                &["sflow.flow_sample.sampling_rate", "ip.len", "ipv6.plen"],
            );
            let samples = count(&rows, 0);
            // The first ip.len of a frame is the datagram's own IPv4 header.
            let outer: u64 = rows.iter().filter_map(|r| r[1].first()).sum();
            let ip_bytes = sum(&rows, 1) - outer + sum(&rows, 2) + 40 * count(&rows, 2);
            let rate = rows
                .iter()
                .flat_map(|r| r[0].iter())
                .max()
                .copied()
                .unwrap_or(1);
            assert_eq!(rate, sampling);
            assert_eq!(got["packet_samples"], samples, "sflow samples");
            assert_eq!(got["estimated_bytes"], ip_bytes * rate, "sflow bytes");
            assert!(samples > 0);
        } else {
            let port = if format == "ipfix" { 4739 } else { 2055 };
            let d = format!("udp.port=={port},cflow");
            let rows = tshark(
                &pcap,
                Some(&d),
                &[
                    "cflow.octets",
                    "cflow.packets",
                    "cflow.sampling_interval",
                    "cflow.sampling_packet_space",
                    "cflow.samplerate",
                ],
            );
            // IPFIX: 1 of every 1 + space (305/306); v9: the sampling interval (34) of
            // options data; v5: the header's rate (tshark masks the mode bits).
            let field = match format {
                "ipfix" => 3,
                "netflow9" => 2,
                _ => 4,
            };
            let stated = rows.iter().flat_map(|r| r[field].iter()).max().copied();
            let rate = match format {
                "ipfix" => stated.map_or(1, |s| s + 1),
                _ => stated.unwrap_or(1).max(1),
            };
            assert_eq!(rate, sampling, "{format}: the rate tshark reads");
            assert_eq!(got["records"], count(&rows, 0), "{format} records");
            assert_eq!(
                got["estimated_bytes"],
                sum(&rows, 0) * rate,
                "{format} bytes"
            );
            assert!(count(&rows, 0) > 0);
        }
        assert_eq!(got["max_sampling_rate"], sampling, "{format}");
    }
}

#[test]
fn corpus_sflow_captures_match_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let sflow: Vec<_> = manifest()
        .into_iter()
        .filter(|r| r.path.contains("sflow") && r.link_type.contains("EN10MB"))
        .collect();
    assert!(!sflow.is_empty(), "the corpus has sFlow captures");
    let (mut with_samples, mut with_counters) = (0, 0);
    for row in sflow {
        let pcap = corpus().join(&row.path);
        let got = analyze(&pcap, dir.path(), &[]);
        let rows = tshark(
            &pcap,
            None,
            &["udp.dstport", "sflow.flow_sample.sampling_rate"],
        );
        let datagrams = rows.iter().filter(|r| r[0] == [6343]).count() as u64;
        let flow_samples = count(&rows, 1);
        eprintln!(
            "{}: {} datagrams, {} flow samples (tshark: {datagrams}, {flow_samples}), {} parse errors",
            row.path, got["datagrams"], got["packet_samples"], got["parse_errors"]
        );
        // Every sFlow datagram is taken (read, or counted as a parse error); every flow
        // sample tshark decodes becomes one weighted packet.
        assert_eq!(got["datagrams"], datagrams, "{}", row.path);
        assert_eq!(got["packet_samples"], flow_samples, "{}", row.path);
        if flow_samples > 0 {
            with_samples += 1;
        }
        // Counter samples: each agent's interfaces with the octets it last reported.
        let ours: BTreeMap<(String, u64), (u64, u64)> = got["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    (
                        i["agent"].as_str().unwrap().to_string(),
                        i["if_index"].as_u64().unwrap(),
                    ),
                    (
                        i["in_octets"].as_u64().unwrap(),
                        i["out_octets"].as_u64().unwrap(),
                    ),
                )
            })
            .collect();
        let theirs = tshark_interfaces(&pcap);
        eprintln!(
            "{}: {} interfaces (tshark: {})",
            row.path,
            ours.len(),
            theirs.len()
        );
        assert_eq!(ours, theirs, "{}", row.path);
        with_counters += usize::from(!theirs.is_empty());
    }
    assert!(
        with_samples > 0,
        "some corpus sFlow capture has flow samples"
    );
    assert!(
        with_counters > 0,
        "some corpus sFlow capture has interface counters"
    );
}

/// tshark's generic interface counters of an sFlow capture: (agent, ifIndex) → the last
/// (ifInOctets, ifOutOctets) reported, in capture order.
fn tshark_interfaces(pcap: &Path) -> BTreeMap<(String, u64), (u64, u64)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-T", "fields", "-E", "occurrence=a"])
        .args(["-e", "sflow_245.agent", "-e", "sflow_245.agent.v6"])
        .args([
            "-e",
            "sflow_245.ifindex",
            "-e",
            "sflow_245.ifinoct",
            "-e",
            "sflow_245.ifoutoct",
        ])
        .output()
        .expect("run tshark");
    assert!(out.status.success());
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let nums = |i: usize| -> Vec<u64> {
            f.get(i)
                .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
                .unwrap_or_default()
        };
        let agent = [f.first(), f.get(1)]
            .into_iter()
            .flatten()
            .find(|a| !a.is_empty())
            .map(|a| a.to_string());
        let (idx, inb, outb) = (nums(2), nums(3), nums(4));
        assert_eq!((idx.len(), inb.len()), (outb.len(), outb.len()), "{line}");
        if let Some(agent) = agent {
            for ((i, a), b) in idx.into_iter().zip(inb).zip(outb) {
                m.insert((agent.clone(), i), (a, b));
            }
        }
    }
    m
}

/// Sum of `bytes_fwd + bytes_rev` and the (kind, src, dst) of alerts in JSON-lines files.
fn flow_bytes(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| {
            burstwatch_tests::json_lines(&b)
                .iter()
                .map(|r| r["bytes_fwd"].as_u64().unwrap() + r["bytes_rev"].as_u64().unwrap())
                .sum()
        })
        .unwrap_or(0)
}

/// Bytes per address pair (the two addresses in order, whichever initiated) in a JSON-lines
/// flow file. Which side a record names as its initiator depends on where the flow table cut
/// the flows: a live daemon moves packet time on with the wall clock while its input is quiet
/// (so held alerts go out), which a replay of the recording cannot repeat, and a flow cut at a
/// different point may start with the other direction's record. The bytes of a pair may not
/// differ.
fn pair_bytes(path: &Path) -> std::collections::BTreeMap<(String, String), u64> {
    let mut m = std::collections::BTreeMap::new();
    for r in burstwatch_tests::json_lines(&std::fs::read(path).unwrap()) {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        let (a, b) = (s("src"), s("dst"));
        let key = if a <= b { (a, b) } else { (b, a) };
        *m.entry(key).or_default() +=
            r["bytes_fwd"].as_u64().unwrap() + r["bytes_rev"].as_u64().unwrap();
    }
    m
}

fn alert_keys(path: &Path) -> std::collections::BTreeSet<(String, String, String)> {
    std::fs::read(path)
        .map(|b| {
            burstwatch_tests::json_lines(&b)
                .iter()
                .map(|a| {
                    let s = |k: &str| a[k].as_str().unwrap_or_default().to_string();
                    (s("kind"), s("src"), s("dst"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Thresholds under which the replayed records raise bursts: the warm-up is one second and the
/// floors fit the simulator's scenarios as scaled down for a small capture
/// (`--scenario-scale 0.01`).
pub(crate) const DETECT: &str = "[detect]\nbaseline_warmup_seconds = 1\nburst_min_bytes = 20000\n\
                      burst_rate_floor_bps = 80000\nburst_min_upstream_ratio = 0.0\n\
                      alert_min_score = 0.0\n";

/// A test's draw of a small scenario: its random stream (from [`run_seed`]), a temporary
/// directory, the capture's path in it, and the simulator seed and subscribers (60-99) drawn.
pub(crate) struct Draw {
    pub rng: u64,
    pub dir: tempfile::TempDir,
    pub pcap: std::path::PathBuf,
    pub seed: String,
    pub subs: String,
}

/// Draw a small scenario (write it with [`small_scenarios`]).
pub(crate) fn draw() -> Draw {
    let mut rng = run_seed();
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("traffic.pcap");
    let seed = (next(&mut rng) % 1000).to_string();
    let subs = (60 + next(&mut rng) % 40).to_string();
    Draw {
        rng,
        dir,
        pcap,
        seed,
        subs,
    }
}

/// A small capture of the simulator's labelled scenarios (bursts among them) at `pcap`: 300 s
/// of `subs` subscribers (40 or more for the scenarios), the scenarios' volumes scaled down
/// a hundredfold (see [`DETECT`]).
pub(crate) fn small_scenarios(pcap: &Path, seed: &str, subs: &str) {
    run_ok(&[
        "simulate",
        "-q",
        "-o",
        pcap.to_str().unwrap(),
        "--seed",
        seed,
        "--subscribers",
        subs,
        "--duration",
        "300",
        "--scenario-scale",
        "0.01",
    ]);
}

/// A daemon listening for flow export on a loopback port, with tcpdump recording what reaches
/// that port (for `analyze` of the same datagrams).
struct FlowDaemon {
    daemon: std::process::Child,
    tcpdump: std::process::Child,
    port: u16,
    metrics: u16,
    cfg: std::path::PathBuf,
    log: std::path::PathBuf,
    rec: std::path::PathBuf,
    /// Whether the daemon was given a flow file.
    flows: bool,
}

impl FlowDaemon {
    /// Start the daemon (config `DETECT`, alerts in `d`, and flow records there when `flows`:
    /// without a flow file its flow-export bins skip the flow table) and the recording.
    fn start(d: &Path, flows: bool) -> Self {
        use std::process::Stdio;
        use std::time::Duration;
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let metrics = burstwatch_tests::prom::free_port();
        let cfg = d.join("burstwatch.toml");
        std::fs::write(
            &cfg,
            format!(
                "[daemon]\nflow_listen = [\"udp://127.0.0.1:{port}\"]\n\
                 metrics_bind = \"127.0.0.1:{metrics}\"\n{}\
                 alerts_file = \"alerts.jsonl\"\n{DETECT}",
                if flows {
                    "flows_file = \"flows.jsonl\"\n"
                } else {
                    ""
                }
            ),
        )
        .unwrap();
        let log = d.join("daemon.log");
        let daemon = crate::live::spawn_daemon(&cfg, &log);
        let rec = d.join("rec.pcap");
        let tcpdump_log = d.join("tcpdump.log");
        let tcpdump = Command::new("tcpdump")
            .args(["-i", "lo", "-U", "-w"])
            .arg(&rec)
            .arg(format!("udp port {port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&tcpdump_log).unwrap())
            .spawn()
            .unwrap();
        crate::live::wait_for_log(&tcpdump_log, "listening on", Duration::from_secs(10));
        Self {
            daemon,
            tcpdump,
            port,
            metrics,
            cfg,
            log,
            rec,
            flows,
        }
    }

    /// The exporter's series on /metrics (records, datagrams, parse errors, template misses,
    /// sampling rate) and the socket's (kernel drops, late bins), once `done` holds for the
    /// records (or after 15 s).
    fn series(&self, done: impl Fn(Option<u64>) -> bool) -> ([Option<u64>; 5], [Option<u64>; 2]) {
        use std::time::Duration;
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], self.metrics).into();
        let until = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let body = burstwatch_tests::prom::http_get(addr, "/metrics")
                .map(|(_, b)| b)
                .unwrap_or_default();
            let value = |name: &str, label: &str| -> Option<u64> {
                body.lines()
                    .find(|l| l.starts_with(&format!("{name}{{{label}}} ")))
                    .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            };
            let ex = "exporter=\"127.0.0.1\"";
            let got = [
                "burstwatch_flow_export_records_total",
                "burstwatch_flow_export_datagrams_total",
                "burstwatch_flow_export_parse_errors_total",
                "burstwatch_flow_export_template_misses_total",
                "burstwatch_flow_export_sampling_rate",
            ]
            .map(|n| value(n, ex));
            let listen = format!("listen=\"udp://127.0.0.1:{}\"", self.port);
            let socket = [
                "burstwatch_flow_export_socket_drops_total",
                "burstwatch_flow_export_late_bins_total",
            ]
            .map(|n| value(n, &listen));
            if done(got[0]) || std::time::Instant::now() > until {
                return (got, socket);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stop the recording (SIGINT) and the daemon (SIGTERM); both must exit cleanly.
    fn stop(&mut self) {
        for (child, sig) in [(&mut self.tcpdump, "-INT"), (&mut self.daemon, "-TERM")] {
            Command::new("kill")
                .args([sig, &child.id().to_string()])
                .status()
                .unwrap();
            let st = child.wait().unwrap();
            assert!(st.success(), "{sig}: {st}");
        }
        let text = std::fs::read_to_string(&self.log).unwrap();
        assert!(text.contains("flow export stopped"), "{text}");
    }

    /// `analyze --input-kind flow-export` of the recording with the daemon's config, its
    /// outputs in `d/analyze`: its run counters. Run again without flow records (its bins then
    /// skip the flow table), on two engine workers (whose shards skip it too), in
    /// `d/analyze-no-flows`: the same alerts, line for line.
    fn analyze_recording(&self, d: &Path) -> serde_json::Value {
        let bare = d.join("analyze-no-flows");
        std::fs::create_dir(&bare).unwrap();
        let port = self.port.to_string();
        let cfg = [
            "--config",
            self.cfg.to_str().unwrap(),
            "--flow-port",
            &port,
            "--workers",
            "2",
        ];
        let bare_stats = analyze(&self.rec, &bare, &cfg);
        let an = d.join("analyze");
        std::fs::create_dir(&an).unwrap();
        let af = an.join("flows.jsonl");
        let stats = analyze(
            &self.rec,
            &an,
            &[
                "--config",
                self.cfg.to_str().unwrap(),
                "--flow-port",
                &self.port.to_string(),
                "--flows",
                af.to_str().unwrap(),
            ],
        );
        let lines = |p: &Path| -> Vec<serde_json::Value> {
            burstwatch_tests::json_lines(&std::fs::read(p).unwrap())
                .into_iter()
                .map(|mut a| {
                    // The time the line was written.
                    a.as_object_mut().map(|o| o.remove("timestamp"));
                    a
                })
                .collect()
        };
        let with = lines(&an.join("alerts.jsonl"));
        assert!(!with.is_empty(), "no alert to compare");
        assert_eq!(
            with,
            lines(&bare.join("alerts.jsonl")),
            "alerts with and without flow records"
        );
        assert_eq!(stats["records"], bare_stats["records"]);
        // Without flow records every bin passed the flow table by; with them none did.
        let passed = |dir: &Path| -> u64 {
            let s: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join("stats.json")).unwrap()).unwrap();
            s["export_packets_without_flow"].as_u64().unwrap()
        };
        assert!(passed(&bare) > 0);
        assert_eq!(passed(&an), 0);
        stats
    }

    /// The daemon's flow records (where it was given a flow file; none otherwise) carry the
    /// bytes of analyze's per address pair (more than one pair), and both raised the same
    /// alerts, at least one (`what` names the run).
    fn assert_same_as_analyze(&self, d: &Path, what: &str) {
        let an = d.join("analyze");
        let pairs = pair_bytes(&an.join("flows.jsonl"));
        assert!(pairs.len() > 1, "{pairs:?}");
        let daemon_flows = d.join("flows.jsonl");
        if self.flows {
            assert_eq!(
                pair_bytes(&daemon_flows),
                pairs,
                "bytes per address pair: the daemon's and analyze's flow records"
            );
        } else {
            assert!(!daemon_flows.exists(), "flow records without a flow file");
        }
        let (daemon_alerts, analyze_alerts) = (
            alert_keys(&d.join("alerts.jsonl")),
            alert_keys(&an.join("alerts.jsonl")),
        );
        eprintln!(
            "{what}: {} daemon alerts, {} analyze alerts",
            daemon_alerts.len(),
            analyze_alerts.len()
        );
        // Bursts exist in the sent data, so the comparison below can fail.
        assert!(!daemon_alerts.is_empty(), "no alert to compare");
        assert_eq!(daemon_alerts, analyze_alerts);
    }
}

/// A real exporter into the daemon: nfdump's `nfpcapd` makes flow files of a simulated capture,
/// `nfreplay -v 9` sends them as NetFlow v9 to the daemon on loopback while tcpdump records the
/// datagrams. The daemon's flow records must carry every byte nfdump counts (`nfdump -I`), as
/// must `analyze --input-kind flow-export` of the recording, with the same bytes per address
/// pair, and both must raise the same alerts, at least one. (nfreplay stamps its headers with
/// the current time and the records keep the capture's times, months apart: both sides place
/// those records by the exporter's own clock, pinned to the arrival of the first, and count
/// them so; the thresholds are lowered for the small capture, see [`DETECT`].)
#[test]
fn daemon_takes_nfreplay_as_analyze_takes_its_recording() {
    use std::process::Stdio;
    use std::time::Duration;
    if !crate::live::live_tests_enabled() {
        return;
    }
    let mut rng = run_seed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pcap = d.join("traffic.pcap");
    let seed = (next(&mut rng) % 1000).to_string();
    // At least 40 subscribers and 300 s: the simulator's labelled scenarios (bursts among
    // them), scaled down so that the capture stays small.
    let subs = (40 + next(&mut rng) % 30).to_string();
    eprintln!("nfreplay: seed {seed}, {subs} subscribers");
    small_scenarios(&pcap, &seed, &subs);
    let nf = d.join("nf");
    std::fs::create_dir(&nf).unwrap();
    let st = Command::new("nfpcapd")
        .arg("-r")
        .arg(&pcap)
        .arg("-w")
        .arg(&nf)
        .stdout(Stdio::null())
        .status()
        .expect("nfpcapd (Debian nfdump)");
    assert!(st.success());
    let mut files: Vec<_> = std::fs::read_dir(&nf)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("nfcapd.")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let (mut nf_flows, mut nf_bytes) = (0u64, 0u64);
    for f in &files {
        let out = Command::new("nfdump")
            .arg("-r")
            .arg(f)
            .arg("-I")
            .output()
            .unwrap();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let num = |p: &str| {
                line.strip_prefix(p)
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            nf_flows += num("Flows:").unwrap_or(0);
            nf_bytes += num("Bytes:").unwrap_or(0);
        }
    }
    assert!(nf_flows > 0 && nf_bytes > 0);

    let mut fd = FlowDaemon::start(d, true);
    for f in &files {
        let st = Command::new("nfreplay")
            .args([
                "-v",
                "9",
                "-H",
                "127.0.0.1",
                "-p",
                &fd.port.to_string(),
                "-d",
                "40000",
                "-r",
            ])
            .arg(f)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    std::thread::sleep(Duration::from_secs(1));
    let series = fd.series(|records| records == Some(nf_flows));
    eprintln!("nfreplay: exporter series {series:?}");
    fd.stop();
    let got = fd.analyze_recording(d);
    let af = d.join("analyze/flows.jsonl");
    assert_eq!(
        got["records"], nf_flows,
        "records analyze read from the recording"
    );
    let ([records, datagrams, parse_errors, _, rate], [drops, late]) = series;
    assert_eq!(records, Some(nf_flows), "the daemon's exporter records");
    assert_eq!(datagrams, got["datagrams"].as_u64(), "exporter datagrams");
    assert_eq!(parse_errors, Some(0));
    assert_eq!(rate, Some(1), "unsampled");
    assert_eq!(drops, Some(0), "kernel drops at the flow socket");
    assert!(late.is_some(), "the socket's late bins");
    assert_eq!(got["estimated_bytes"], nf_bytes);
    if crate::flow_softflowd::capture_is_weeks_old() {
        assert_eq!(
            got["own_clock"], nf_flows,
            "records placed by the exporter's own clock"
        );
    }
    assert_eq!(flow_bytes(&af), nf_bytes, "analyze's flow records");
    assert_eq!(
        flow_bytes(&d.join("flows.jsonl")),
        nf_bytes,
        "the daemon's flow records"
    );
    fd.assert_same_as_analyze(d, "nfreplay");
}

/// The daemon's sampled path: `simulate --export ipfix|netflow9 --sampling N --send` is the
/// router, sending 1-in-N sampled export of the simulator's scenarios to the daemon on
/// loopback while tcpdump records the datagrams. The daemon reports the sampling rate, scales
/// its flow records by it as `analyze` does on the recording (the same bytes per address pair;
/// the test draws whether the daemon writes flow records at all: without, its bins skip the
/// flow table), and both raise the same alerts, at least one, each saying its sampling rate;
/// `analyze` with and without flow records raises them line for line. (The records
/// keep the simulator's times, far from the clock, so both count them at their arrival second:
/// see the nfreplay test above.)
#[test]
fn daemon_takes_sampled_export_as_analyze_takes_its_recording() {
    use std::time::Duration;
    if !crate::live::live_tests_enabled() {
        return;
    }
    let mut rng = run_seed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let seed = (next(&mut rng) % 1000).to_string();
    let format = ["ipfix", "netflow9"][(next(&mut rng) % 2) as usize];
    let sampling = (10 + next(&mut rng) % 91).to_string();
    eprintln!("sampled daemon: seed {seed}, {format} 1:{sampling}");
    // With flow records written, or without (the bins then skip the flow table).
    let flows = next(&mut rng) % 2 == 0;
    eprintln!("sampled daemon: flow records written: {flows}");
    let mut fd = FlowDaemon::start(d, flows);
    let sent = d.join("sent.pcap");
    run_ok(&[
        "simulate",
        "-q",
        "--seed",
        &seed,
        "--subscribers",
        "300",
        "--duration",
        "300",
        "--export",
        format,
        "--sampling",
        &sampling,
        "--active-timeout",
        "10",
        "--send",
        &format!("udp://127.0.0.1:{}", fd.port),
        "--send-speed",
        "60",
        "-o",
        sent.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_secs(1));
    // The records sent: what the capture `simulate` wrote holds.
    let sent_records = {
        let an = d.join("sent");
        std::fs::create_dir(&an).unwrap();
        analyze(&sent, &an, &[])["records"].as_u64()
    };
    let series = fd.series(|records| records == sent_records);
    eprintln!("sampled daemon: exporter series {series:?}");
    fd.stop();

    let got = fd.analyze_recording(d);
    let ([records, _, parse_errors, misses, rate], [drops, late]) = series;
    assert_eq!(
        got["records"].as_u64(),
        sent_records,
        "all sent were recorded"
    );
    assert_eq!(records, sent_records, "the daemon's exporter records");
    assert_eq!(parse_errors, Some(0));
    assert_eq!(misses, Some(0), "template misses");
    assert_eq!(rate.map(|r| r.to_string()), Some(sampling.clone()));
    assert_eq!(drops, Some(0), "kernel drops at the flow socket");
    // Records end shortly before a paced router sends them: none comes after the hold.
    assert_eq!(late, Some(0), "late bins at the flow socket");
    assert_eq!(got["late_bins"], 0, "late bins of the recording");
    assert_eq!(got["max_sampling_rate"].to_string(), sampling);
    fd.assert_same_as_analyze(d, "sampled daemon");
    for a in burstwatch_tests::json_lines(&std::fs::read(d.join("alerts.jsonl")).unwrap()) {
        assert_eq!(a["source"]["sampling_rate"].to_string(), sampling, "{a}");
    }
}

/// Burst events in scope found and false burst alerts (but those into shared infrastructure),
/// by `eval --json` of one run.
fn scored(truth: &Path, alerts: &Path) -> (u64, u64, u64) {
    let out = run_ok(&[
        "eval",
        "--truth",
        truth.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--json",
        "-",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = r["rows"].as_array().unwrap();
    let bursts = rows.iter().filter(|k| k["expect"] == "burst");
    let (units, found) = bursts.fold((0, 0), |(u, f), k| {
        (
            u + k["units"].as_u64().unwrap(),
            f + k["detected"].as_u64().unwrap(),
        )
    });
    // Uploads into a rare address of a popular prefix are left out: under sampling the
    // prefix's other subscribers (small flows) are mostly not sampled, so it looks rare.
    let fp = r["false_positives"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "burst" && f["attributed_to"] != "decoy_shared_infra")
        .count() as u64;
    (units, found, fp)
}

/// Bursts in scope from an IPv4 subscriber, and how many an alert of the same pair found (its
/// start within the event's span +- 15 s): what NetFlow v5, which carries no IPv6, can find.
fn ipv4_bursts(truth: &Path, alerts: &Path) -> (u64, u64) {
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(truth).unwrap()).unwrap();
    let alerts = burstwatch_tests::json_lines(&std::fs::read(alerts).unwrap());
    let (mut units, mut found) = (0, 0);
    for s in t["scenarios"].as_array().unwrap() {
        let src = s["src"].as_str().unwrap();
        if s["expect"] != "burst" || src.contains(':') {
            continue;
        }
        for e in s["events"].as_array().unwrap() {
            if e["should_detect"] != true {
                continue;
            }
            units += 1;
            let (from, to) = (
                e["start_ts"].as_f64().unwrap() - 15.0,
                e["end_ts"].as_f64().unwrap() + 15.0,
            );
            if alerts.iter().any(|a| {
                a["src"] == s["src"]
                    && a["dst"] == s["dst"]
                    && (from..=to).contains(&a["start_ts"].as_f64().unwrap())
            }) {
                found += 1;
            }
        }
    }
    (units, found)
}

/// Sampled export (1:500 to 1:1000, IPFIX, NetFlow v9 or v5 with a 10 or 60 s active timeout,
/// or sFlow) of the
/// simulator's scenarios with every burst forced to 50-100 Mbit/s for 5-10 s: at least nine in
/// ten bursts are found, as in packet mode on the same traffic; the sampling gate takes out
/// candidates that a handful of samples made (counted as `bursts_uncertain`); every alert's
/// estimate times its confidence (its two-sigma lower bound) passes the 2 MB burst volume;
/// false burst alerts stay within two of packet mode's (what remains: long calls that sampling
/// cuts into clusters; uploads into shared infrastructure, not counted, see [`scored`]).
/// Parameters are drawn per run and printed.
#[test]
fn sampled_export_gates_bursts_by_their_lower_bound() {
    let mut rng = run_seed();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let seed = (next(&mut rng) % 1000).to_string();
    let format = ["ipfix", "sflow", "netflow9", "netflow5"][(next(&mut rng) % 4) as usize];
    let sampling = (500 + next(&mut rng) % 501).to_string();
    let active = ["10", "60"][(next(&mut rng) % 2) as usize];
    let rate = (50 + next(&mut rng) % 51).to_string();
    let secs = (5 + next(&mut rng) % 6).to_string();
    eprintln!(
        "sampled export: seed {seed}, {format} 1:{sampling}, active timeout {active} s, \
         bursts of {rate} Mbit/s for {secs} s"
    );
    let common = [
        "simulate",
        "-q",
        "--seed",
        &seed,
        "--subscribers",
        "600",
        "--duration",
        "400",
        "--burst-rate",
        &rate,
        "--burst-duration",
        &secs,
    ];
    let (pk_pcap, pk_truth, pk_alerts) = (
        d.join("p.pcap"),
        d.join("p.truth.json"),
        d.join("p.alerts.jsonl"),
    );
    let mut args = common.to_vec();
    args.extend(["-o", pk_pcap.to_str().unwrap()]);
    args.extend(["--truth", pk_truth.to_str().unwrap()]);
    run_ok(&args);
    run_ok(&[
        "analyze",
        "-q",
        pk_pcap.to_str().unwrap(),
        "--alerts",
        pk_alerts.to_str().unwrap(),
    ]);
    std::fs::remove_file(&pk_pcap).unwrap();
    let (mut units, mut pk_found, pk_fp) = scored(&pk_truth, &pk_alerts);
    // NetFlow v5 has no IPv6: what it can find are the IPv4 subscribers' bursts.
    let v5 = format == "netflow5";
    if v5 {
        (units, pk_found) = ipv4_bursts(&pk_truth, &pk_alerts);
    }

    let (pcap, truth) = (d.join("x.pcap"), d.join("x.truth.json"));
    let mut args = common.to_vec();
    args.extend(["-o", pcap.to_str().unwrap()]);
    args.extend(["--truth", truth.to_str().unwrap()]);
    args.extend(["--export", format, "--sampling", &sampling]);
    args.extend(["--active-timeout", active]);
    run_ok(&args);
    let got = analyze(&pcap, d, &[]);
    assert_eq!(got["max_sampling_rate"].to_string(), sampling);
    let alerts = d.join("alerts.jsonl");
    let (mut x_units, mut found, fp) = scored(&truth, &alerts);
    if v5 {
        (x_units, found) = ipv4_bursts(&truth, &alerts);
    }
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("stats.json")).unwrap()).unwrap();
    let uncertain = stats["detect"]["bursts_uncertain"].as_u64().unwrap();
    eprintln!(
        "packets: {pk_found}/{units} found, {pk_fp} false; export: {found}/{x_units} found, \
         {fp} false, {uncertain} bursts below their lower bound"
    );
    assert_eq!(x_units, units, "the same scenarios");
    assert!(units >= 10, "{units} bursts in scope");
    assert!(
        pk_found * 10 >= units * 9,
        "packet mode: {pk_found}/{units}"
    );
    assert!(found * 10 >= units * 9, "sampled export: {found}/{units}");
    assert!(uncertain > 0, "the gate took out no candidate");
    assert!(
        fp <= pk_fp + 2,
        "{fp} false burst alerts, packet mode {pk_fp}"
    );
    for a in burstwatch_tests::json_lines(&std::fs::read(&alerts).unwrap()) {
        let src = &a["source"];
        assert_eq!(src["sampling_rate"].to_string(), sampling);
        let bytes = a["bytes_out"].as_f64().unwrap();
        let confidence = src["confidence"].as_f64().unwrap();
        // The confidence is rounded to 0.001.
        assert!(
            bytes * (confidence + 0.001) >= 2e6,
            "{bytes} B at confidence {confidence}: below the gate"
        );
    }
}

/// `simulate --export ... --send udp://HOST:PORT` sends the datagrams it writes to the capture,
/// in order and paced by their export time: a collector on loopback receives exactly the UDP
/// payloads of the capture's frames.
#[test]
fn simulate_sends_the_datagrams_it_writes() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("x.pcap");
    let (port, receiver) = crate::flow_softflowd::collector(Duration::from_secs(5));
    // One simulated export (seed 5, 1:10 IPFIX) sent to `to` at `speed`, written to `out`.
    let simulate = |to: u16, speed: &str, out: &Path| {
        let to = format!("udp://127.0.0.1:{to}");
        burstwatch_tests::run(&[
            "simulate",
            "-q",
            "--seed",
            "5",
            "--subscribers",
            "300",
            "--duration",
            "60",
            "--export",
            "ipfix",
            "--sampling",
            "10",
            "--send",
            &to,
            "--send-speed",
            speed,
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let started = Instant::now();
    let sent = simulate(port, "30", &pcap);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let took = started.elapsed();
    let got: Vec<Vec<u8>> = receiver
        .join()
        .unwrap()
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    // The capture's frames: Ethernet, IPv4 and UDP headers (42 bytes), then the payload.
    let bytes = std::fs::read(&pcap).unwrap();
    let mut written = Vec::new();
    let mut times = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let word = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
        times.push(f64::from(word(0)) + f64::from(word(4)) / 1e6);
        let caplen = word(8) as usize;
        let frame = &bytes[at + 16..at + 16 + caplen];
        let udp_len = usize::from(u16::from_be_bytes([frame[38], frame[39]]));
        written.push(frame[42..34 + udp_len].to_vec());
        at += 16 + caplen;
    }
    assert!(written.len() > 10, "{} datagrams", written.len());
    assert_eq!(got.len(), written.len(), "datagrams received and written");
    assert!(got == written, "the payloads, in order");
    // Paced: the datagrams' export times span `span` seconds, sent at 30x.
    let span = times.last().unwrap() - times[0];
    assert!(
        took.as_secs_f64() >= span / 30.0 * 0.9,
        "{span:.1} s of export sent in {took:?}"
    );

    // A collector that is not there: the capture is still written whole, and what could not
    // be sent is counted and named, with a failing exit code.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let again = dir.path().join("y.pcap");
    let out = simulate(closed, "0", &again);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("datagrams not sent") && stderr.contains("refused"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&again).unwrap(), bytes, "the capture, whole");
}
