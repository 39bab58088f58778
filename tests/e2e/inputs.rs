//! Inputs of `analyze` and `carve`: outputs that would overwrite an input are refused, a file
//! reached twice is read once, rotation directories are read by content, standard input and
//! FIFOs are read as streams, ten thousand files stay within a small descriptor limit, and
//! impossible or out-of-range times are refused.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use burstwatch_tests::{bin, corpus, json_lines, run, run_ok};
use sha2::{Digest, Sha256};

use crate::crafted::{burst_capture, frame, pcap};
use crate::pcapfile;

fn sha(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of a small corpus capture in `dir`.
fn capture(dir: &Path) -> PathBuf {
    let x = dir.join("x.pcap");
    std::fs::copy(corpus().join("traffic/http__bro.org.pcap"), &x).unwrap();
    x
}

/// Packets read, from `--stats`.
fn packets(dir: &Path, inputs: &[&str]) -> (u64, String) {
    let stats = dir.join("stats.json");
    let mut args = vec!["analyze", "--quiet", "--stats", s(&stats)];
    args.extend_from_slice(inputs);
    let out = run_ok(&args);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    (
        v["packets"].as_u64().unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_output_that_is_an_input_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let x = capture(d);
    let before = sha(&x);
    std::os::unix::fs::symlink(&x, d.join("link")).unwrap();
    let sub = d.join("rot");
    std::fs::create_dir(&sub).unwrap();
    std::fs::copy(&x, sub.join("dump1")).unwrap();
    let sub_before = sha(&sub.join("dump1"));
    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (
            vec![s(&x).into(), "--flows".into(), s(&x).into()],
            "--flows",
            "x.pcap",
        ),
        (
            vec![s(&x).into(), "--alerts".into(), s(&d.join("link")).into()],
            "--alerts",
            "x.pcap",
        ),
        (
            vec![s(&d.join("link")).into(), "--stats".into(), s(&x).into()],
            "--stats",
            "link",
        ),
        (
            vec![
                s(&sub).into(),
                "--flows".into(),
                s(&sub.join("dump1")).into(),
            ],
            "--flows",
            "dump1",
        ),
    ];
    for (args, flag, input) in cases {
        let mut all = vec!["analyze"];
        all.extend(args.iter().map(String::as_str));
        let out = run(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {err}");
        assert!(
            err.contains(flag) && err.contains(input) && err.contains("refusing"),
            "{all:?}: {err}"
        );
        assert_eq!(sha(&x), before, "{all:?} changed the capture");
        assert_eq!(sha(&sub.join("dump1")), sub_before, "{all:?}");
    }
    // carve's evidence file, through a symlink too.
    let out = run(&[
        "carve",
        s(&x),
        "--pair",
        "10.0.0.1,10.0.0.2",
        "--from",
        "0",
        "--to",
        "1",
        "-o",
        s(&d.join("link")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--output"));
    assert_eq!(sha(&x), before);
    assert!(!d.join("link.spool").exists());
}

#[test]
fn a_capture_reached_twice_is_read_once_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sub = d.join("caps");
    std::fs::create_dir(&sub).unwrap();
    let x = capture(&sub);
    std::os::unix::fs::symlink(&x, d.join("link.pcap")).unwrap();
    let (once, _) = packets(d, &[s(&x)]);
    assert!(once > 0);
    let glob = format!("{}/*.pcap", sub.display());
    let (twice, err) = packets(d, &[s(&x), s(&d.join("link.pcap")), &glob, s(&sub)]);
    assert_eq!(twice, once, "{err}");
    assert!(
        err.contains("is the same file as") && err.contains("read once"),
        "{err}"
    );
}

#[test]
fn a_rotation_directory_is_read_whole_by_content() {
    let src = corpus().join("traffic/http__bro.org.pcap");
    let p = pcapfile::read(&std::fs::read(&src).unwrap());
    let n = p.records.len();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rot = d.join("rot");
    std::fs::create_dir(&rot).unwrap();
    // `tcpdump -C` names: dump, dump1, dump2, ... (no extension); the last one gzip-compressed.
    let chunks: Vec<_> = p.records.chunks(n.div_ceil(4)).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let name = match i {
            0 => "dump".to_string(),
            i => format!("dump{i}"),
        };
        let bytes = pcapfile::write(&p.header, chunk);
        if i == chunks.len() - 1 {
            let f = std::fs::File::create(rot.join(name)).unwrap();
            let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            enc.write_all(&bytes).unwrap();
            enc.finish().unwrap();
        } else {
            std::fs::write(rot.join(name), bytes).unwrap();
        }
    }
    std::fs::write(rot.join("notes"), "rotation log").unwrap();
    std::fs::write(rot.join("dump.md5"), "0123456789abcdef").unwrap();
    std::fs::write(rot.join("empty"), b"").unwrap();
    let (whole, _) = packets(d, &[s(&src)]);
    assert_eq!(whole, n as u64);
    let (parts, err) = packets(d, &[s(&rot)]);
    assert_eq!(parts, whole, "{err}");
    assert!(
        err.contains("skipped 3 file(s)") && err.contains("2 not a capture, 1 empty"),
        "{err}"
    );
    let flows = |input: &Path| {
        json_lines(&run_ok(&["analyze", "--quiet", "--flows", "-", s(input)]).stdout)
    };
    assert_eq!(flows(&src), flows(&rot));
}

#[test]
fn an_empty_directory_or_a_glob_matching_nothing_is_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "no capture here").unwrap();
    let out = run(&["analyze", "--quiet", s(&empty)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no capture file"), "{err}");
    let glob = format!("{}/*.pcapng", d.display());
    let out = run(&["analyze", "--quiet", &glob]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no file matches"), "{err}");
    // With another input that has packets, the run goes on and still exits 1.
    let x = capture(d);
    let out = run(&["analyze", "--quiet", s(&x), &glob]);
    assert_eq!(out.status.code(), Some(1));
}

/// Flows and alerts of the burst capture, read from `input`; `feed` writes the capture into
/// the stream while burstwatch runs.
fn flows_and_alerts(
    dir: &Path,
    input: &str,
    stdin: Stdio,
    feed: impl FnOnce(Option<std::process::ChildStdin>) + Send + 'static,
) -> (String, String) {
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, "[detect]\nlookback_seconds = 1\n").unwrap();
    let tag = input.replace('/', "_");
    let alerts = dir.join(format!("alerts-{tag}.jsonl"));
    let mut child = Command::new(bin())
        .args([
            "analyze",
            "--quiet",
            "--config",
            s(&cfg),
            "--flows",
            "-",
            "--alerts",
            s(&alerts),
            input,
        ])
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let w = child.stdin.take();
    let feeder = std::thread::spawn(move || feed(w));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        out.status.success(),
        "{input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        std::fs::read_to_string(&alerts).unwrap(),
    )
}

#[test]
fn standard_input_and_a_fifo_are_read_as_streams() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let cap = burst_capture(&d);
    let (flows, alerts) = flows_and_alerts(&d, s(&cap), Stdio::null(), |_| {});
    assert!(
        !flows.is_empty() && !alerts.is_empty(),
        "the capture alerts"
    );
    // A pipe on standard input, as in `tcpdump -w - | burstwatch analyze -`.
    let bytes = std::fs::read(&cap).unwrap();
    let b = bytes.clone();
    let piped = flows_and_alerts(&d, "-", Stdio::piped(), move |w| {
        let mut w = w.unwrap();
        for chunk in b.chunks(1000) {
            w.write_all(chunk).unwrap();
        }
    });
    assert_eq!(piped, (flows.clone(), alerts.clone()));
    // A named FIFO.
    let fifo = d.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let f = fifo.clone();
    let fed = flows_and_alerts(&d, s(&fifo), Stdio::null(), move |_| {
        let mut w = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        w.write_all(&bytes).unwrap();
    });
    assert_eq!(fed, (flows, alerts));
}

#[test]
fn ten_thousand_overlapping_files_read_under_a_small_descriptor_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("many");
    std::fs::create_dir(&d).unwrap();
    // Every file overlaps every other in time (file k: seconds k and k + 10000), so the merge
    // needs them all at once.
    let n = 10_000u32;
    let t0 = 1_767_225_600u32;
    for k in 0..n {
        let f = |t: u32| {
            (
                t0 + t,
                0,
                frame(
                    [10, 0, (k >> 8) as u8, k as u8],
                    [192, 0, 2, 9],
                    40_000,
                    53,
                    60,
                ),
            )
        };
        std::fs::write(d.join(format!("part{k}.pcap")), pcap(&[f(k), f(k + n)])).unwrap();
    }
    let stats = dir.path().join("stats.json");
    let started = std::time::Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256; exec \"$0\" analyze --quiet --stats \"$1\" \"$2\"")
        .arg(bin())
        .arg(&stats)
        .arg(&d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_eq!(v["packets"].as_u64(), Some(2 * u64::from(n)));
    assert_eq!(v["files"].as_u64(), Some(u64::from(n)));
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

#[test]
fn impossible_dates_and_times_out_of_range_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let x = capture(dir.path());
    for (flag, value, want) in [
        ("--since", "2026-02-31T00:00:00Z", "--since"),
        ("--since", "2026-02-31", "--since"),
        ("--until", "2300-01-01T00:00:00Z", "2262-04-11"),
        ("--since", "1600-01-01T00:00:00Z", "1677-09-21"),
    ] {
        let out = run(&["analyze", "--quiet", s(&x), flag, value]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(
            err.contains(flag) && err.contains(want),
            "{flag} {value}: {err}"
        );
    }
}
