//! The daemon on a real interface: a veth pair between two network namespaces made by the test
//! (no route out), `tcpreplay` sending a simulator capture into one end, `burstwatch daemon`
//! capturing on the other, and a real Prometheus scraping the daemon over a second, management
//! veth (link-local addresses, carrying only the scrapes). Needs root (namespaces), `ip`,
//! `tcpreplay` and `prometheus`; set `BURSTWATCH_SKIP_LIVE=1` to skip on a machine without them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burstwatch_tests::prom::{check_deploy_queries, free_port, Prometheus};
use burstwatch_tests::{bin, json_lines, repo, run, run_ok};

/// Two namespaces joined by a veth pair; removed on drop, also when the test fails.
pub struct Netns {
    /// Namespace of the capturing end.
    pub cap_ns: String,
    /// Capturing interface (inside `cap_ns`).
    pub cap_if: String,
    /// Namespace of the sending end.
    pub send_ns: String,
    /// Sending interface (inside `send_ns`).
    pub send_if: String,
    /// Management link: root-namespace end.
    pub mgmt_if: String,
    /// Address of the management link's end inside `cap_ns` (the daemon's metrics bind).
    pub mgmt_addr: std::net::Ipv4Addr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// Create the pair, named after `tag`, the process id and a count of the pairs this
    /// process made: tests of one process run at once, and two of them may pass the same tag.
    pub fn new(tag: &str) -> Netns {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}{}", std::process::id(), n % 100);
        // The management links' root-namespace ends must not share an address either.
        let octet = ((std::process::id() as usize + n * 7) % 250) as u8;
        let n = Netns {
            cap_ns: format!("bw{tag}{id}c"),
            cap_if: format!("bw{tag}{id}c"),
            send_ns: format!("bw{tag}{id}s"),
            send_if: format!("bw{tag}{id}s"),
            mgmt_if: format!("bw{tag}{id}m"),
            mgmt_addr: std::net::Ipv4Addr::new(169, 254, octet, 2),
        };
        assert!(
            n.cap_if.len() <= 15,
            "interface name too long: {}",
            n.cap_if
        );
        ip(&["netns", "add", &n.cap_ns]);
        ip(&["netns", "add", &n.send_ns]);
        ip(&[
            "link", "add", &n.cap_if, "type", "veth", "peer", "name", &n.send_if,
        ]);
        ip(&["link", "set", &n.cap_if, "netns", &n.cap_ns]);
        ip(&["link", "set", &n.send_if, "netns", &n.send_ns]);
        for (ns, dev) in [(&n.cap_ns, &n.cap_if), (&n.send_ns, &n.send_if)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        // The management link: metrics only, a /30 of link-local addresses, no routes.
        let inner = format!("bw{tag}{id}n");
        ip(&[
            "link", "add", &n.mgmt_if, "type", "veth", "peer", "name", &inner,
        ]);
        ip(&["link", "set", &inner, "netns", &n.cap_ns]);
        ip(&[
            "addr",
            "add",
            &format!("169.254.{octet}.1/30"),
            "dev",
            &n.mgmt_if,
        ]);
        ip(&["link", "set", &n.mgmt_if, "up"]);
        ip(&[
            "-n",
            &n.cap_ns,
            "addr",
            "add",
            &format!("{}/30", n.mgmt_addr),
            "dev",
            &inner,
        ]);
        ip(&["-n", &n.cap_ns, "link", "set", &inner, "up"]);
        // The kernel turns a veth's carrier on asynchronously (its link watcher may take a
        // second, longer on a loaded machine); until then what is sent into it is dropped
        // silently. Wait for both ends.
        for (ns, dev) in [(&n.cap_ns, &n.cap_if), (&n.send_ns, &n.send_if)] {
            let until = Instant::now() + Duration::from_secs(20);
            loop {
                let out = Command::new("ip")
                    .args(["-n", ns, "link", "show", "dev", dev])
                    .output()
                    .unwrap();
                if String::from_utf8_lossy(&out.stdout).contains("state UP") {
                    break;
                }
                assert!(Instant::now() < until, "{dev} in {ns} did not come up");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        n
    }

    /// A command run inside `ns`.
    pub fn exec(ns: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of each veth, and so the pairs.
        for ns in [&self.cap_ns, &self.send_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.mgmt_if])
            .stderr(Stdio::null())
            .status();
    }
}

/// A child process killed on drop.
pub struct Guard(pub Option<Child>);

impl Guard {
    /// Send SIGTERM and wait (up to `limit`) for the exit status.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        let child = self.0.as_mut()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        self.wait_exit(limit)
    }

