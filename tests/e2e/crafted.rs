//! Alerts on small hand-built captures: enrichment from the bundled test databases, watch and
//! allow lists, and their errors. Independent of the simulator, so each case is exact.

use std::path::{Path, PathBuf};

use burstwatch_tests::{json_lines, repo, run};

/// An Ethernet/IPv4/UDP frame (checksums left 0: burstwatch does not verify them).
pub(crate) fn frame(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, ip_len: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let udp_len = ip_len - 20;
    ip.extend_from_slice(&sport.to_be_bytes());
    ip.extend_from_slice(&dport.to_be_bytes());
    ip.extend_from_slice(&udp_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.resize(usize::from(ip_len), 0xab);
    f.extend_from_slice(&ip);
    f
}

/// A classic little-endian µs pcap of (seconds, micros, frame).
pub(crate) fn pcap(records: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (s, us, f) in records {
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&us.to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// A subscriber 10.0.0.5 sends 3 MB to 192.0.2.9:9001 in two seconds (plus a few replies).
pub(crate) fn burst_capture(dir: &Path) -> PathBuf {
    let t0 = 1_767_225_600u32;
    let mut recs = Vec::new();
    for i in 0..2200u32 {
        let us = i * 900;
        recs.push((
            t0 + us / 1_000_000,
            us % 1_000_000,
            frame([10, 0, 0, 5], [192, 0, 2, 9], 40_000, 9001, 1400),
        ));
        if i % 50 == 0 {
            recs.push((
                t0 + us / 1_000_000,
                us % 1_000_000 + 1,
                frame([192, 0, 2, 9], [10, 0, 0, 5], 9001, 40_000, 60),
            ));
        }
    }
    let path = dir.join("burst.pcap");
    std::fs::write(&path, pcap(&recs)).unwrap();
    path
}

fn analyze(
    dir: &Path,
    capture: &Path,
    config: &str,
    extra: &[&str],
) -> (Option<i32>, Vec<serde_json::Value>, String) {
    let cfg = dir.join("c.toml");
    // A one-second look-back: the whole capture counts as warmed up.
    std::fs::write(&cfg, format!("[detect]\nlookback_seconds = 1\n{config}")).unwrap();
    let mut args = vec![
        "analyze",
        capture.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--alerts",
        "-",
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    (
        out.status.code(),
        json_lines(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn db(name: &str) -> String {
    repo()
        .join("tests/data")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn alerts_carry_asn_and_country_from_the_databases() {
    let dir = tempfile::tempdir().unwrap();
    let cap = burst_capture(dir.path());
    let (asn, country) = (db("test-asn.mmdb"), db("test-country.mmdb"));
    let (code, alerts, stderr) = analyze(
        dir.path(),
        &cap,
        "",
        &["--asn-db", &asn, "--country-db", &country],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(alerts.len(), 1, "{stderr}");
    let a = &alerts[0];
    assert_eq!(
        (a["kind"].as_str(), a["src"].as_str(), a["dst"].as_str()),
        (Some("burst"), Some("10.0.0.5"), Some("192.0.2.9"))
    );
    assert_eq!(a["dst_port"], 9001);
    assert_eq!(a["proto"], "udp");
    assert_eq!(a["endpoint"]["asn"], 64500);
    assert_eq!(a["endpoint"]["as_org"], "Example Documentation Net A");
    assert_eq!(a["endpoint"]["country"], "XA");
    assert_eq!(a["endpoint"]["prevalence"], 1);
    // One subscriber reached the AS, and the output schema allows the count.
    assert_eq!(a["endpoint"]["asn_prevalence"], 1);
    assert_eq!(a["endpoint"]["asn_popular"], false);
    let line = serde_json::to_vec(a).unwrap();
    assert_eq!(
        crate::alerts::check_schema("deploy/schema/alert.schema.json", &line),
        1
    );
    assert_eq!(a["bytes_out"], 2200 * 1400);
    let sum: f64 = a["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["contribution"].as_f64().unwrap())
        .sum();
    assert!(
        (sum - a["score"].as_f64().unwrap()).abs() < 1e-3,
        "contributions add up to the score"
    );
}

#[test]
fn allow_lists_suppress_and_watch_lists_raise() {
    let dir = tempfile::tempdir().unwrap();
    let cap = burst_capture(dir.path());
    let asn = db("test-asn.mmdb");
    let (_, plain, _) = analyze(dir.path(), &cap, "", &[]);
    assert_eq!(plain.len(), 1);
    let (code, allowed, stderr) = analyze(
        dir.path(),
        &cap,
        "[detect.allow]\nasns = [64500]\n",
        &["--asn-db", &asn],
    );
    assert_eq!(code, Some(0));
    assert!(allowed.is_empty(), "allow-listed ASN alerted");
    assert!(stderr.contains("1 allow-listed"), "{stderr}");
    let (_, allowed_prefix, _) = analyze(
        dir.path(),
        &cap,
        "[detect.allow]\nprefixes = [\"192.0.2.0/24\"]\n",
        &[],
    );
    assert!(allowed_prefix.is_empty());
    let (_, watched, _) = analyze(
        dir.path(),
        &cap,
        "[detect.watch]\ncountries = [\"XA\"]\n",
        &["--country-db", &db("test-country.mmdb")],
    );
    assert_eq!(watched.len(), 1);
    assert_eq!(watched[0]["endpoint"]["watched"], true);
    assert!(watched[0]["score"].as_f64().unwrap() > plain[0]["score"].as_f64().unwrap());
}

#[test]
fn home_net_flag_decides_direction() {
    let dir = tempfile::tempdir().unwrap();
    let cap = burst_capture(dir.path());
    // With 192.0.2.0/24 as the only home net, 10.0.0.5 is the outside: the traffic is downstream.
    let (code, alerts, _) = analyze(dir.path(), &cap, "", &["--home-net", "192.0.2.0/24"]);
    assert_eq!(code, Some(0));
    assert!(alerts.is_empty());
    assert_eq!(
        run(&[
            "analyze",
            cap.to_str().unwrap(),
            "--home-net",
            "not-a-prefix"
        ])
        .status
        .code(),
        Some(2)
    );
}

#[test]
fn a_bad_database_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let cap = burst_capture(dir.path());
    let sample = repo().join("tests/data/sample.pcap");
    let (code, _, stderr) = analyze(
        dir.path(),
        &cap,
        "",
        &["--asn-db", sample.to_str().unwrap()],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not a MaxMind DB"), "{stderr}");
    let (code, _, stderr) = analyze(
        dir.path(),
        &cap,
        "",
        &["--country-db", &db("test-asn.mmdb")],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("country database"), "{stderr}");
}
