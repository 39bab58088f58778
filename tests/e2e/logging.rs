//! The log: `--log-format json`, `--log-level` and `BURSTWATCH_LOG`, the daemon's start line
//! and its warning without alert sinks, one line per alert (pseudonymised like the alerts),
//! and the transit share: a warning naming `detect.home_nets` when most traffic has neither
//! side in the home networks, in the daemon and in `analyze`.
//!
//! The daemon runs on `lo` (a filter that matches nothing of the tests) or, fed by tcpreplay,
//! on a veth between two test namespaces (`BURSTWATCH_SKIP_LIVE=1` skips those).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burstwatch_tests::prom::{free_port, http_get};
use burstwatch_tests::{bin, json_lines, run};

use crate::crafted::{burst_capture, frame, pcap};
use crate::live::{live_tests_enabled, local_config, replay_with, wait_for_log, Guard, Netns};

/// Run the daemon on `lo` with `cfg`, the global `args` and `BURSTWATCH_LOG` = `env` (unset when
/// `None`) until `needle` is in its log, stop it (exit 0) and return the log.
fn daemon_log(cfg: &Path, args: &[&str], env: Option<&str>, needle: &str) -> String {
    let log = cfg.with_file_name("daemon.log");
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .args(["daemon", "--config", cfg.to_str().unwrap()])
        .current_dir(cfg.parent().unwrap())
        .env_remove("BURSTWATCH_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if let Some(v) = env {
        cmd.env("BURSTWATCH_LOG", v);
    }
    let mut daemon = Guard(Some(cmd.spawn().expect("start the daemon")));
    wait_for_log(&log, needle, Duration::from_secs(20));
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    std::fs::read_to_string(&log).unwrap()
}

const NO_SINK: &str = "no alert sink configured";

#[test]
fn the_daemon_says_what_it_runs_with_and_warns_without_an_alert_sink() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = local_config(dir.path(), "");
    // No option, no BURSTWATCH_LOG: the daemon logs at info.
    let text = daemon_log(&cfg, &[], None, "capturing");
    let start = text
        .lines()
        .find(|l| l.contains("burstwatch daemon starting"))
        .unwrap_or_else(|| panic!("no start line:\n{text}"));
    let config = std::fs::canonicalize(&cfg).unwrap();
    for part in [
        &format!("version={}", env!("CARGO_PKG_VERSION")),
        &format!("config={}", config.display()),
        "interfaces=lo",
        "sinks=none",
        "home_nets=10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7",
    ] {
        assert!(start.contains(part), "{part} not in {start}");
    }
    assert!(
        text.lines()
            .any(|l| l.contains(" WARN ") && l.contains(NO_SINK)),
        "{text}"
    );
    assert!(!text.contains(" DEBUG "), "{text}");
    // With a sink: named, and no warning.
    let dir = tempfile::tempdir().unwrap();
    let cfg = local_config(dir.path(), "alerts_file = \"alerts.jsonl\"\n");
    let text = daemon_log(&cfg, &[], None, "capturing");
    assert!(text.contains("sinks=file"), "{text}");
    assert!(!text.contains(NO_SINK), "{text}");
}