    /// Wait up to `limit` for the process to exit: its exit code (None if it did not exit in
    /// time or was killed by a signal).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let child = self.0.as_mut()?;
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if let Ok(Some(st)) = child.try_wait() {
                self.0 = None;
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether live tests can run here; panics (a failed test, not a silent pass) when they
/// cannot and were not explicitly skipped.
pub fn live_tests_enabled() -> bool {
    if std::env::var_os("BURSTWATCH_SKIP_LIVE").is_some() {
        eprintln!("BURSTWATCH_SKIP_LIVE set: live test skipped");
        return false;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let has = |p: &str| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    assert!(
        root && has("tcpreplay") && has("tcpdump") && has("ip") && has("prometheus"),
        "live tests need root, iproute2, tcpreplay, tcpdump and prometheus (or set BURSTWATCH_SKIP_LIVE=1)"
    );
    true
}

/// Start `burstwatch daemon --config cfg`, its standard error to `log`, and wait (20 s at
/// most) for its "daemon started" line.
pub fn spawn_daemon(cfg: &Path, log: &Path) -> Child {
    let child = Command::new(burstwatch_tests::bin())
        .args(["daemon", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    wait_for_log(log, "daemon started", Duration::from_secs(20));
    child
}

/// Wait until `path` contains `needle` (a log line), up to `limit`.
pub fn wait_for_log(path: &Path, needle: &str, limit: Duration) -> String {
    let until = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < until,
            "no {needle:?} in the daemon log within {limit:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A small simulator capture meant for replay five times faster than recorded: scenario
/// volumes and rates scaled by 1/20, so bursts stand out at the sped-up replay as they do in
/// the original.
pub fn live_capture(dir: &Path) -> (PathBuf, PathBuf) {
    let pcap = dir.join("live.pcap");
    let out = run(&[
        "simulate",
        "-o",
        pcap.to_str().unwrap(),
        "--seed",
        "5",
        "--subscribers",
        "40",
        "--duration",
        "300",
        "--scenario-scale",
        "0.05",
        "--activity-rate",
        "0.002",
        "-q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth = pcap.with_extension("truth.json");
    (pcap, truth)
}

/// Daemon settings for the scaled capture (thresholds scaled like the scenarios).
pub fn daemon_config(dir: &Path, iface: &str, extra: &str) -> PathBuf {
    let cfg = dir.join("burstwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detect]\nburst_min_bytes = 100000\nburst_rate_floor_bps = 1000000\n\
             alert_hold_seconds = 2\n\n[daemon]\ninterfaces = [\"{iface}\"]\n\
             # The kernel's own IPv6 multicast (MLD, router solicitations) is not part of the replay.\n\
             filter = \"not ip6 multicast\"\nsnaplen = 262144\n\
             flows_file = \"flows.jsonl\"\nalerts_file = \"alerts.jsonl\"\nstate_file = \"state.json\"\n{extra}"
        ),
    )
    .unwrap();
    cfg
}

/// Start the daemon in the capturing namespace; stderr goes to `log`.
pub fn start_daemon(net: &Netns, cfg: &Path, log: &Path) -> Guard {
    let child = Netns::exec(&net.cap_ns, &bin())
        .args(["daemon", "--config", cfg.to_str().unwrap()])
        .env("BURSTWATCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start the daemon");
    Guard(Some(child))
}

/// Write a config for the daemon on `lo` into `dir`: a filter that matches nothing of the
/// tests, a free metrics port on 127.0.0.1, state in `state.json`, and `extra` `[daemon]` lines.
pub fn local_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("burstwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ninterfaces = [\"lo\"]\nfilter = \"udp port 9\"\n\
             metrics_bind = \"127.0.0.1:{}\"\nstate_file = \"state.json\"\n{extra}",
            free_port()
        ),
    )
    .unwrap();
    cfg
}

/// Start the real daemon with `cfg` in this network namespace (tests on `lo`), its log at info
/// level in `log`, in `cfg`'s folder (relative paths in the config are taken from there).
pub fn start_local_daemon(cfg: &Path, log: &Path) -> Guard {
    let child = local_daemon_command(cfg, log)
        .spawn()
        .expect("start the daemon");
    Guard(Some(child))
}

/// The command [`start_local_daemon`] runs, for a test that adds to its environment.
pub fn local_daemon_command(cfg: &Path, log: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(["daemon", "--config", cfg.to_str().unwrap()])
        .current_dir(cfg.parent().unwrap())
        .env("BURSTWATCH_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

/// Replay `pcap` into the sending end at `multiplier` times its own pace; the packets
/// tcpreplay reports as sent.
pub fn replay(net: &Netns, pcap: &Path, multiplier: &str) -> u64 {
    replay_with(net, pcap, &["--multiplier", multiplier])
}

/// Replay `pcap` into the sending end with tcpreplay `args`; the packets it reports as sent
/// (it must report none failed).
pub fn replay_with(net: &Netns, pcap: &Path, args: &[&str]) -> u64 {
    let out = Netns::exec(&net.send_ns, Path::new("tcpreplay"))
        .args(["-i", &net.send_if])
        .args(args)
        .arg(pcap)
        .output()
        .expect("run tcpreplay");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "tcpreplay: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|n| n.trim().parse().ok())
    };
    assert_eq!(
        field("Failed packets:"),
        Some(0),
        "tcpreplay failed to send some packets:\n{text}"
    );
    field("Successful packets:").expect("tcpreplay's packet count")
}

/// Record what reaches the capturing end (pcap, nanosecond timestamps) until terminated.
pub fn record(net: &Netns, out: &Path, log: &Path) -> Guard {
    let child = Netns::exec(&net.cap_ns, Path::new("tcpdump"))
        .args(["-i", &net.cap_if, "-n", "-s", "262144", "-B", "65536"])
        .args(["--time-stamp-precision=nano", "-Z", "root", "-w"])
        .arg(out)
        .arg("not ip6 multicast")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("run tcpdump");
    let guard = Guard(Some(child));
    wait_for_log(log, "listening on", Duration::from_secs(20));
    guard
}

/// Packets per unordered 5-tuple, summed over flow records.
pub fn per_conversation(jsonl: &[u8]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in json_lines(jsonl) {
        let mut ends = [
            format!("{}:{}", r["src"], r["sport"]),
            format!("{}:{}", r["dst"], r["dport"]),
        ];
        ends.sort();
        let key = format!("{} {} {}", r["proto"], ends[0], ends[1]);
        *m.entry(key).or_default() +=
            r["packets_fwd"].as_u64().unwrap() + r["packets_rev"].as_u64().unwrap();
    }
    m
}

#[test]
fn daemon_captures_every_packet_raises_the_injected_bursts_and_keeps_its_learning() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pcap, truth) = live_capture(dir.path());
    let net = Netns::new("d");
    let port = free_port();
    let target = std::net::SocketAddr::from((net.mgmt_addr, port));
    // Two engine workers (host shards) fed by two AF_PACKET rings in one fanout group; the
    // restart below runs one worker and libpcap, from the same state.
    let cfg = daemon_config(
        dir.path(),
        &net.cap_if,
        &format!(
            "metrics_bind = \"{target}\"\nworkers = 2\nbackend = \"afpacket\"\ncapture_threads = 2\n"
        ),
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&net, &cfg, &log);
    wait_for_log(&log, "capturing", Duration::from_secs(20));
    // With the repository's rules: this Prometheus watches the whole run, so the burst rule's
    // five-minute increase sees the burst alerts arrive.
    let prom = Prometheus::start(
        &[target.to_string()],
        &[repo().join("deploy/prometheus/rules.yml")],
    )
    .unwrap();
    // tcpdump records what reached the capturing end, with the same kernel timestamps the
    // daemon gets: replayed in real time, the traffic's shape carries the sender's jitter.
    let recording = dir.path().join("received.pcap");
    let mut tcpdump = record(&net, &recording, &dir.path().join("tcpdump.log"));
    let sent = replay(&net, &pcap, "5");
    // Held alerts go out once packet time (following the wall clock on an idle link) passes.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        tcpdump.terminate(Duration::from_secs(10)),
        Some(0),
        "tcpdump"
    );

    // Through Prometheus: the packet counter equals what tcpreplay sent, bursts are counted.
    let got = prom
        .query_until_data(
            &format!("burstwatch_interface_packets_total == {sent}"),
            Duration::from_secs(30),
        )
        .unwrap();
    assert_eq!(
        got.len(),
        1,
        "interface packet counter equals the {sent} replayed"
    );
    let drops = prom.query("sum(burstwatch_capture_drops_total)").unwrap();
    assert_eq!(drops.first().map(|d| d.1), Some(0.0), "no capture drops");

    // SIGHUP: a good file is taken, a bad one is refused (the daemon keeps running).
    let hup = |d: &Guard| {
        let pid = d.0.as_ref().unwrap().id().to_string();
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
    };
    hup(&daemon);
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{good}\n[flow]\nmax_flows = -1\n")).unwrap();
    hup(&daemon);
    // A rejection logs one line per error: wait for the one naming the key.
    let text = wait_for_log(&log, "flow.max_flows", Duration::from_secs(10));
    assert!(
        text.lines()
            .any(|l| l.contains("configuration rejected") && l.contains("flow.max_flows")),
        "the rejection names the key:\n{text}"
    );
    std::fs::write(&cfg, good).unwrap();
    prom.query_until_data(
        "burstwatch_config_reloads_total{result=\"ok\"} == 1 and on() burstwatch_config_reloads_total{result=\"error\"} == 1",
        Duration::from_secs(20),
    )
    .unwrap();

    // Every Grafana query and every alerting rule returns data against the live daemon, and
    // promtool finds the scrape clean.
    // The flow-export rows need `flow_listen` and sFlow agents (tests/e2e/prometheus.rs
    // checks them on a synthetic snapshot, tests/e2e/flow_export.rs on a live exporter).
    let report = check_deploy_queries(
        target,
        &repo(),
        Duration::from_secs(30),
        &["burstwatch_flow_export_", "burstwatch_sflow_"],
    )
    .unwrap();
    assert!(
        report.failed.is_empty(),
        "queries without data: {:#?}",
        report.failed
    );
    assert_eq!(report.lint, None, "promtool check metrics");
    // The Prometheus `check_deploy_queries` started came after the replay: where every held
    // burst alert went out before its first scrapes (a loaded machine), it sees no increase.
    // The one that watched the run evaluates the same rule.
    let burst_rule = prom
        .rules()
        .unwrap()
        .into_iter()
        .find(|r| r.name == "BurstwatchBurstAlert")
        .expect("the burst rule is loaded");
    let fires_over_the_run = !prom.query(&burst_rule.expr).unwrap().is_empty();
    assert!(
        fires_over_the_run || report.firing.iter().any(|r| r.contains("Burst")),
        "the burst alerting rule fires: {:?}",
        report.firing
    );
    let alerted = prom
        .query("sum(burstwatch_alerts_total{kind=\"burst\"})")
        .unwrap();
    assert_eq!(
        daemon.terminate(Duration::from_secs(30)),
        Some(0),
        "clean exit on SIGTERM"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("learned state saved"), "{text}");
    // Two capture threads' batches meet in the worker out of order: never a clock step.
    assert!(!text.contains("stepped back"), "{text}");

    // Nothing lost: the daemon's flow records count every replayed packet, per conversation
    // exactly as `analyze` does on the same capture.
    let live = per_conversation(&std::fs::read(dir.path().join("flows.jsonl")).unwrap());
    let offline = run(&["analyze", pcap.to_str().unwrap(), "--flows", "-", "-q"]);
    let offline = per_conversation(&offline.stdout);
    assert_eq!(
        live.values().sum::<u64>(),
        sent,
        "every replayed packet counted"
    );
    assert_eq!(live, offline, "same packets per conversation as analyze");

    // Every injected burst scenario raised a burst alert in the JSONL sink.
    let alerts = json_lines(&std::fs::read(dir.path().join("alerts.jsonl")).unwrap());
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(&truth).unwrap()).unwrap();
    let bursts: Vec<_> = truth["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["expect"] == "burst")
        .collect();
    // The simulator's bursts are drawn at random, some below this config's (scaled) gates:
    // those `analyze` finds in the capture that was replayed are the ones to find live.
    let source_alerts = dir.path().join("source-alerts.jsonl");
    run_ok(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--alerts",
        source_alerts.to_str().unwrap(),
        "-q",
    ]);
    let source_missed = bursts_without_alert(
        &bursts,
        &json_lines(&std::fs::read(&source_alerts).unwrap()),
    );
    let all_bursts = bursts.len();
    let bursts: Vec<_> = bursts
        .into_iter()
        .filter(|s| {
            let id = format!("{:?}", s["id"].as_str().unwrap_or_default());
            !source_missed.iter().any(|m| m.starts_with(&id))
        })
        .collect();
    assert!(
        bursts.len() >= 4,
        "the capture carries burst scenarios analyze finds: {} of {all_bursts}",
        bursts.len()
    );
    let burst_lines = alerts.iter().filter(|a| a["kind"] == "burst").count();
    assert_eq!(
        alerted.first().map(|a| a.1),
        Some(burst_lines as f64),
        "burst alerts in the metrics equal those in the JSONL sink"
    );
    let missed = bursts_without_alert(&bursts, &alerts);
    // Replayed in real time (sped up), packet times carry the sender's and receiver's jitter,
    // unlike a capture file: a burst the sender stretched below the burst rate is not in what
    // arrived. `analyze` on the recording of what arrived tells those apart: the daemon must
    // alert on every burst that is there (one miss in the dozen tolerated, as for a capture),
    // and at most a quarter may have been lost to the sender's jitter.
    let rec_alerts = dir.path().join("received-alerts.jsonl");
    run_ok(&[
        "analyze",
        recording.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--alerts",
        rec_alerts.to_str().unwrap(),
        "-q",
    ]);
    let offline_alerts = json_lines(&std::fs::read(&rec_alerts).unwrap());
    let not_received = bursts_without_alert(&bursts, &offline_alerts);
    let unexplained: Vec<&String> = missed
        .iter()
        .filter(|m| !not_received.contains(m))
        .collect();
    assert!(
        unexplained.len() <= 1,
        "burst scenarios without a burst alert although the received packets carry them: \
         {unexplained:?} (all misses: {missed:?})"
    );
    assert!(
        not_received.len() <= bursts.len() / 4,
        "the replay lost the shape of too many bursts: {not_received:?}"
    );

    // A restart restores what was learned.
    // A header line (format, length, checksum), then the state as JSON.
    let text = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    assert!(header.starts_with("burstwatch-state "), "{header}");
    let state: serde_json::Value = serde_json::from_str(body).unwrap();
    let hosts = state["hosts"].as_array().unwrap().len();
    // Every home address analyze tracks on the same capture (each subscriber, and the IPv6
    // address of those the scenarios drew with IPv6 as well).
    let stats_file = dir.path().join("offline-stats.json");
    run_ok(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--stats",
        stats_file.to_str().unwrap(),
        "-q",
    ]);
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats_file).unwrap()).unwrap();
    let tracked = stats["detect"]["hosts"].as_u64().unwrap() as usize;
    assert!(tracked >= 40, "every subscriber is tracked: {tracked}");
    assert_eq!(hosts, tracked, "every subscriber's baseline saved");
    daemon_config(
        dir.path(),
        &net.cap_if,
        &format!("metrics_bind = \"{target}\"\nworkers = 1\n"),
    );
    let log2 = dir.path().join("daemon2.log");
    let mut again = start_daemon(&net, &cfg, &log2);
    let text = wait_for_log(&log2, "learned state restored", Duration::from_secs(20));
    assert!(text.contains(&format!("hosts={hosts}")), "{text}");
    // SIGTERM before the daemon has its handlers (it reserves its tables first) would kill it.
    wait_for_log(&log2, "daemon started", Duration::from_secs(20));
    assert_eq!(again.terminate(Duration::from_secs(30)), Some(0));
}

