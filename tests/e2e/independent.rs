//! The detector on traffic from a generator that shares nothing with burstwatch's simulator
//! (`independent_gen.py`: its own packet writer, population, decoys and timing), run as an
//! operator would run `analyze`, with the home networks named on the command line.
//!
//! Over the seeds together, at least 90 % of the bursts and beacons it injects must be alerted
//! (a burst: same pair, alert start within its span ± 10 s; a beacon: same pair) and at most 5 %
//! of the alerts may be anything else (decoys or background). `BURSTWATCH_GEN_SEEDS` (e.g.
//! `11,12,13h`, `h` for the hard mode) runs other seeds. Needs `python3` (skipped without it,
//! except in CI).

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use burstwatch_tests::{json_lines, run};

fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn addr(v: &serde_json::Value) -> IpAddr {
    v.as_str().unwrap().parse().unwrap()
}

/// `(found, positives, alerts, wrong alerts)` of one seed, with what was missed or wrong.
fn one_seed(dir: &Path, seed: &str) -> Option<(usize, usize, usize, usize, Vec<String>)> {
    let (n, hard) = match seed.strip_suffix('h') {
        Some(n) => (n, true),
        None => (seed, false),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/independent_gen.py");
    let pcap = dir.join(format!("gen-{seed}.pcap"));
    let truth = dir.join(format!("gen-{seed}.json"));
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(n).arg(&pcap).arg(&truth);
    if hard {
        cmd.arg("hard");
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if !strict() => {
            eprintln!("SKIPPED: cannot run python3 ({e})");
            return None;
        }
        Err(e) => panic!("cannot run python3: {e}"),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    let alerts_path = dir.join(format!("gen-{seed}.alerts"));
    let stats = dir.join(format!("gen-{seed}.stats"));
    let out = run(&[
        "analyze",
        pcap.to_str().unwrap(),
        "--home-net",
        "10.0.0.0/8",
        "--home-net",
        "2001:db8:1::/48",
        "--alerts",
        alerts_path.to_str().unwrap(),
        "--stats",
        stats.to_str().unwrap(),
        "-q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(&truth).unwrap()).unwrap();
    // The capture is read whole: every packet written is an IP packet in a flow.
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(s["ip_packets"], truth["packets"], "seed {seed}");
    let alerts = json_lines(&std::fs::read(&alerts_path).unwrap());
    let t0 = truth["t0"].as_f64().unwrap();
    let positives = truth["positives"].as_array().unwrap();
    let mut found = vec![false; positives.len()];
    let mut wrong = 0;
    let mut notes = Vec::new();
    for a in &alerts {
        let (src, dst) = (addr(&a["src"]), addr(&a["dst"]));
        let start = a["start_ts"].as_f64().unwrap() - t0;
        let mut hit = false;
        for (i, p) in positives.iter().enumerate() {
            if addr(&p["src"]) != src || addr(&p["dst"]) != dst {
                continue;
            }
            let fits = match p["kind"].as_str().unwrap() {
                "burst" => {
                    let (t, end) = (p["t"].as_f64().unwrap(), p["t_end"].as_f64().unwrap());
                    start >= t - 10.0 && start <= end + 10.0
                }
                // A beacon is found by a beacon alert, or by bursts of its pair (a large
                // exchange), whatever the time.
                _ => true,
            };
            if fits {
                found[i] = true;
                hit = true;
            }
        }
        if !hit {
            wrong += 1;
            notes.push(format!(
                "seed {seed}: alert not injected: {} {src} -> {dst} score {}",
                a["kind"], a["score"]
            ));
        }
    }
    for (p, f) in positives.iter().zip(&found) {
        if !f {
            notes.push(format!("seed {seed}: missed {p}"));
        }
    }
    let hits = found.iter().filter(|f| **f).count();
    Some((hits, positives.len(), alerts.len(), wrong, notes))
}

#[test]
fn bursts_and_beacons_of_an_independent_generator_are_found_and_its_decoys_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = std::env::var("BURSTWATCH_GEN_SEEDS").unwrap_or_else(|_| "1,2,3h".into());
    let (mut hits, mut total, mut alerts, mut wrong) = (0, 0, 0, 0);
    let mut notes = Vec::new();
    for seed in seeds.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((h, t, a, w, n)) = one_seed(dir.path(), seed) else {
            return;
        };
        eprintln!("seed {seed}: found {h}/{t}, {w} of {a} alerts not injected");
        (hits, total, alerts, wrong) = (hits + h, total + t, alerts + a, wrong + w);
        notes.extend(n);
    }
    for n in &notes {
        eprintln!("{n}");
    }
    assert!(total > 0);
    assert!(
        hits * 10 >= total * 9,
        "recall {hits}/{total} below 0.9:\n{}",
        notes.join("\n")
    );
    assert!(
        wrong * 20 <= alerts,
        "{wrong} of {alerts} alerts not injected (more than 5 %):\n{}",
        notes.join("\n")
    );
}
