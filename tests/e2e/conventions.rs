//! The conventions other tools key on: Community IDs on flow records (checked against
//! tshark's) and alerts, an RFC 3339 `timestamp` on every JSON line, the subscriber and
//! endpoint roles named in alerts.

use std::collections::BTreeSet;
use std::process::Command;

use burstwatch_tests::{corpus, json_lines, run, run_ok};

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
    // The burst's one connection, UDP 10.0.0.5:40000 <-> 192.0.2.9:9001.
    assert_eq!(
        alert["community_ids"],
        serde_json::json!(["1:sSyVZdbudfAvcgTO6ar1NxDH5pQ="]),
        "{alert}"
    );
    assert!(alert.get("community_ids_omitted").is_none(), "{alert}");
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
    assert_eq!(flows[0]["community_id"], alert["community_ids"][0]);

    // The run's counters: when they were written (now, give or take the run).
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let written: jiff::Timestamp = s["timestamp"].as_str().unwrap().parse().unwrap();
    let age = jiff::Timestamp::now().duration_since(written);
    assert!(age.as_secs() >= 0 && age.as_secs() < 600, "{s}");
}

#[test]
fn a_named_sensor_is_on_every_alert_and_flow_record() {
    let dir = tempfile::tempdir().unwrap();
    let cap = burst_capture(dir.path());
    let cfg = dir.path().join("c.toml");
    // Quotes and a backslash: written as JSON escapes them.
    let name = r#"pop "fra" \1"#;
    std::fs::write(
        &cfg,
        format!(
            "[detect]\nlookback_seconds = 1\n[daemon]\nsensor = {}\n",
            toml_string(name)
        ),
    )
    .unwrap();
    let (alerts, flows) = (dir.path().join("a.jsonl"), dir.path().join("f.jsonl"));
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
    ]);
    assert!(out.status.success(), "{out:?}");
    let (a, f) = (
        std::fs::read(&alerts).unwrap(),
        std::fs::read(&flows).unwrap(),
    );
    check_schema("deploy/schema/alert.schema.json", &a);
    check_schema("deploy/schema/flow.schema.json", &f);
    let (a, f) = (json_lines(&a), json_lines(&f));
    assert_eq!((a.len(), f.len()), (1, 1));
    for line in a.iter().chain(&f) {
        assert_eq!(line["sensor"], name, "{line}");
    }
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// tshark's Community ID of every frame (its `communityid` post-dissector), and those of the
/// TCP and UDP frames that are not ICMP errors.
fn tshark_ids(capture: &std::path::Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["--enable-protocol", "communityid", "-T", "fields"])
        .args([
            "-e",
            "communityid",
            "-e",
            "tcp.srcport",
            "-e",
            "udp.srcport",
        ])
        .args(["-e", "icmp.type", "-e", "icmpv6.type"])
        .output()
        .expect("tshark runs");
    assert!(out.status.success(), "{out:?}");
    let (mut all, mut ported) = (BTreeSet::new(), BTreeSet::new());
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 5 || f[0].is_empty() {
            continue;
        }
        all.insert(f[0].to_string());
        if (!f[1].is_empty() || !f[2].is_empty()) && f[3].is_empty() && f[4].is_empty() {
            ported.insert(f[0].to_string());
        }
    }
    (all, ported)
}

#[test]
fn flow_community_ids_are_those_tshark_computes() {
    // ICMPv6 of many types (request/reply pairs and one-way messages), TCP over IPv6, ICMP
    // echo over IPv4, and a few hundred TCP and UDP flows over IPv4.
    let captures = [
        "ipv6-frag/communityid__icmp6.pcap",
        "ipv6-frag/communityid__ipv6.pcap",
        "encap/icmp-tunnel.pcap",
        "traffic/1kxun.pcap",
    ];
    let mut protos = BTreeSet::new();
    for name in captures {
        let path = corpus().join(name);
        let (all, ported) = tshark_ids(&path);
        let out = run_ok(&["analyze", "--quiet", path.to_str().unwrap(), "--flows", "-"]);
        let flows = json_lines(&out.stdout);
        assert!(!flows.is_empty(), "{name}");
        let mut ours = BTreeSet::new();
        for f in &flows {
            let id = f["community_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no community_id: {f}"));
            // An ICMP flow here holds every ICMP message between two hosts: its ID is that of
            // its first packet, one of tshark's.
            assert!(all.contains(id), "{name}: {id} is none of tshark's: {f}");
            let v6 = f["src"].as_str().unwrap().contains(':');
            protos.insert((f["proto"].to_string(), v6));
            ours.insert(id.to_string());
        }
        // Every TCP and UDP connection tshark saw has its ID on a flow record.
        let missing: Vec<_> = ported.difference(&ours).collect();
        assert!(
            missing.is_empty(),
            "{name}: tshark's IDs not on any flow: {missing:?}"
        );
    }
    let want = [
        ("\"icmp\"", false),
        ("\"icmp6\"", true),
        ("\"tcp\"", false),
        ("\"tcp\"", true),
        ("\"udp\"", false),
    ];
    for w in want {
        assert!(
            protos.contains(&(w.0.to_string(), w.1)),
            "{w:?} not covered: {protos:?}"
        );
    }
}
