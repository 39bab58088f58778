//! Evidence carving end to end: carved packets equal the flow records of the pair, tshark
//! reads the file and agrees, the manifest's hashes are right, and re-running gives the same
//! bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use burstwatch_tests::{run, run_ok};
use sha2::{Digest, Sha256};

use crate::simcap::sim;

fn sha256(path: &Path) -> String {
    let d = Sha256::digest(std::fs::read(path).unwrap());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn carve(args: &[&str], out: &Path) -> serde_json::Value {
    let mut all = vec!["carve"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", out.to_str().unwrap()]);
    run_ok(&all);
    let m = PathBuf::from(format!("{}.manifest.json", out.display()));
    serde_json::from_slice(&std::fs::read(m).unwrap()).unwrap()
}

/// tshark's packet count of a file, with an optional display filter.
fn tshark_count(file: &Path, filter: Option<&str>) -> u64 {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-e", "frame.len"]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    let out = cmd.output().expect("tshark installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

/// The flows between two addresses (either direction) and their packet and byte sums.
fn pair_flows(a: &str, b: &str) -> (Vec<&'static serde_json::Value>, u64, u64) {
    let flows: Vec<_> = sim()
        .flows
        .iter()
        .filter(|f| {
            let (s, d) = (f["src"].as_str().unwrap(), f["dst"].as_str().unwrap());
            (s == a && d == b) || (s == b && d == a)
        })
        .collect();
    let n = |f: &serde_json::Value, k: &str| f[k].as_u64().unwrap();
    let packets = flows
        .iter()
        .map(|f| n(f, "packets_fwd") + n(f, "packets_rev"))
        .sum();
    let bytes = flows
        .iter()
        .map(|f| n(f, "bytes_fwd") + n(f, "bytes_rev"))
        .sum();
    (flows, packets, bytes)
}

#[test]
fn carved_pairs_equal_their_flow_records_and_tshark() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let pcap = s.pcap.to_str().unwrap();
    for (i, alert) in s.alerts.iter().take(3).enumerate() {
        let (src, dst) = (
            alert["src"].as_str().unwrap(),
            alert["dst"].as_str().unwrap(),
        );
        let (flows, packets, bytes) = pair_flows(src, dst);
        assert!(!flows.is_empty());
        // A span covering every flow of the pair, so the carve must hold exactly their packets.
        let ts = |f: &serde_json::Value, k: &str| f[k].to_string();
        let first = flows
            .iter()
            .map(|f| (f["first_ts"].as_f64().unwrap(), ts(f, "first_ts")))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap()
            .1;
        let last = flows
            .iter()
            .map(|f| (f["last_ts"].as_f64().unwrap(), ts(f, "last_ts")))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap()
            .1;
        let out = dir.path().join(format!("pair{i}.pcap"));
        let pair = format!("{src},{dst}");
        let m = carve(
            &[pcap, "--pair", &pair, "--from", &first, "--to", &last],
            &out,
        );
        assert_eq!(m["packets"], packets, "{pair}");
        assert_eq!(m["ip_bytes"], bytes, "{pair}");
        assert_eq!(tshark_count(&out, None), packets);
        assert_eq!(m["output"]["sha256"], sha256(&out));
        assert_eq!(m["output"]["size"], std::fs::metadata(&out).unwrap().len());
        assert_eq!(m["inputs"][0]["sha256"], sha256(&s.pcap));
        assert_eq!(m["inputs"][0]["path"], pcap);
        assert_eq!(m["output"]["format"], "pcap");
    }
}

#[test]
fn carving_an_alert_matches_tshark_and_is_reproducible() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let text: String = s.alerts.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(&alerts, text).unwrap();
    let alert = &s.alerts[0];
    let id = alert["id"].as_str().unwrap();
    let out = dir.path().join("alert.pcap");
    let args = [
        s.pcap.to_str().unwrap(),
        "--alert",
        id,
        "--alerts",
        alerts.to_str().unwrap(),
        "--margin",
        "2",
    ];
    let m = carve(&args, &out);
    let packets = m["packets"].as_u64().unwrap();
    assert!(packets > 0);
    assert_eq!(m["selection"]["alert_id"], id);
    assert_eq!(m["selection"]["margin_seconds"], 2.0);
    // tshark, independently: the pair's packets within the span and margin.
    let (src, dst) = (
        alert["src"].as_str().unwrap(),
        alert["dst"].as_str().unwrap(),
    );
    let ip = if src.contains(':') { "ipv6" } else { "ip" };
    let from = alert["start_ts"].as_f64().unwrap() - 2.0;
    let to = alert["end_ts"].as_f64().unwrap() + 2.0;
    let filter = format!(
        "{ip}.addr == {src} && {ip}.addr == {dst} && frame.time_epoch >= {from:.6} && frame.time_epoch <= {to:.6}"
    );
    assert_eq!(tshark_count(&s.pcap, Some(&filter)), packets, "{filter}");
    assert_eq!(tshark_count(&out, None), packets);
    // Re-running gives byte-identical evidence and manifest.
    let pcap1 = std::fs::read(&out).unwrap();
    let man1 = std::fs::read(format!("{}.manifest.json", out.display())).unwrap();
    carve(&args, &out);
    assert_eq!(std::fs::read(&out).unwrap(), pcap1);
    assert_eq!(
        std::fs::read(format!("{}.manifest.json", out.display())).unwrap(),
        man1
    );
    // Unknown ids are usage errors.
    let r = run(&[
        "carve",
        s.pcap.to_str().unwrap(),
        "--alert",
        "0000000000000000",
        "--alerts",
        alerts.to_str().unwrap(),
        "-o",
        dir.path().join("x.pcap").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn mixed_link_types_are_carved_to_pcapng() {
    // The bundled sample (Ethernet) re-written as raw IP (link type 101) by editcap, then both
    // carved together: one interface per link type.
    let dir = tempfile::tempdir().unwrap();
    let sample = burstwatch_tests::repo().join("tests/data/sample.pcap");
    let raw = dir.path().join("raw.pcap");
    let st = Command::new("editcap")
        .args(["-T", "rawip", "-C", "14"])
        .arg(&sample)
        .arg(&raw)
        .status()
        .expect("editcap installed");
    assert!(st.success());
    let flows = burstwatch_tests::json_lines(
        &run(&["analyze", sample.to_str().unwrap(), "--flows", "-", "-q"]).stdout,
    );
    let f = &flows[0];
    let pair = format!(
        "{},{}",
        f["src"].as_str().unwrap(),
        f["dst"].as_str().unwrap()
    );
    let out = dir.path().join("mixed.pcapng");
    let m = carve(
        &[
            sample.to_str().unwrap(),
            raw.to_str().unwrap(),
            "--pair",
            &pair,
            "--from",
            "0",
            "--to",
            "4000000000",
        ],
        &out,
    );
    assert_eq!(m["output"]["format"], "pcapng");
    assert_eq!(m["output"]["link_types"], serde_json::json!([1, 101]));
    let packets = m["packets"].as_u64().unwrap();
    assert_eq!(packets % 2, 0, "every packet once per link type");
    assert!(packets >= 2);
    assert_eq!(tshark_count(&out, None), packets);
}

#[test]
fn a_pseudonymised_alert_is_carved_with_its_key() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("case.key");
    burstwatch_tests::write_test_key(&key);
    let keyarg = key.to_str().unwrap();
    let outs = crate::simcap::analyze(dir.path(), "pseudo", &s.pcap, &["--pseudonymize", keyarg]);
    let pseudo_alerts = dir.path().join("pseudo.alerts.jsonl");
    let pseudo = burstwatch_tests::json_lines(&outs[1]);
    // The same alert in the clear run and in the pseudonymised one (same order, other id).
    let (clear, hidden) = (&s.alerts[0], &pseudo[0]);
    assert_ne!(clear["src"], hidden["src"]);
    let clear_alerts = dir.path().join("clear.alerts.jsonl");
    let text: String = s.alerts.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(&clear_alerts, text).unwrap();
    let pcap = s.pcap.to_str().unwrap();
    let by_clear = dir.path().join("clear.pcap");
    let m1 = carve(
        &[
            pcap,
            "--alert",
            clear["id"].as_str().unwrap(),
            "--alerts",
            clear_alerts.to_str().unwrap(),
        ],
        &by_clear,
    );
    let by_key = dir.path().join("key.pcap");
    let hidden_id = hidden["id"].as_str().unwrap();
    let pseudo_arg = pseudo_alerts.to_str().unwrap();
    let m2 = carve(
        &[
            pcap, "--alert", hidden_id, "--alerts", pseudo_arg, "--key", keyarg,
        ],
        &by_key,
    );
    assert!(m1["packets"].as_u64().unwrap() > 0);
    assert_eq!(m2["packets"], m1["packets"]);
    assert_eq!(
        std::fs::read(&by_key).unwrap(),
        std::fs::read(&by_clear).unwrap()
    );
    assert_eq!(m2["selection"]["src"], clear["src"]);
    assert_eq!(m2["selection"]["revealed_from"]["src"], hidden["src"]);
    // Without the key the pseudonyms match nothing.
    let none = dir.path().join("none.pcap");
    let m3 = carve(&[pcap, "--alert", hidden_id, "--alerts", pseudo_arg], &none);
    assert_eq!(m3["packets"], 0);
}