#[test]
fn check_config_names_the_sinks_and_warns_without_one_even_with_strict_passing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[daemon]\ninterfaces = [\"lo\"]\n").unwrap();
    for extra in [&[][..], &["--strict"][..]] {
        let mut args = vec!["check-config", cfg.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains(NO_SINK), "{err}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("alert sinks: none"));
    }
    let alerts = dir.path().join("alerts.jsonl");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ninterfaces = [\"lo\"]\nalerts_file = {:?}\nalerts_stdout = true\n",
            alerts.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = run(&["check-config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains(NO_SINK), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("alert sinks: file, stdout"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn json_log_lines_parse_and_the_level_options_filter_as_documented() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = local_config(dir.path(), "");
    // JSON, at debug level: every line one object with the documented keys.
    let text = daemon_log(
        &cfg,
        &["--log-format", "json", "--log-level", "debug"],
        None,
        "capturing",
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 5, "{text}");
    for l in &lines {
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(l.get(key).is_some(), "no {key} in {l}");
        }
        assert!(l["fields"]["message"].is_string(), "{l}");
    }
    let start = lines
        .iter()
        .find(|l| l["fields"]["message"] == "burstwatch daemon starting")
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(start["level"], "INFO");
    assert_eq!(start["fields"]["sinks"], "none");
    assert!(start["fields"]["home_nets"]
        .as_str()
        .is_some_and(|h| h.contains("fc00::/7")));
    assert!(lines.iter().any(|l| l["level"] == "DEBUG"), "{text}");
    assert!(lines.iter().any(
        |l| l["level"] == "WARN" && l["fields"]["message"].as_str().unwrap().contains(NO_SINK)
    ));

    // --log-level warn: warnings, no info (the stop lines are info too).
    let text = daemon_log(&cfg, &["--log-level", "warn"], None, NO_SINK);
    assert!(!text.contains(" INFO "), "{text}");
    assert!(text.contains(" WARN "), "{text}");
    // BURSTWATCH_LOG applies on top: its bare level wins over --log-level...
    let text = daemon_log(&cfg, &["--log-level", "warn"], Some("debug"), "capturing");
    assert!(text.contains(" DEBUG "), "{text}");
    // ...and a target directive refines it: info for the daemon shell, warn elsewhere.
    let text = daemon_log(
        &cfg,
        &["--log-level", "warn"],
        Some("burstwatch_daemon::capture=info"),
        "capturing",
    );
    assert!(!text.contains("burstwatch daemon starting"), "{text}");
    // A bad BURSTWATCH_LOG is named and ignored.
    let text = daemon_log(&cfg, &[], Some("burstwatch=loud"), "capturing");
    assert!(
        text.contains("BURSTWATCH_LOG") && text.contains("burstwatch daemon starting"),
        "{text}"
    );
}

#[test]
fn analyze_is_quiet_by_default_prints_the_transit_share_and_warns_when_most_is_transit() {
    let dir = tempfile::tempdir().unwrap();
    // 198.18.0.1 and 198.19.0.1 talk: in none of the default home networks.
    let recs: Vec<_> = (0..400u32)
        .map(|i| {
            let (a, b) = ([198, 18, 0, 1], [198, 19, 0, 1]);
            let f = if i % 2 == 0 {
                frame(a, b, 40_000, 5000, 500)
            } else {
                frame(b, a, 5000, 40_000, 100)
            };
            (1_767_225_600 + i / 100, (i % 100) * 10_000, f)
        })
        .collect();
    let cap = dir.path().join("transit.pcap");
    std::fs::write(&cap, pcap(&recs)).unwrap();
    let stats = dir.path().join("stats.json");
    let analyze = |extra: &[&str]| {
        let mut args = vec![
            "analyze",
            cap.to_str().unwrap(),
            "--flows",
            "/dev/null",
            "--stats",
            stats.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0));
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        (String::from_utf8_lossy(&out.stderr).into_owned(), s)
    };
    let (err, s) = analyze(&[]);
    assert!(
        err.contains(
            "transit (neither side in the home networks, not scored): 100.0 % of 120000 IP bytes"
        ),
        "{err}"
    );
    assert!(
        err.contains("WARN")
            && err
                .contains("detect.home_nets (or --home-net) likely does not cover the subscribers"),
        "{err}"
    );
    assert_eq!(s["detect"]["bytes"]["transit"], 120_000);
    // Quiet by default: no info lines on the terminal.
    assert!(!err.contains(" INFO "), "{err}");
    // -q drops the summary, not the warning.
    let (err, _) = analyze(&["-q"]);
    assert!(
        err.contains("likely does not cover") && !err.contains("transit (neither side"),
        "{err}"
    );
    // Home networks that cover a side: no transit, no warning.
    let (err, s) = analyze(&["--home-net", "198.18.0.0/16"]);
    assert!(
        err.contains(
            "transit (neither side in the home networks, not scored): 0.0 % of 120000 IP bytes"
        ),
        "{err}"
    );
    assert!(!err.contains("likely does not cover"), "{err}");
    assert_eq!(s["detect"]["bytes"]["transit"], 0);
    assert_eq!(s["detect"]["bytes"]["up"], 100_000);
}

/// A sample of the exporter's text, 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Start the daemon in the capturing namespace at debug level (no `BURSTWATCH_LOG`), with
/// `detect` and `extra` daemon lines, metrics on the management link; its log in `dir`.
fn start_in_netns(
    net: &Netns,
    dir: &Path,
    detect: &str,
    extra: &str,
) -> (Guard, PathBuf, std::net::SocketAddr) {
    let target = std::net::SocketAddr::from((net.mgmt_addr, free_port()));
    let cfg = dir.join("burstwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[detect]\n{detect}\n[daemon]\ninterfaces = [\"{}\"]\nfilter = \"udp\"\n\
             metrics_bind = \"{target}\"\n{extra}",
            net.cap_if
        ),
    )
    .unwrap();
    let log = dir.join("daemon.log");
    let child = Netns::exec(&net.cap_ns, &bin())
        .args(["--log-level", "debug", "daemon", "--config"])
        .arg(&cfg)
        .current_dir(dir)
        .env_remove("BURSTWATCH_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start the daemon");
    let guard = Guard(Some(child));
    wait_for_log(&log, "capturing", Duration::from_secs(20));
    (guard, log, target)
}

