//! One small simulator capture with alerts, shared by the privacy, carve and selection tests,
//! and its un-pseudonymised analysis.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burstwatch_tests::{json_lines, run_ok};

/// The capture, its clear-text flows and alerts, and the run's standard error.
pub struct SimCapture {
    _dir: tempfile::TempDir,
    /// Directory holding the files below (tests may add their own files).
    pub dir: PathBuf,
    /// The capture (about 100 MB, a few alerts).
    pub pcap: PathBuf,
    /// `analyze --flows` of the capture.
    pub flows: Vec<serde_json::Value>,
    /// `analyze --alerts` of the capture.
    pub alerts: Vec<serde_json::Value>,
    /// Raw bytes of every output of the clear run (flows, alerts, stats, stderr).
    pub outputs: Vec<u8>,
}

/// Analyzes `pcap` with `extra` arguments; returns flows, alerts, stats and stderr bytes.
pub fn analyze(dir: &Path, tag: &str, pcap: &Path, extra: &[&str]) -> [Vec<u8>; 4] {
    let f = dir.join(format!("{tag}.flows.jsonl"));
    let a = dir.join(format!("{tag}.alerts.jsonl"));
    let s = dir.join(format!("{tag}.stats.json"));
    let mut args = vec![
        "analyze",
        pcap.to_str().unwrap(),
        "--flows",
        f.to_str().unwrap(),
        "--alerts",
        a.to_str().unwrap(),
        "--stats",
        s.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = run_ok(&args);
    [
        std::fs::read(f).unwrap(),
        std::fs::read(a).unwrap(),
        std::fs::read(s).unwrap(),
        out.stderr,
    ]
}

/// The shared capture (simulated on first use).
pub fn sim() -> &'static SimCapture {
    static SIM: OnceLock<SimCapture> = OnceLock::new();
    SIM.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let pcap = dir.join("sim.pcap");
        run_ok(&[
            "simulate",
            "-o",
            pcap.to_str().unwrap(),
            "--seed",
            "2",
            "--subscribers",
            "50",
            "--duration",
            "900",
            "--size",
            "100M",
            "-q",
        ]);
        let [flows, alerts, stats, stderr] = analyze(&dir, "clear", &pcap, &[]);
        let outputs = [flows.as_slice(), &alerts, &stats, &stderr].concat();
        let sim = SimCapture {
            _dir: tmp,
            dir,
            pcap,
            flows: json_lines(&flows),
            alerts: json_lines(&alerts),
            outputs,
        };
        assert!(sim.alerts.len() >= 2, "the capture should raise alerts");
        sim
    })
}

/// Whether an address lies in the default home networks (RFC 1918, 100.64.0.0/10, fc00::/7).
pub fn is_home(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 10
                || (o[0] == 172 && o[1] & 0xf0 == 16)
                || (o[0] == 192 && o[1] == 168)
                || (o[0] == 100 && o[1] & 0xc0 == 64)
        }
        std::net::IpAddr::V6(v6) => v6.octets()[0] & 0xfe == 0xfc,
    }
}

/// Every token of `text` that parses as an IP address (tokens split on characters that
/// cannot be part of an address).
pub fn addresses_in(text: &[u8]) -> Vec<std::net::IpAddr> {
    String::from_utf8_lossy(text)
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .flat_map(|tok| {
            // "[v6]:port" and "v4:port" in the alert table: also try without the port.
            let trimmed = tok.trim_matches(|c| c == '.' || c == ':');
            [
                trimmed.to_string(),
                trimmed
                    .rsplit_once(':')
                    .map(|(a, _)| a.to_string())
                    .unwrap_or_default(),
            ]
        })
        .filter_map(|t| t.parse().ok())
        .collect()
}
