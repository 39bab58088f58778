//! Real captures, with the home network set as an operator would: command and control traffic
//! is alerted, busy benign traffic stays quiet or is explained.
//!
//! * Merlin C2 over QUIC: one UDP connection, a check-in every 15 s (13 in 184 s), with
//!   larger task exchanges right after two of them. `--home-net` is the infected host.
//! * Busy benign captures (calls, messaging, video, browsing): no alert. A benign periodic
//!   keep-alive in a capture of one subscriber is rare by construction (one subscriber talks
//!   to everything); `discord.pcap`'s voice keep-alive every 60 s and `wechat.pcap`'s TLS
//!   keep-alive every 16 s are such cases and must say so in their reasons (interval, events
//!   seen and needed, prevalence 1).
//! * Upload bursts of random rate, length and start (fixed seed) written next to six of those
//!   captures and read with them: each is found, with its start and volume, and alone.

use burstwatch_tests::{corpus, run_ok};

/// Alerts of `analyze` on one corpus capture with these home networks, as JSON values, and the
/// summary on standard error.
fn analyze(capture: &str, home: &[&str]) -> (Vec<serde_json::Value>, String) {
    let path = corpus().join(capture);
    let mut args = vec!["analyze", "--alerts", "-"];
    for h in home {
        args.push("--home-net");
        args.push(h);
    }
    let p = path.to_string_lossy().to_string();
    args.push(&p);
    let out = run_ok(&args);
    let alerts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    (alerts, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn reason(a: &serde_json::Value, name: &str) -> f64 {
    a["reasons"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["name"] == name))
        .and_then(|x| x["value"].as_f64())
        .unwrap_or_else(|| panic!("no reason {name} in {a}"))
}

#[test]
fn merlin_c2_over_quic_is_a_beacon_with_the_infected_host_as_home() {
    let (alerts, summary) = analyze(
        "traffic/quic__merlinc2_Zeek_example.pcapng",
        &["10.0.0.4/32"],
    );
    assert_eq!(alerts.len(), 1, "{alerts:?}\n{summary}");
    let a = &alerts[0];
    assert_eq!(a["kind"], "beacon");
    assert_eq!(
        (a["src"].as_str(), a["dst"].as_str()),
        (Some("10.0.0.4"), Some("24.199.110.233"))
    );
    assert_eq!(
        (a["dst_port"].as_u64(), a["proto"].as_str()),
        (Some(443), Some("udp"))
    );
    let interval = reason(a, "interval");
    assert!((14.0..16.0).contains(&interval), "{a}");
    assert!(reason(a, "events") >= reason(a, "events_needed"), "{a}");
    assert!(
        reason(a, "regularity") >= reason(a, "regularity_needed"),
        "{a}"
    );
}

#[test]
fn busy_benign_captures_stay_quiet() {
    let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
    for capture in [
        "traffic/teams.pcap",
        "traffic/webex.pcap",
        "traffic/netflix.pcap",
        "traffic/telegram.pcap",
        "traffic/whatsapp_login_call.pcap",
        "traffic/dnscrypt-v1-and-resolver-pings.pcap",
        "traffic/instagram.pcap",
    ] {
        let (alerts, summary) = analyze(capture, &private);
        assert!(alerts.is_empty(), "{capture}: {alerts:?}\n{summary}");
    }
}

/// A keep-alive inside one TLS connection (16 s, 14 polls in an hour of messaging): a beacon
/// by shape, rare only because the capture holds one subscriber, and scored low.
#[test]
fn a_keep_alive_inside_one_connection_is_explained_and_scored_low() {
    let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
    let (alerts, summary) = analyze("traffic/wechat.pcap", &private);
    assert!(alerts.len() <= 1, "{alerts:?}\n{summary}");
    for a in &alerts {
        assert_eq!(a["kind"], "beacon", "{a}");
        assert_eq!(a["severity"], "low", "{a}");
        assert!((12.0..20.0).contains(&reason(a, "interval")), "{a}");
        assert!(reason(a, "events") >= reason(a, "events_needed"), "{a}");
        assert_eq!(a["endpoint"]["prevalence"], 1, "{a}");
    }
}

#[test]
fn a_benign_keep_alive_of_one_subscriber_is_explained() {
    let (alerts, summary) = analyze("traffic/discord.pcap", &["192.168.0.0/16"]);
    assert_eq!(alerts.len(), 1, "{alerts:?}\n{summary}");
    let a = &alerts[0];
    assert_eq!(a["kind"], "beacon");
    assert_eq!(a["proto"], "udp");
    assert!((55.0..65.0).contains(&reason(a, "interval")), "{a}");
    assert!(reason(a, "events") >= reason(a, "events_needed"), "{a}");
    // Rare only because the capture holds one subscriber: the alert says so.
    assert_eq!(a["endpoint"]["prevalence"], 1);
}

/// A classic pcap (Ethernet, microseconds) of one TCP upload from `home` to `ep`:443 at `mbit`
/// for `secs` seconds from `start` (s), 1460-byte segments, an ACK for about every second one
/// back.
pub(crate) fn upload_pcap(
    path: &std::path::Path,
    start: f64,
    home: [u8; 4],
    ep: [u8; 4],
    secs: f64,
    mbit: f64,
) -> u64 {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut frame =
        |t: f64, src: [u8; 4], dst: [u8; 4], ports: (u16, u16), payload: usize, flags: u8| {
            let ip_len = 40 + payload;
            let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
            f.extend_from_slice(&[0x45, 0]);
            f.extend_from_slice(&(ip_len as u16).to_be_bytes());
            f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
            f.extend_from_slice(&src);
            f.extend_from_slice(&dst);
            let sum = f[14..34]
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum::<u32>();
            let sum = !(((sum >> 16) + (sum & 0xffff)) as u16);
            f[24..26].copy_from_slice(&sum.to_be_bytes());
            f.extend_from_slice(&ports.0.to_be_bytes());
            f.extend_from_slice(&ports.1.to_be_bytes());
            f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
            f.resize(14 + ip_len, 0);
            let us = (t * 1e6).round() as u64;
            out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&f);
        };
    let (up, down) = ((51515, 443), (443, 51515));
    frame(start, home, ep, up, 0, 0x02);
    frame(start + 0.02, ep, home, down, 0, 0x12);
    let n = (mbit * 1e6 / 8.0 * secs / 1460.0) as u64;
    let dt = secs / n as f64;
    for i in 0..n {
        let t = start + 0.03 + i as f64 * dt;
        frame(t, home, ep, up, 1460, 0x18);
        // About every second segment is acknowledged, irregularly, as delayed ACKs come: a
        // strict data-data-ACK cycle would alias with an exporter sampling every Nth packet.
        if i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 63 == 1 {
            frame(t + dt / 2.0, ep, home, down, 0, 0x10);
        }
    }
    frame(start + 0.03 + secs, home, ep, up, 0, 0x11);
    std::fs::write(path, out).unwrap();
    n * 1500
}

