//! `burstwatch analyze` behaviour on good inputs: gzip, rotated archives, filters, summary.

use std::collections::BTreeMap;
use std::io::Write;

use burstwatch_tests::{corpus, json_lines, run, run_ok};

use crate::pcapfile;

/// Flow records with their end reason and record order removed: conversation -> packets.
fn per_flow(flows: &[serde_json::Value]) -> BTreeMap<String, (u64, u64, u64, u64)> {
    let mut m = BTreeMap::new();
    for r in flows {
        let key = format!(
            "{} {}:{} {}:{}",
            r["proto"], r["src"], r["sport"], r["dst"], r["dport"]
        );
        let e = m.entry(key).or_insert((0, 0, 0, 0));
        e.0 += r["packets_fwd"].as_u64().unwrap();
        e.1 += r["packets_rev"].as_u64().unwrap();
        e.2 += r["bytes_fwd"].as_u64().unwrap();
        e.3 += r["bytes_rev"].as_u64().unwrap();
    }
    m
}

fn analyze_flows(args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["analyze", "--quiet", "--flows", "-"];
    all.extend_from_slice(args);
    let out = run_ok(&all);
    json_lines(&out.stdout)
}

#[test]
fn gzip_compressed_captures_give_the_same_flows() {
    let src = corpus().join("traffic/http__bro.org.pcap");
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("rotated.pcap.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&src).unwrap()).unwrap();
    enc.finish().unwrap();
    let plain = analyze_flows(&[src.to_str().unwrap()]);
    let packed = analyze_flows(&[gz.to_str().unwrap()]);
    assert!(!plain.is_empty());
    assert_eq!(plain, packed);
}

#[test]
fn rotated_files_in_a_directory_read_as_one_stream() {
    let src = corpus().join("traffic/http__bro.org.pcap");
    let bytes = std::fs::read(&src).unwrap();
    let pcap = pcapfile::read(&bytes);
    let n = pcap.records.len();
    assert!(n > 30);
    let dir = tempfile::tempdir().unwrap();
    // Name the parts so that name order is NOT time order: the reader must sort by time.
    let names = ["c.pcap", "a.pcap", "b.pcap"];
    for (i, chunk) in pcap.records.chunks(n.div_ceil(3)).enumerate() {
        std::fs::write(
            dir.path().join(names[i]),
            pcapfile::write(&pcap.header, chunk),
        )
        .unwrap();
    }
    let whole = analyze_flows(&[src.to_str().unwrap()]);
    let parts = analyze_flows(&[dir.path().to_str().unwrap()]);
    assert_eq!(whole, parts, "same records, same order");
}

#[test]
fn bpf_filter_works_on_files() {
    // A capture with TCP/443 and much else (UDP media, DNS): the filter must drop something,
    // and keep exactly the packets tcpdump's own BPF keeps.
    let src = corpus().join("traffic/zoom.pcap");
    let src = src.to_str().unwrap();
    let packets = |flows: &[serde_json::Value]| -> u64 {
        flows
            .iter()
            .map(|r| r["packets_fwd"].as_u64().unwrap() + r["packets_rev"].as_u64().unwrap())
            .sum()
    };
    let all = analyze_flows(&[src]);
    let tcpdump = std::process::Command::new("tcpdump")
        .args(["-nn", "-r", src, "tcp port 443"])
        .output()
        .expect("tcpdump runs");
    assert!(tcpdump.status.success());
    let want = String::from_utf8_lossy(&tcpdump.stdout).lines().count() as u64;
    assert!(
        want > 0 && want < packets(&all),
        "{want} of {}",
        packets(&all)
    );
    assert!(all.iter().any(|r| r["proto"] == "udp"));

    let filtered = analyze_flows(&["--filter", "tcp port 443", src]);
    assert_eq!(packets(&filtered), want);
    assert!(filtered
        .iter()
        .all(|r| r["proto"] == "tcp" && (r["sport"] == 443 || r["dport"] == 443)));
    assert_eq!(
        per_flow(&filtered).len(),
        all.iter()
            .filter(|r| r["proto"] == "tcp" && (r["sport"] == 443 || r["dport"] == 443))
            .count()
    );
}

#[test]
fn summary_on_stderr_names_the_totals() {
    let src = corpus().join("traffic/dns53.pcap");
    let out = run(&["analyze", src.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "packets",
        "flow records",
        "undecodable",
        "capture time",
        "packets/s",
    ] {
        assert!(stderr.contains(want), "summary lacks {want:?}:\n{stderr}");
    }
}

#[test]
fn records_carry_the_documented_fields() {
    let src = corpus().join("encap/tunnels__geneve.pcap");
    let flows = analyze_flows(&[src.to_str().unwrap()]);
    assert!(!flows.is_empty());
    for r in &flows {
        for key in [
            "proto",
            "src",
            "sport",
            "dst",
            "dport",
            "first_ts",
            "last_ts",
            "packets_fwd",
            "packets_rev",
            "bytes_fwd",
            "bytes_rev",
            "end_reason",
        ] {
            assert!(r.get(key).is_some(), "missing {key} in {r}");
        }
        assert!(r["first_ts"].as_f64().unwrap() <= r["last_ts"].as_f64().unwrap());
    }
    let tunnelled: Vec<_> = flows.iter().filter(|r| r.get("tunnel").is_some()).collect();
    assert!(
        !tunnelled.is_empty(),
        "geneve flows carry their tunnel layer"
    );
    let layer = &tunnelled[0]["tunnel"][0];
    assert_eq!(layer["kind"], "geneve");
    assert_eq!(layer["outer_dport"], 6081);
}

#[test]
fn read_option_is_the_same_as_naming_the_input_and_burstwatch_r_is_analyze() {
    let a = corpus().join("traffic/http__bro.org.pcap");
    let b = corpus().join("traffic/443-firefox.pcap");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let named = per_flow(&analyze_flows(&[a, b]));
    assert!(!named.is_empty());
    assert_eq!(per_flow(&analyze_flows(&["-r", a, "--read", b])), named);
    assert_eq!(per_flow(&analyze_flows(&[b, "-r", a])), named);
    // `burstwatch -r FILE` runs analyze with its defaults: the summary on standard error.
    let short = run(&["-r", a, "-r", b]);
    let long = run(&["analyze", a, b]);
    assert_eq!(short.status.code(), Some(0));
    let summary = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| !l.contains("wall time"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(
        summary(&short)[0].contains("2 file(s)"),
        "{:?}",
        summary(&short)
    );
    assert_eq!(summary(&short), summary(&long));
    // Without a command only -r is taken, and -r does not go before a command: usage errors.
    for args in [
        vec!["-r", a, "--alerts", "-"],
        vec!["-r", a, "analyze", b],
        vec![],
    ] {
        assert_eq!(run(&args).status.code(), Some(2), "{args:?}");
    }
}
