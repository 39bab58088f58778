//! Archive selection and progress end to end: glob and directory inputs, `--since`/`--until`
//! and `--host`/`--endpoint` checked against the flow records of the whole capture and against
//! tshark, and the progress bar on a terminal.

use std::collections::BTreeMap;
use std::process::Command;

use burstwatch_tests::{bin, json_lines};

use crate::simcap::{analyze, is_home, sim};

/// Flow identity and volume, without the end reason (which depends on when packet time
/// reaches a timeout, and so on which other packets were selected).
fn flow_keys(flows: &[serde_json::Value]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for f in flows {
        let k = format!(
            "{} {}:{} {}:{} {} {} {}/{} {}/{}",
            f["proto"],
            f["src"],
            f["sport"],
            f["dst"],
            f["dport"],
            f["first_ts"],
            f["last_ts"],
            f["packets_fwd"],
            f["packets_rev"],
            f["bytes_fwd"],
            f["bytes_rev"]
        );
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[test]
fn host_and_endpoint_selectors_keep_exactly_the_flows_of_their_addresses() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let alert = &s.alerts[0];
    let (host, endpoint) = (
        alert["src"].as_str().unwrap(),
        alert["dst"].as_str().unwrap(),
    );
    let touches = |f: &serde_json::Value, a: &str| f["src"] == a || f["dst"] == a;
    let expect = |keep: &dyn Fn(&serde_json::Value) -> bool| {
        let v: Vec<serde_json::Value> = s.flows.iter().filter(|f| keep(f)).cloned().collect();
        assert!(!v.is_empty());
        flow_keys(&v)
    };
    let got = |tag: &str, args: &[&str]| {
        flow_keys(&json_lines(&analyze(dir.path(), tag, &s.pcap, args)[0]))
    };

    assert_eq!(
        got("host", &["--host", host]),
        expect(&|f| touches(f, host))
    );
    assert_eq!(
        got("endpoint", &["--endpoint", endpoint]),
        expect(&|f| touches(f, endpoint))
    );
    assert_eq!(
        got("pair", &["--host", host, "--endpoint", endpoint]),
        expect(&|f| touches(f, host) && touches(f, endpoint))
    );
    // A prefix: every home address of the capture's IPv4 home space.
    let v4_home = |f: &serde_json::Value| {
        ["src", "dst"].iter().any(|k| {
            f[*k]
                .as_str()
                .unwrap()
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_ipv4() && is_home(a))
        })
    };
    assert_eq!(
        got(
            "prefixes",
            &[
                "--host",
                "10.0.0.0/8",
                "--host",
                "172.16.0.0/12",
                "--host",
                "192.168.0.0/16",
                "--host",
                "100.64.0.0/10"
            ]
        ),
        expect(&v4_home)
    );
}

#[test]
fn time_window_counts_the_packets_tshark_counts() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let first = s
        .flows
        .iter()
        .map(|f| f["first_ts"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    let (since, until) = (first.floor() + 100.0, first.floor() + 160.0);
    let [flows, _, stats, _] = analyze(
        dir.path(),
        "window",
        &s.pcap,
        &[
            "--since",
            &format!("{since}"),
            "--until",
            &format!("{until}"),
        ],
    );
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&s.pcap)
        .args(["-T", "fields", "-e", "frame.len", "-Y"])
        .arg(format!(
            "frame.time_epoch >= {since} && frame.time_epoch <= {until}"
        ))
        .output()
        .expect("tshark installed");
    let tshark = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
    assert!(tshark > 1000);
    assert_eq!(stats["ip_packets"], tshark);
    assert_eq!(
        stats["filtered"].as_u64().unwrap() + tshark,
        stats["packets"].as_u64().unwrap()
    );
    for f in json_lines(&flows) {
        let (a, b) = (
            f["first_ts"].as_f64().unwrap(),
            f["last_ts"].as_f64().unwrap(),
        );
        assert!(a >= since && b <= until, "{f}");
    }
    // The same window in RFC 3339 gives the same records.
    let rfc = |t: f64| {
        let out = Command::new("date")
            .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let [flows2, ..] = analyze(
        dir.path(),
        "window3339",
        &s.pcap,
        &["--since", &rfc(since), "--until", &rfc(until)],
    );
    assert_eq!(flows2, flows);
}

#[test]
fn globs_and_directories_read_the_same_packets() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let pattern = s.dir.join("sim*.pcap");
    let [by_glob, ..] = analyze(dir.path(), "glob", &pattern, &[]);
    let [by_dir, ..] = analyze(dir.path(), "dir", &s.dir, &[]);
    let clear = std::fs::read(s.dir.join("clear.flows.jsonl")).unwrap();
    assert_eq!(by_glob, clear);
    assert_eq!(by_dir, clear);
    let none = burstwatch_tests::run(&["analyze", s.dir.join("nothing*.pcap").to_str().unwrap()]);
    // An input that names nothing is an input error, not a usage error.
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no file matches"));
}

#[test]
fn progress_bar_on_a_terminal_only() {
    let s = sim();
    // util-linux `script` runs the command on a pseudo-terminal and copies what it printed.
    let cmd = format!(
        "{} analyze {} --flows /dev/null",
        bin().display(),
        s.pcap.display()
    );
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .output()
        .expect("script (util-linux) installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains("ETA") && tty.contains("packets/s") && tty.contains("MiB"),
        "{tty}"
    );
    // Not a terminal: no bar.
    let piped =
        burstwatch_tests::run(&["analyze", s.pcap.to_str().unwrap(), "--flows", "/dev/null"]);
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("ETA"));
    // --quiet on a terminal: nothing at all.
    let cmd = format!("{cmd} --quiet");
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
