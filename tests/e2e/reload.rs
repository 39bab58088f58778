//! SIGHUP on a running daemon (veth between test namespaces, as in `live.rs`): the enrich
//! databases are reopened and the next alert carries the new enrichment; a changed key that
//! needs a restart is named in the log, one line, and keeps its running value; a bad file is
//! refused with its key and the daemon runs on.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use burstwatch_tests::{json_lines, repo};

use crate::crafted::{frame, pcap};
use crate::live::{live_tests_enabled, replay, start_daemon, wait_for_log, Netns};

/// `from` sends about 420 kB to `to`:9001 within a second (a burst at the test thresholds).
fn burst(dir: &Path, name: &str, from: [u8; 4], to: [u8; 4]) -> std::path::PathBuf {
    let t0 = 1_767_225_600u32;
    let recs: Vec<_> = (0..300u32)
        .map(|i| {
            let us = i * 3000;
            (t0, us, frame(from, to, 40_000, 9001, 1400))
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, pcap(&recs)).unwrap();
    path
}

/// The test config; `filter` is the capture filter (the kernel's own IPv6 multicast is not
/// part of the replay).
fn config(cfg: &Path, iface: &str, extra_daemon: &str, enrich: &str) {
    config_with(cfg, iface, "not ip6 multicast", extra_daemon, enrich);
}

fn config_with(cfg: &Path, iface: &str, filter: &str, extra_daemon: &str, enrich: &str) {
    let extra_daemon = format!("filter = \"{filter}\"\n{extra_daemon}");
    let data = repo().join("tests/data");
    std::fs::write(
        cfg,
        format!(
            "[detect]\nburst_min_bytes = 100000\nburst_rate_floor_bps = 200000\n\
             burst_quiet_seconds = 1\nalert_hold_seconds = 1\nalert_min_score = 0.0\n\
             lookback_seconds = 1\n\n\
             [daemon]\ninterfaces = [\"{iface}\"]\nalerts_file = \"alerts.jsonl\"\n{extra_daemon}\n\
             [enrich]\n{}\n",
            enrich.replace("DATA", &data.display().to_string())
        ),
    )
    .unwrap();
}

/// Wait until the alerts file holds `n` alerts; return them (or fail with the daemon's log).
fn alerts(path: &Path, log: &Path, n: usize, limit: Duration) -> Vec<serde_json::Value> {
    let until = Instant::now() + limit;
    loop {
        let got = json_lines(&std::fs::read(path).unwrap_or_default());
        if got.len() >= n {
            return got;
        }
        assert!(
            Instant::now() < until,
            "{} alert(s) of {n} within {limit:?}; daemon log:\n{}",
            got.len(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn hup(pid: u32) {
    let st = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sighup_reopens_enrich_databases_and_names_each_key_that_needs_a_restart() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let net = Netns::new("h");
    let cfg = d.join("burstwatch.toml");
    config(
        &cfg,
        &net.cap_if,
        "workers = 1",
        "asn_database = \"DATA/test-asn.mmdb\"",
    );
    let log = d.join("daemon.log");
    let mut daemon = start_daemon(&net, &cfg, &log);
    wait_for_log(&log, "capturing", Duration::from_secs(20));
    let pid = daemon.0.as_ref().unwrap().id();

    // Before: ASN database only.
    replay(
        &net,
        &burst(d, "a.pcap", [10, 0, 0, 5], [192, 0, 2, 9]),
        "1",
    );
    let first = alerts(&d.join("alerts.jsonl"), &log, 1, Duration::from_secs(30));
    assert_eq!(first[0]["endpoint"]["asn"], 64500, "{}", first[0]);
    assert!(
        first[0]["endpoint"].get("country").is_none(),
        "{}",
        first[0]
    );

    // A bad file is refused, naming the key; the daemon runs on with what it has.
    config_with(
        &cfg,
        &net.cap_if,
        "tcp port",
        "workers = 1",
        "asn_database = \"DATA/test-asn.mmdb\"",
    );
    hup(pid);
    wait_for_log(&log, "configuration rejected", Duration::from_secs(10));
    let text = wait_for_log(&log, "daemon.filter", Duration::from_secs(5));
    assert!(text.contains("cannot compile"), "{text}");

    // Swap the ASN database for the country one, and change a restart-only key.
    config(
        &cfg,
        &net.cap_if,
        "workers = 2",
        "country_database = \"DATA/test-country.mmdb\"",
    );
    hup(pid);
    let text = wait_for_log(
        &log,
        "thresholds and enrich databases reloaded",
        Duration::from_secs(10),
    );
    let restart_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("read at start only"))
        .collect();
    assert_eq!(restart_lines.len(), 1, "{text}");
    assert!(
        restart_lines[0].contains("daemon.workers changed")
            && restart_lines[0].contains("running with 1"),
        "{text}"
    );

    // After: the next alert is enriched from the country database, and not from the ASN one.
    replay(
        &net,
        &burst(d, "b.pcap", [10, 0, 0, 6], [192, 0, 2, 10]),
        "1",
    );
    let both = alerts(&d.join("alerts.jsonl"), &log, 2, Duration::from_secs(30));
    let second = both
        .iter()
        .find(|a| a["endpoint"]["country"] == "XA")
        .unwrap_or_else(|| panic!("no alert enriched by the reloaded database: {both:?}"));
    assert!(second["endpoint"].get("asn").is_none(), "{second}");
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
}