/// An upload put into a real capture: who sent it to where, when (s) and how many bytes.
pub(crate) struct Injected {
    pub home: [u8; 4],
    pub ep: [u8; 4],
    pub start: f64,
    pub bytes: u64,
}

impl Injected {
    /// `alerts` are exactly one: this upload as a burst, starting within `within` seconds of
    /// its start once `shift` (s) is taken off, with its bytes to `tol` (a fraction).
    pub(crate) fn is_the_only_alert(
        &self,
        alerts: &[serde_json::Value],
        shift: f64,
        within: f64,
        tol: f64,
        what: &str,
    ) {
        assert_eq!(alerts.len(), 1, "{what}\n{alerts:?}");
        let a = &alerts[0];
        let ip = |o: [u8; 4]| std::net::Ipv4Addr::from(o).to_string();
        assert_eq!(a["kind"], "burst", "{what}\n{a}");
        assert_eq!(a["src"], ip(self.home), "{what}\n{a}");
        assert_eq!(a["dst"], ip(self.ep), "{what}\n{a}");
        let a_start = a["start_ts"].as_f64().unwrap() - shift;
        assert!(
            (a_start - self.start).abs() <= within,
            "{what} (shift {shift:.3} s)\n{a}"
        );
        let (out, sent) = (a["bytes_out"].as_f64().unwrap(), self.bytes as f64);
        assert!(
            (out - sent).abs() <= tol * sent,
            "{what}: {} bytes sent\n{a}",
            self.bytes
        );
    }
}

/// First and last packet time of a capture (s), by `capinfos`.
pub(crate) fn span_of(path: &std::path::Path) -> (f64, f64) {
    let out = std::process::Command::new("capinfos")
        .args(["-a", "-e", "-S", "-T", "-r"])
        .arg(path)
        .output()
        .expect("capinfos (Debian package wireshark-common, with tshark)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<f64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(f.len() >= 2, "capinfos: {text}");
    (f[f.len() - 2], f[f.len() - 1])
}

/// Operator's view of the mission: a short, high-rate upload to an endpoint nobody else talks
/// to, hidden in real traffic. Bursts of random rate (8-100 Mbit/s), length (2-20 s, at least
/// 4 MB) and start are put into busy benign captures (read together with the capture, as two
/// input files); each is found with its own start and volume, and it is the only alert.
#[test]
fn a_burst_injected_into_real_traffic_is_found_and_is_the_only_alert() {
    let private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];
    let dir = tempfile::tempdir().unwrap();
    // A fixed seed: the same bursts every run, spread widely.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let captures = [
        "traffic/teams.pcap",
        "traffic/webex.pcap",
        "traffic/netflix.pcap",
        "traffic/telegram.pcap",
        "traffic/whatsapp_login_call.pcap",
        "traffic/instagram.pcap",
    ];
    for (n, capture) in captures.iter().enumerate() {
        let real = corpus().join(capture);
        let (first, last) = span_of(&real);
        let secs = 2.0 + rnd() * 18.0;
        let mbit = (8.0 + rnd() * 92.0).max(32.0 / secs);
        // Anywhere in the capture (or just after it, for the shortest ones).
        let start = first + rnd() * (last - first - secs).max(1.0);
        let home = [192, 168, 200 + n as u8, 2 + (rnd() * 250.0) as u8];
        let ep = [198, 18, (rnd() * 255.0) as u8, 1 + (rnd() * 250.0) as u8];
        let burst = dir.path().join(format!("burst-{n}.pcap"));
        let bytes = upload_pcap(&burst, start.floor(), home, ep, secs, mbit);
        let mut args = vec!["analyze", "--alerts", "-"];
        for h in private {
            args.extend(["--home-net", h]);
        }
        let (r, b) = (real.to_string_lossy(), burst.to_string_lossy());
        args.extend([&*r, &*b]);
        let out = run_ok(&args);
        let what = format!(
            "{capture}: {mbit:.1} Mbit/s for {secs:.1} s from {start:.0}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let alerts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let burst = Injected {
            home,
            ep,
            start: start.floor(),
            bytes,
        };
        burst.is_the_only_alert(&alerts, 0.0, 1.0, 0.02, &what);
    }
}