/// Status lines of every thread of a process (`Uid`, `CapEff`, ...).
pub fn thread_status(pid: u32, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        if let Some(line) = status.lines().find(|l| l.starts_with(key)) {
            out.push(
                line.split_whitespace()
                    .skip(1)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
    }
    out
}

#[test]
fn daemon_gives_up_root_once_its_captures_are_open() {
    use std::os::unix::fs::PermissionsExt as _;
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The unprivileged account writes flows, alerts and the state here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let net = Netns::new("u");
    // A pseudonymisation key only root can read: the daemon reads it before it gives up root.
    let key = dir.path().join("case.key");
    burstwatch_tests::write_test_key(&key);
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cfg = daemon_config(
        dir.path(),
        &net.cap_if,
        "user = \"nobody\"\nworkers = 2\n\n[privacy]\nkey_file = \"case.key\"\n",
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&net, &cfg, &log);
    wait_for_log(&log, "daemon started", Duration::from_secs(20));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("running unprivileged"), "{text}");
    let pid = daemon.0.as_ref().unwrap().id();
    // Every thread: user nobody (65534), and of root's powers only CAP_NET_ADMIN (12) and
    // CAP_NET_RAW (13), bits 0x3000.
    let uids = thread_status(pid, "Uid:");
    assert!(
        uids.len() >= 5,
        "capture, worker, shard, output threads: {uids:?}"
    );
    assert!(
        uids.iter().all(|u| u == "65534 65534 65534 65534"),
        "{uids:?}"
    );
    for key in ["CapEff:", "CapPrm:"] {
        let caps = thread_status(pid, key);
        assert!(
            caps.iter().all(|c| c == "0000000000003000"),
            "{key} {caps:?}"
        );
    }
    assert!(thread_status(pid, "CapInh:")
        .iter()
        .all(|c| c == "0000000000000000"));
    // Nothing to regain either: the bounding set holds the same two, and no_new_privs is set
    // (no set-user-id program or file capability gives anything back).
    let bounding = thread_status(pid, "CapBnd:");
    assert!(
        bounding.iter().all(|c| c == "0000000000003000"),
        "{bounding:?}"
    );
    let nnp = thread_status(pid, "NoNewPrivs:");
    assert!(nnp.len() >= 5 && nnp.iter().all(|c| c == "1"), "{nnp:?}");
    // It still captures: the replayed packets are counted in its flows, and it writes its
    // state as that user on the way out.
    let sent = replay(&net, &repo().join("tests/data/sample.pcap"), "10");
    assert!(sent > 100);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let flows = std::fs::read(dir.path().join("flows.jsonl")).unwrap();
    let counted: u64 = per_conversation(&flows).values().sum();
    assert!(counted > 100, "{counted} packets in flows of {sent} sent");
    // The subscriber of the sample (10.0.2.15) is pseudonymised in the flow records; the key
    // holder maps its pseudonym back.
    let text = String::from_utf8(flows).unwrap();
    assert!(!text.contains("\"10.0.2.15\""), "home address in clear");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.contains("192.150.187.43")).unwrap()).unwrap();
    let pseudonym = [&first["src"], &first["dst"]]
        .into_iter()
        .filter_map(|v| v.as_str())
        .find(|a| *a != "192.150.187.43")
        .unwrap()
        .to_string();
    let reveal = Command::new(bin())
        .args(["reveal", "--key", key.to_str().unwrap(), &pseudonym])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&reveal.stdout).trim(),
        format!("{pseudonym} 10.0.2.15")
    );
    let state = std::fs::metadata(dir.path().join("state.json")).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        state.uid(),
        65534,
        "state written by the unprivileged account"
    );
}

/// The burst scenarios (as `id (src -> dst)`) that no burst alert names.
fn bursts_without_alert(
    bursts: &[&serde_json::Value],
    alerts: &[serde_json::Value],
) -> Vec<String> {
    bursts
        .iter()
        .filter(|s| {
            !alerts
                .iter()
                .any(|a| a["kind"] == "burst" && a["src"] == s["src"] && a["dst"] == s["dst"])
        })
        .map(|s| format!("{} ({} -> {})", s["id"], s["src"], s["dst"]))
        .collect()
}
