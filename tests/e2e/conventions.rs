//! The conventions other tools key on: an RFC 3339 `timestamp` on every JSON line, the
//! subscriber and endpoint roles named in alerts.

use burstwatch_tests::{json_lines, run};

use crate::alerts::check_schema;
use crate::crafted::burst_capture;

/// `timestamp` is RFC 3339 in UTC with six decimals, and the instant of `epoch_field` (seconds
/// since the epoch, µs precision).
fn assert_timestamp_is(v: &serde_json::Value, epoch_field: &str) {
    let text = v["timestamp"]
        .as_str()
        .unwrap_or_else(|| panic!("no timestamp: {v}"));
    assert_eq!(text.len(), "2026-01-01T00:00:00.000000Z".len(), "{text}");
    assert!(text.ends_with('Z'), "{text}");
    let ts: jiff::Timestamp = text.parse().unwrap();
    let us = ts.as_microsecond();
    let epoch = v[epoch_field].as_f64().unwrap();
    assert_eq!(us, (epoch * 1e6).round() as i64, "{epoch_field}: {v}");
}

#[test]
fn every_json_line_has_an_rfc3339_timestamp_and_alerts_name_the_roles() {
    let dir = tempfile::tempdir().unwrap();
    let cap = burst_capture(dir.path());
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[detect]\nlookback_seconds = 1\n").unwrap();
    let (alerts, flows, stats) = (
        dir.path().join("a.jsonl"),
        dir.path().join("f.jsonl"),
        dir.path().join("s.json"),
    );
    let p = |x: &std::path::Path| x.to_str().unwrap().to_string();
    let out = run(&[
        "analyze",
        &p(&cap),
        "--config",
        &p(&cfg),
        "--alerts",
        &p(&alerts),
        "--flows",
        &p(&flows),
        "--stats",
        &p(&stats),
    ]);
    assert!(out.status.success(), "{out:?}");
    let (a, f) = (
        std::fs::read(&alerts).unwrap(),
        std::fs::read(&flows).unwrap(),
    );
    check_schema("deploy/schema/alert.schema.json", &a);
    check_schema("deploy/schema/flow.schema.json", &f);

    let alerts = json_lines(&a);
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    // Alerts: the detection time.
    assert_timestamp_is(alert, "detected_ts");
    assert_eq!(alert["subscriber"]["address"], "10.0.0.5");
    assert_eq!(alert["subscriber"]["address"], alert["src"]);
    assert_eq!(alert["endpoint"]["address"], "192.0.2.9");
    assert_eq!(alert["endpoint"]["address"], alert["dst"]);
    assert_eq!(alert["endpoint"]["port"], 9001);
    assert_eq!(alert["endpoint"]["port"], alert["dst_port"]);
    // One direction vocabulary: out is subscriber -> endpoint.
    let before = &alert["pair_before"];
    assert!(
        before["out_10s_bps"].is_number() && before["in_60s_bps"].is_number(),
        "{alert}"
    );

    // Flow records: the first packet.
    let flows = json_lines(&f);
    assert_eq!(flows.len(), 1);
    assert_timestamp_is(&flows[0], "first_ts");
    assert_eq!(flows[0]["timestamp"], "2026-01-01T00:00:00.000000Z");

    // The run's counters: when they were written (now, give or take the run).
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let written: jiff::Timestamp = s["timestamp"].as_str().unwrap().parse().unwrap();
    let age = jiff::Timestamp::now().duration_since(written);
    assert!(age.as_secs() >= 0 && age.as_secs() < 600, "{s}");
}
