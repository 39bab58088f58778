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
