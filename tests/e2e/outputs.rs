//! Fault injection on the outputs of `analyze`: a full device (`/dev/full`), a closed pipe and
//! a directory as path. One output's failure is named (option, path, OS error), turns the exit
//! status to 1, and leaves every other output complete. (The daemon's: `daemon_outputs.rs`.)

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use burstwatch_tests::{bin, run};

/// A capture with alerts and thousands of flow records, the config to analyze it, and a clean
/// run's flows and alerts on it.
struct Clean {
    pcap: PathBuf,
    config: PathBuf,
    flows: Vec<u8>,
    alerts: Vec<u8>,
}

impl Clean {
    /// `analyze` on the capture with the config and `args`.
    fn analyze(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec![
            "analyze",
            self.pcap.to_str().unwrap(),
            "--config",
            self.config.to_str().unwrap(),
            "-q",
        ];
        all.extend_from_slice(args);
        run(&all)
    }
}

fn clean_run(dir: &Path) -> Clean {
    let pcap = dir.join("flows-and-bursts.pcap");
    flows_and_bursts(&pcap, 8000, true);
    let config = dir.join("c.toml");
    // A one-second look-back: the whole capture counts as warmed up.
    std::fs::write(&config, "[detect]\nlookback_seconds = 1\n").unwrap();
    let (flows, alerts) = (
        dir.join("clean-flows.jsonl"),
        dir.join("clean-alerts.jsonl"),
    );
    let mut clean = Clean {
        pcap,
        config,
        flows: Vec::new(),
        alerts: Vec::new(),
    };
    let out = clean.analyze(&[
        "--flows",
        flows.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    clean.flows = std::fs::read(flows).unwrap();
    clean.alerts = std::fs::read(alerts).unwrap();
    assert_eq!(
        clean.alerts.iter().filter(|&&b| b == b'\n').count(),
        3,
        "one alert per burst"
    );
    assert!(
        clean.flows.len() > 1 << 20,
        "more flow records than a pipe and a write buffer hold ({} bytes)",
        clean.flows.len()
    );
    clean
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_full_device_fails_its_own_output_only() {
    let dir = tempfile::tempdir().unwrap();
    let clean = clean_run(dir.path());
    let (alerts, flows, stats) = (
        dir.path().join("a.jsonl"),
        dir.path().join("f.jsonl"),
        dir.path().join("stats.json"),
    );

    // Flow records to a full device: the alerts file is still complete.
    let out = clean.analyze(&[
        "--flows",
        "/dev/full",
        "--alerts",
        alerts.to_str().unwrap(),
        "--stats",
        stats.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--flows /dev/full: cannot write flow records")
            && err.contains("No space left on device"),
        "the message names the output, its path and the OS error:\n{err}"
    );
    assert!(!err.contains("--alerts"), "only the failed output:\n{err}");
    assert!(
        std::fs::read(&alerts).unwrap() == clean.alerts,
        "alerts complete"
    );
    let counters: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert!(counters["alerts"].as_u64().unwrap() > 0, "{counters}");

    // Alerts to a full device: named as alerts (not flow records); the flows are complete.
    let out = clean.analyze(&["--alerts", "/dev/full", "--flows", flows.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--alerts /dev/full: cannot write alerts")
            && err.contains("No space left on device"),
        "{err}"
    );
    assert!(!err.contains("flow records"), "{err}");
    assert!(
        std::fs::read(&flows).unwrap() == clean.flows,
        "flow records complete"
    );

    // The counters to a full device: named, and both other outputs complete.
    let out = clean.analyze(&[
        "--stats",
        "/dev/full",
        "--alerts",
        alerts.to_str().unwrap(),
        "--flows",
        flows.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--stats /dev/full: cannot write"), "{err}");
    assert!(std::fs::read(&alerts).unwrap() == clean.alerts);
    assert!(std::fs::read(&flows).unwrap() == clean.flows);
}

#[test]
fn a_closed_pipe_is_an_error_and_the_other_output_completes() {
    let dir = tempfile::tempdir().unwrap();
    let clean = clean_run(dir.path());
    let alerts = dir.path().join("a.jsonl");
    // `analyze ... --flows - --alerts a.jsonl | head -1`
    let mut child = Command::new(bin())
        .args(["analyze", clean.pcap.to_str().unwrap(), "--flows", "-"])
        .args(["--alerts", alerts.to_str().unwrap(), "-q"])
        .args(["--config", clean.config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(first.starts_with('{'), "a flow record: {first:?}");
    drop(reader); // the reader goes away: the next write gets EPIPE
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a closed standard output is an error:\n{err}"
    );
    assert!(
        err.contains("--flows - (standard output): cannot write flow records")
            && err.contains("Broken pipe"),
        "{err}"
    );
    assert!(
        std::fs::read(&alerts).unwrap() == clean.alerts,
        "alerts complete"
    );
}

#[test]
fn a_directory_as_output_path_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = burstwatch_tests::repo().join("tests/data/sample.pcap");
    let sub = dir.path().join("out.d");
    std::fs::create_dir(&sub).unwrap();
    let flows = dir.path().join("f.jsonl");
    std::fs::write(&flows, "an earlier run's records\n").unwrap();
    for option in ["--alerts", "--stats"] {
        let out = run(&[
            "analyze",
            pcap.to_str().unwrap(),
            "--flows",
            flows.to_str().unwrap(),
            option,
            sub.to_str().unwrap(),
            "-q",
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("{option} {}: is a directory", sub.display())),
            "the message names the option and the directory:\n{err}"
        );
        assert_eq!(
            std::fs::read_to_string(&flows).unwrap(),
            "an earlier run's records\n",
            "no output emptied before the run was refused"
        );
    }
}

/// `n` one-packet UDP flows from as many subscribers, then three subscribers each sending
/// 3 MB in two seconds to an endpoint of their own (bursts), stamped from now.
pub(crate) fn flows_and_bursts(path: &Path, n: u32, bursts: bool) {
    use crate::crafted::{frame, pcap};
    let t0 = 1_767_225_600u32;
    let mut recs = Vec::new();
    for i in 0..n {
        let us = i * (1_000_000 / n);
        let src = [10, 1, (i / 250) as u8, (i % 250 + 1) as u8];
        recs.push((t0, us, frame(src, [198, 18, 0, 1], 20_000, 53, 60)));
    }
    if bursts {
        for i in 0..2200u32 {
            let us = i * 900;
            for k in 0..3u8 {
                recs.push((
                    t0 + 1 + us / 1_000_000,
                    us % 1_000_000 + u32::from(k),
                    frame([10, 0, 0, 5 + k], [192, 0, 2, 9 + k], 40_000, 9001, 1400),
                ));
            }
        }
    }
    std::fs::write(path, pcap(&recs)).unwrap();
}
