//! Alerts end to end: the simulator's capture through `analyze --alerts`, checked against the
//! published JSON Schemas, and replayed for byte-identical output.

use std::path::Path;

use burstwatch_tests::{repo, run_ok};

/// Validate every JSON line of `jsonl` against a schema file of the repository.
pub fn check_schema(schema_file: &str, jsonl: &[u8]) -> usize {
    let path = repo().join(schema_file);
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    let loc = format!("file://{}", path.display());
    let schema: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    compiler.add_resource(&loc, schema).unwrap();
    let idx = compiler
        .compile(&loc, &mut schemas)
        .unwrap_or_else(|e| panic!("{schema_file}: {e}"));
    let mut n = 0;
    for line in String::from_utf8_lossy(jsonl)
        .lines()
        .filter(|l| !l.is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Err(e) = schemas.validate(&v, idx) {
            panic!("{schema_file}: line does not validate: {e}\n{line}");
        }
        n += 1;
    }
    n
}

fn simulate(dir: &Path, seed: &str, subscribers: &str, duration: &str) -> std::path::PathBuf {
    let pcap = dir.join(format!("sim-{seed}.pcap"));
    run_ok(&[
        "simulate",
        "-o",
        pcap.to_str().unwrap(),
        "--seed",
        seed,
        "--subscribers",
        subscribers,
        "--duration",
        duration,
    ]);
    pcap
}

#[test]
fn alerts_and_flows_match_their_schemas_and_replay_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = simulate(dir.path(), "7", "1500", "900");
    let analyze = |tag: &str, threads: &str, workers: &str| {
        let alerts = dir.path().join(format!("alerts-{tag}.jsonl"));
        let flows = dir.path().join(format!("flows-{tag}.jsonl"));
        let out = run_ok(&[
            "analyze",
            pcap.to_str().unwrap(),
            "--alerts",
            alerts.to_str().unwrap(),
            "--flows",
            flows.to_str().unwrap(),
            "--threads",
            threads,
            "--workers",
            workers,
        ]);
        (
            std::fs::read(alerts).unwrap(),
            std::fs::read(flows).unwrap(),
            out.stderr,
        )
    };
    let (alerts, flows, stderr) = analyze("a", "1", "1");
    let n_alerts = check_schema("deploy/schema/alert.schema.json", &alerts);
    let n_flows = check_schema("deploy/schema/flow.schema.json", &flows);
    assert!(
        n_alerts > 0,
        "the simulator injects bursts: expected alerts"
    );
    assert!(n_flows > 1000);
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(
        stderr.contains("alert(s); top"),
        "readable table on stderr:\n{stderr}"
    );
    // Replay determinism: the same input gives byte-identical alerts (and flows), also when
    // reading and decoding run on a thread of their own.
    let (alerts2, flows2, _) = analyze("b", "2", "1");
    assert_eq!(alerts, alerts2);
    assert_eq!(flows, flows2);
    // Host shards: the same alerts, byte for byte, whatever the number of engine workers; the
    // same flow records in another order.
    let sorted = |b: &[u8]| {
        let mut lines: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
        lines.sort_unstable();
        lines.concat()
    };
    for workers in ["2", "3"] {
        let (alerts_n, flows_n, stderr_n) = analyze(&format!("w{workers}"), "2", workers);
        assert_eq!(
            String::from_utf8_lossy(&alerts),
            String::from_utf8_lossy(&alerts_n),
            "{workers} workers"
        );
        assert_eq!(sorted(&flows), sorted(&flows_n), "{workers} workers");
        // The summary counts the same packets, flows and alerts.
        let counts = |e: &[u8]| {
            String::from_utf8_lossy(e)
                .lines()
                .filter(|l| {
                    l.contains("flow records") || l.contains("in flows") || l.contains("scored ")
                })
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(stderr.as_bytes()), counts(&stderr_n));
    }
}
