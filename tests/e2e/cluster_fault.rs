//! The daemon with a shared store that dies: Redis is killed for 30 s while traffic is replayed
//! into the daemon (on a veth, as in `live.rs`). The daemon must not crash nor stall, alerts go
//! on marked `rarity_certain: false` without a global count, the cluster metrics show the
//! errors and the backlog, and the backlog is drained within 5 s of Redis's restart.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use burstwatch_tests::json_lines;
use burstwatch_tests::prom::{free_port, http_get};

use crate::alerts::check_schema;
use crate::cluster::Redis;
use crate::live::{
    daemon_config, live_capture, live_tests_enabled, replay, start_daemon, wait_for_log, Netns,
};

/// The value of an unlabelled series in `/metrics`, if present.
/// The value of the unlabelled family `name`, but for the sensor label every series of a named
/// sensor carries.
fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let (_, body) = http_get(addr, "/metrics").ok()?;
    let series = format!("{name}{{sensor=\"edge-1\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.parse().ok())
}

#[test]
fn redis_killed_for_30_s_during_a_daemon_run() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = live_capture(dir.path());
    let mut redis = Redis::start(dir.path());
    burstwatch_tests::write_test_key(&dir.path().join("cluster.key"));
    let net = Netns::new("clf");
    let metrics = SocketAddr::from((net.mgmt_addr, free_port()));
    let cfg = daemon_config(
        dir.path(),
        &net.cap_if,
        &format!(
            "metrics_bind = \"{metrics}\"\n\n[cluster]\nredis_url = \"unix://{}\"\n\
             sensor_id = \"edge-1\"\nkey_file = \"cluster.key\"\nanswer_wait_seconds = 2\n",
            redis.sock.display()
        ),
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&net, &cfg, &log);
    wait_for_log(&log, "capturing", Duration::from_secs(20));
    wait_for_log(
        &log,
        "shared prevalence store connected",
        Duration::from_secs(10),
    );

    // Replay (about 60 s) while Redis is down from the start for 30 s.
    let sock = redis.sock.clone();
    redis.kill();
    let _ = std::fs::remove_file(&sock);
    let killed = Instant::now();
    let replayer = std::thread::scope(|s| {
        let r = s.spawn(|| replay(&net, &pcap, "5"));
        std::thread::sleep(Duration::from_secs(10));
        let down_errors = metric(metrics, "burstwatch_cluster_errors_total").unwrap_or(0.0);
        let connected = metric(metrics, "burstwatch_cluster_connected");
        assert_eq!(connected, Some(0.0), "the daemon sees the store down");
        assert!(down_errors >= 1.0);
        let backlog = metric(metrics, "burstwatch_cluster_backlog_contacts").unwrap_or(0.0);
        assert!(backlog > 0.0, "contacts wait for the store");
        let lag = metric(metrics, "burstwatch_cluster_flush_lag_seconds").unwrap_or(0.0);
        assert!(lag >= 5.0, "flush lag grows while the store is down: {lag}");
        std::thread::sleep(Duration::from_secs(30).saturating_sub(killed.elapsed()));
        let restarted = {
            let r = Redis::start(dir.path());
            assert_eq!(r.sock, sock);
            r
        };
        let back = Instant::now();
        let back_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        loop {
            let b = metric(metrics, "burstwatch_cluster_backlog_contacts");
            let c = metric(metrics, "burstwatch_cluster_connected");
            if c == Some(1.0) && b == Some(0.0) {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(5),
                "backlog not drained within 5 s of the restart: backlog {b:?}, connected {c:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        (r.join().unwrap(), restarted, back_epoch)
    });
    let (sent, restarted, back_epoch) = replayer;
    assert!(sent > 0);
    // Held alerts after the replay leave within the hold and the answer wait.
    std::thread::sleep(Duration::from_secs(6));
    let written = metric(metrics, "burstwatch_cluster_contacts_written_total").unwrap_or(0.0);
    assert!(written > 0.0);
    // The sensor id labels every series (and names the sensor in the store).
    let (_, body) = http_get(metrics, "/metrics").unwrap();
    for l in body.lines().filter(|l| !l.starts_with('#')) {
        assert!(l.contains("sensor=\"edge-1\""), "{l}");
    }
    assert!(
        body.contains("burstwatch_cluster_sensor_info{sensor_id=\"edge-1\",sensor=\"edge-1\"} 1")
    );
    assert!(
        daemon.0.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the daemon runs"
    );
    let code = daemon.terminate(Duration::from_secs(40));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, Some(0), "clean exit:\n{text}");
    let bytes = std::fs::read(dir.path().join("alerts.jsonl")).unwrap_or_default();
    check_schema("deploy/schema/alert.schema.json", &bytes);
    let alerts = json_lines(&bytes);
    let uncertain: Vec<_> = alerts
        .iter()
        .filter(|a| a["endpoint"]["cluster"]["global_prevalence"].is_null())
        .collect();
    assert!(
        !uncertain.is_empty(),
        "alerts went on while the store was down:\n{text}"
    );
    for a in &uncertain {
        assert_eq!(a["endpoint"]["rarity_certain"], false, "{a}");
    }
    assert!(alerts.iter().all(|a| a["sensor"] == "edge-1"), "{text}");
    assert!(
        alerts.iter().all(|a| a["endpoint"]["cluster"].is_object()),
        "every alert has the cluster section"
    );
    // Alerts decided well after the restart had the store's answer.
    for a in alerts
        .iter()
        .filter(|a| a["detected_ts"].as_f64().unwrap() > back_epoch + 3.0)
    {
        assert!(
            a["endpoint"]["cluster"]["global_prevalence"].is_u64(),
            "back at {back_epoch}: {a}\n{text}"
        );
        assert!(
            a["endpoint"]["cluster"]["sensors_seen"].as_u64() >= Some(1),
            "{a}"
        );
    }
    // The directory shows the sensor after the restart.
    let dirent = restarted.cli(&["HGET", "bw:sensor:edge-1", "state"]);
    assert!(String::from_utf8_lossy(&dirent).contains("finished"));
}
