//! Hostile and broken inputs: no panic, one clear error line (file, offset, reason), everything
//! before the fault processed, the other inputs go on, and the documented exit status.

use std::path::Path;

use burstwatch_tests::{corpus, json_lines, run};

use crate::pcapfile;

fn packets_in(flows: &[serde_json::Value]) -> u64 {
    flows
        .iter()
        .map(|r| r["packets_fwd"].as_u64().unwrap() + r["packets_rev"].as_u64().unwrap())
        .sum()
}

fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn malformed_and_robustness_corpus_never_crashes_and_errors_are_clear() {
    let mut files = Vec::new();
    all_files(&corpus().join("malformed"), &mut files);
    all_files(&corpus().join("robustness"), &mut files);
    files.sort();
    assert!(files.len() > 800, "corpus incomplete: {}", files.len());
    let mut with_errors = 0;
    let mut reported = Vec::new();
    for f in &files {
        let path = f.to_str().unwrap();
        let out = run(&["analyze", "--flows", "-", path]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                with_errors += 1;
                reported.push(path.to_string());
                let line = stderr
                    .lines()
                    .find(|l| l.starts_with("burstwatch: error: "))
                    .unwrap_or_else(|| panic!("{path}: exit 1 without an error line:\n{stderr}"));
                let rest = line.trim_start_matches("burstwatch: error: ");
                assert!(
                    rest.starts_with(path),
                    "{path}: error line does not name the file: {line}"
                );
                assert!(
                    rest.contains(": offset "),
                    "{path}: error line has no offset: {line}"
                );
            }
            other => panic!("{path}: exit {other:?} (crash?)\n{stderr}"),
        }
        // Whatever was written is valid JSON lines.
        json_lines(&out.stdout);
        assert!(
            stderr.contains(" packets,"),
            "{path}: no summary:\n{stderr}"
        );
    }
    // The files whose structure is damaged (the other "malformed" ones are well-formed captures
    // of link types tshark 4.0 does not know; burstwatch reads them and counts their frames as
    // unsupported_link_type).
    let broken = [
        "malformed/libpcap/linktype-reserved-field-not-zero.pcap",
        "malformed/libpcap/pcap-invalid-version-1.pcap",
        "malformed/libpcap/pcapng-invalid-vers-1.pcapng",
        "malformed/libpcap/pcapng-invalid-vers-2.pcapng",
        "malformed/libpcap/shb-option-too-long.pcapng",
        "malformed/ndpi/fuzz-2021-10-13.pcap",
    ];
    for b in broken {
        assert!(
            reported.iter().any(|p| p.ends_with(b)),
            "{b} was not reported as damaged"
        );
    }
    assert_eq!(with_errors, broken.len(), "unexpected errors: {reported:?}");
}

#[test]
fn truncated_last_record_keeps_everything_before_it() {
    let src = corpus().join("traffic/http__bro.org.pcap");
    let bytes = std::fs::read(&src).unwrap();
    let pcap = pcapfile::read(&bytes);
    let n = pcap.records.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pcap");
    let cut_at = bytes.len() - 5;
    std::fs::write(&cut, &bytes[..cut_at]).unwrap();
    let out = run(&["analyze", "--flows", "-", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last_off = bytes.len() - pcap.records.last().unwrap().len();
    let expect = format!("burstwatch: error: {}: offset {last_off}: ", cut.display());
    assert!(stderr.contains(&expect), "want {expect:?} in:\n{stderr}");
    assert_eq!(packets_in(&json_lines(&out.stdout)), n - 1);
}

#[test]
fn not_a_capture_and_missing_files_do_not_stop_the_other_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.pcap");
    std::fs::write(&text, "this is not a capture file\n").unwrap();
    let missing = dir.path().join("missing.pcap");
    let good = corpus().join("traffic/dns53.pcap");
    let good_n = pcapfile::read(&std::fs::read(&good).unwrap()).records.len() as u64;
    let out = run(&[
        "analyze",
        "--flows",
        "-",
        text.to_str().unwrap(),
        missing.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("burstwatch: error: "))
        .collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors.iter().any(|l| l.contains("notes.pcap: offset 0: ")),
        "{stderr}"
    );
    assert!(
        errors.iter().any(|l| l.contains("missing.pcap")),
        "{stderr}"
    );
    assert_eq!(packets_in(&json_lines(&out.stdout)), good_n);
}

#[test]
fn impossible_record_length_is_reported_with_its_offset() {
    let src = corpus().join("traffic/http__bro.org.pcap");
    let mut bytes = std::fs::read(&src).unwrap();
    let pcap = pcapfile::read(&bytes);
    // Corrupt the incl_len of the third record.
    let off: usize = 24 + pcap.records[0].len() + pcap.records[1].len();
    let le = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) == 0xa1b2_c3d4;
    let huge = if le {
        0x7fff_fff0u32.to_le_bytes()
    } else {
        0x7fff_fff0u32.to_be_bytes()
    };
    bytes[off + 8..off + 12].copy_from_slice(&huge);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pcap");
    std::fs::write(&bad, &bytes).unwrap();
    let out = run(&["analyze", "--flows", "-", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("bad.pcap: offset {off}: ")),
        "{stderr}"
    );
    assert_eq!(packets_in(&json_lines(&out.stdout)), 2);
}

#[test]
fn usage_and_config_errors_exit_2() {
    let good = corpus().join("traffic/dns53.pcap");
    let good = good.to_str().unwrap();
    assert_eq!(run(&["analyze"]).status.code(), Some(2));
    assert_eq!(
        run(&["analyze", "--no-such-flag", good]).status.code(),
        Some(2)
    );
    let out = run(&["analyze", "--filter", "tcp port", good]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("filter"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[flow]\n\nmax_flows = -1\n").unwrap();
    let out = run(&["analyze", "--config", cfg.to_str().unwrap(), good]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml:3: flow.max_flows"), "{stderr}");
}