/// The exporter's text once `done` holds for it, within 20 s.
fn scrape_until(target: std::net::SocketAddr, done: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let text = http_get(target, "/metrics")
            .map(|r| r.1)
            .unwrap_or_default();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < until, "metrics never satisfied:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_daemon_exports_transit_and_warns_when_home_nets_miss_the_traffic() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // 1000 UDP packets between 198.18.0.1 and 198.19.0.1, replayed 60 times: 60 000 packets,
    // past the 50 000 at which a period is judged before its minute.
    let recs: Vec<_> = (0..1000u32)
        .map(|i| {
            let (a, b) = ([198, 18, 0, 1], [198, 19, 0, 1]);
            let f = if i % 2 == 0 {
                frame(a, b, 40_000, 5000, 200)
            } else {
                frame(b, a, 5000, 40_000, 100)
            };
            (1_767_225_600, i * 100, f)
        })
        .collect();
    let cap = dir.path().join("transit.pcap");
    std::fs::write(&cap, pcap(&recs)).unwrap();
    let replay = |net: &Netns| {
        replay_with(net, &cap, &["--loop", "60", "--pps", "40000"]);
    };
    let net = Netns::new("t");
    let transit_bytes = r#"burstwatch_bytes_total{direction="transit"}"#;
    let up_bytes = r#"burstwatch_bytes_total{direction="up"}"#;
    // Home networks that miss both sides: all transit, a warning naming the key.
    let (run_dir, covered_dir) = (dir.path().join("miss"), dir.path().join("cover"));
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::create_dir_all(&covered_dir).unwrap();
    let (mut daemon, log, target) =
        start_in_netns(&net, &run_dir, "home_nets = [\"10.0.0.0/8\"]", "");
    replay(&net);
    let text = wait_for_log(
        &log,
        "likely does not cover the subscribers",
        Duration::from_secs(30),
    );
    let warning = text
        .lines()
        .find(|l| l.contains("likely does not cover"))
        .unwrap();
    assert!(
        warning.contains(" WARN ") && warning.contains("set detect.home_nets"),
        "{warning}"
    );
    let metrics = scrape_until(target, |t| sample(t, transit_bytes) > 0.0);
    assert_eq!(sample(&metrics, up_bytes), 0.0);
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    // Home networks that cover the sender: nothing in transit, no warning, once judged.
    let (mut daemon, log, target) =
        start_in_netns(&net, &covered_dir, "home_nets = [\"198.18.0.0/16\"]", "");
    replay(&net);
    let text = wait_for_log(&log, "transit share judged", Duration::from_secs(30));
    let metrics = scrape_until(target, |t| sample(t, up_bytes) > 0.0);
    assert_eq!(sample(&metrics, transit_bytes), 0.0, "{metrics}");
    assert!(!text.contains("likely does not cover"), "{text}");
    assert!(text.contains("transit_share=0.000"), "{text}");
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
}

#[test]
fn each_alert_is_one_info_line_with_the_addresses_its_outputs_show() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A subscriber 10.0.0.5 sends 3 MB to 192.0.2.9:9001 in two seconds; the subscriber is
    // pseudonymised in every output, this log line included.
    let cap = burst_capture(dir.path());
    let key = dir.path().join("case.key");
    burstwatch_tests::write_test_key(&key);
    let net = Netns::new("a");
    let (mut daemon, log, _) = start_in_netns(
        &net,
        dir.path(),
        "home_nets = [\"10.0.0.0/8\"]\nlookback_seconds = 1\nalert_hold_seconds = 1\n",
        "alerts_file = \"alerts.jsonl\"\n\n[privacy]\nkey_file = \"case.key\"\n",
    );
    replay_with(&net, &cap, &["--multiplier", "1"]);
    let text = wait_for_log(&log, "alert burst", Duration::from_secs(30));
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let line = text.lines().find(|l| l.contains("alert burst")).unwrap();
    let alerts = json_lines(&std::fs::read(dir.path().join("alerts.jsonl")).unwrap());
    assert_eq!(alerts.len(), 1, "{text}");
    let a = &alerts[0];
    let src = a["src"].as_str().unwrap();
    assert_ne!(src, "10.0.0.5");
    assert!(!line.contains("10.0.0.5"), "home address in clear: {line}");
    for part in [
        " INFO ".to_string(),
        format!("subscriber={src}"),
        "endpoint=192.0.2.9:9001".to_string(),
        format!("severity={}", a["severity"].as_str().unwrap()),
        format!("id={}", a["id"].as_str().unwrap()),
    ] {
        assert!(line.contains(&part), "{part} not in {line}");
    }
}
