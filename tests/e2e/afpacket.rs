//! The daemon's `afpacket` backend (`TPACKET_V3` ring) on a veth between two test namespaces,
//! as in `live.rs`: what it counts equals `analyze` on the replayed captures (VLAN tags the
//! kernel takes off put back, the BPF filter applied in the kernel), and a ring too small for a
//! fast replay reports its kernel drops, so that received + dropped accounts for every packet
//! sent. Needs root, `ip` and `tcpreplay` (`BURSTWATCH_SKIP_LIVE=1` skips).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use burstwatch_tests::prom::{free_port, http_get};
use burstwatch_tests::{corpus, json_lines, repo, run_ok};

use crate::live::{
    daemon_config, live_tests_enabled, replay, replay_with, start_daemon, wait_for_log, Netns,
};

/// Packets per (conversation, VLAN stack), summed over flow records.
fn per_conversation_and_vlan(jsonl: &[u8]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in json_lines(jsonl) {
        let mut ends = [
            format!("{}:{}", r["src"], r["sport"]),
            format!("{}:{}", r["dst"], r["dport"]),
        ];
        ends.sort();
        let key = format!("{} {} {} vlan {}", r["proto"], ends[0], ends[1], r["vlan"]);
        *m.entry(key).or_default() +=
            r["packets_fwd"].as_u64().unwrap() + r["packets_rev"].as_u64().unwrap();
    }
    m
}

/// A sample (metric name with labels → value) of the daemon's `/metrics`.
fn scrape(target: SocketAddr) -> BTreeMap<String, f64> {
    let (status, body) = http_get(target, "/metrics").unwrap_or((0, String::new()));
    assert!(status == 200 || status == 0, "/metrics answered {status}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

/// Scrape until `done` holds for the interface's (packets, kernel drops), up to `limit`.
fn wait_for_counters(
    target: SocketAddr,
    iface: &str,
    limit: Duration,
    done: impl Fn(f64, f64) -> bool,
) -> (f64, f64) {
    let until = Instant::now() + limit;
    loop {
        let m = scrape(target);
        let packets = m
            .get(&format!(
                "burstwatch_interface_packets_total{{interface=\"{iface}\"}}"
            ))
            .copied()
            .unwrap_or(-1.0);
        let drops = m
            .get(&format!(
                "burstwatch_capture_drops_total{{interface=\"{iface}\",where=\"kernel\"}}"
            ))
            .copied()
            .unwrap_or(-1.0);
        if done(packets, drops) || Instant::now() >= until {
            return (packets, drops);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn afpacket_daemon_counts_every_packet_as_analyze_does_with_vlan_tags_restored() {
    if !live_tests_enabled() {
        return;
    }
    counts_every_packet_as_analyze_does(1);
}

/// Two rings in one fanout group, steered by the home-side address: together they read every
/// packet, and the flows are those of one ring (each subscriber's packets on one thread).
#[test]
fn afpacket_capture_threads_share_the_interface_and_count_every_packet_as_analyze_does() {
    if !live_tests_enabled() {
        return;
    }
    counts_every_packet_as_analyze_does(2);
}

fn counts_every_packet_as_analyze_does(threads: usize) {
    let dir = tempfile::tempdir().unwrap();
    let net = Netns::new(if threads == 1 { "a" } else { "f" });
    // Jumbo frames: the triple-tagged capture holds full 1500-byte IP packets.
    for (ns, dev) in [(&net.cap_ns, &net.cap_if), (&net.send_ns, &net.send_if)] {
        let ok = std::process::Command::new("ip")
            .args(["-n", ns, "link", "set", dev, "mtu", "9000"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "set the veth MTU");
    }
    let target = SocketAddr::from((net.mgmt_addr, free_port()));
    // The kernel's IPv6 multicast on the new link is filtered out in the kernel (the config's
    // `filter`), so what is counted is the replay alone.
    let cfg = daemon_config(
        dir.path(),
        &net.cap_if,
        &format!(
            "backend = \"afpacket\"\nmetrics_bind = \"{target}\"\ncapture_threads = {threads}\n"
        ),
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&net, &cfg, &log);
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while wait_for_log(&log, "capturing", Duration::from_secs(20))
        .matches("capturing")
        .count()
        < threads
    {
        assert!(
            std::time::Instant::now() < until,
            "{threads} rings not open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let captures = [
        repo().join("tests/data/sample.pcap"),
        // 802.1Q tags 30, 20, 10: the kernel takes the outer one off.
        corpus().join("encap/vlan-qinqinq.pcap"),
        // Tags 10 and 20 with priority and drop-eligible bits.
        corpus().join("encap/vlan-pcp-dei.pcapng"),
    ];
    let mut sent = 0;
    let mut offline = BTreeMap::new();
    for pcap in &captures {
        sent += replay(&net, pcap, "10");
        let out = run_ok(&["analyze", pcap.to_str().unwrap(), "--flows", "-", "-q"]);
        offline.extend(per_conversation_and_vlan(&out.stdout));
    }
    let (packets, drops) =
        wait_for_counters(target, &net.cap_if, Duration::from_secs(20), |p, _| {
            p >= sent as f64
        });
    assert_eq!(packets, sent as f64, "every replayed packet received");
    assert_eq!(drops, 0.0, "no kernel drops at this rate");
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    // Each ring says what it read when it stops: with a fanout group every ring had a share.
    let text = std::fs::read_to_string(&log).unwrap();
    let per_ring: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("capture stopped"))
        .filter_map(|l| {
            l.split("packets=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(per_ring.len(), threads, "{text}");
    assert_eq!(per_ring.iter().sum::<u64>(), sent, "{text}");
    assert!(per_ring.iter().all(|&n| n > 0), "{per_ring:?}");

    let live = per_conversation_and_vlan(&std::fs::read(dir.path().join("flows.jsonl")).unwrap());
    assert_eq!(live.values().sum::<u64>(), sent);
    assert!(
        offline.keys().any(|k| k.ends_with("vlan [30,20,10]")),
        "{offline:?}"
    );
    assert_eq!(
        live, offline,
        "same packets per conversation and VLAN stack as analyze\n{text}"
    );
}

#[test]
fn afpacket_ring_overflow_is_counted_as_kernel_drops() {
    if !live_tests_enabled() {
        return;
    }
    ring_overflow_is_counted(1);
}

/// Two tiny rings in one fanout group: each thread's drops are its own series, and they add up
/// to the interface's.
#[test]
fn afpacket_overflow_of_two_fanout_rings_is_counted_per_thread() {
    if !live_tests_enabled() {
        return;
    }
    ring_overflow_is_counted(2);
}

/// The per-thread series of `family` (`packets` or `drops`) on `iface`, by thread.
fn per_thread(m: &BTreeMap<String, f64>, family: &str, iface: &str) -> Vec<f64> {
    let prefix =
        format!("burstwatch_capture_thread_{family}_total{{interface=\"{iface}\",thread=\"");
    m.iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, v)| *v)
        .collect()
}

fn ring_overflow_is_counted(threads: usize) {
    let dir = tempfile::tempdir().unwrap();
    let net = Netns::new(if threads == 1 { "o" } else { "p" });
    let target = SocketAddr::from((net.mgmt_addr, free_port()));
    // The smallest ring: two blocks of one page; a block holds two or three full-size frames.
    let cfg = daemon_config(
        dir.path(),
        &net.cap_if,
        &format!(
            "backend = \"afpacket\"\nmetrics_bind = \"{target}\"\n\
             ring_block_kib = 4\nring_blocks = 2\nring_block_timeout_ms = 1\n\
             capture_threads = {threads}\nworkers = {threads}\n"
        ),
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&net, &cfg, &log);
    wait_for_log(&log, "capturing", Duration::from_secs(20));

    let sample = repo().join("tests/data/sample.pcap");
    let sent = replay_with(&net, &sample, &["--topspeed", "--loop", "20"]);
    assert!(sent >= 15_000);
    // Received + dropped accounts for every packet sent, once the counters settle.
    let (packets, drops) =
        wait_for_counters(target, &net.cap_if, Duration::from_secs(20), |p, d| {
            p >= 0.0 && d >= 0.0 && p + d >= sent as f64
        });
    assert!(
        drops > 0.0,
        "a two-page ring at top speed drops, and says so: {packets} received, {drops} dropped of {sent}"
    );
    assert!(packets > 0.0, "{packets}");
    assert_eq!(
        packets + drops,
        sent as f64,
        "received {packets} + dropped {drops} = sent {sent}"
    );
    // Each thread's series, adding up to the interface's.
    let m = scrape(target);
    let (tp, td) = (
        per_thread(&m, "packets", &net.cap_if),
        per_thread(&m, "drops", &net.cap_if),
    );
    assert_eq!((tp.len(), td.len()), (threads, threads), "{m:?}");
    assert_eq!(tp.iter().sum::<f64>(), packets, "{tp:?}");
    assert_eq!(td.iter().sum::<f64>(), drops, "{td:?}");
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    // The flow records hold exactly the packets received.
    let flows = std::fs::read(dir.path().join("flows.jsonl")).unwrap();
    let counted: u64 = per_conversation_and_vlan(&flows).values().sum();
    assert_eq!(counted as f64, packets);
}

#[test]
fn afpacket_packets_still_in_the_ring_at_sigterm_are_counted() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let net = Netns::new("t");
    let target = SocketAddr::from((net.mgmt_addr, free_port()));
    // A long block timeout: the replay's last packets wait in a block the kernel has not
    // handed over yet when SIGTERM comes.
    let cfg = daemon_config(
        dir.path(),
        &net.cap_if,
        &format!(
            "backend = \"afpacket\"\nmetrics_bind = \"{target}\"\nring_block_timeout_ms = 1500\n"
        ),
    );
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&net, &cfg, &log);
    wait_for_log(&log, "capturing", Duration::from_secs(20));
    let sample = repo().join("tests/data/sample.pcap");
    let sent = replay_with(&net, &sample, &["--topspeed"]);
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let flows = std::fs::read(dir.path().join("flows.jsonl")).unwrap();
    let counted: u64 = per_conversation_and_vlan(&flows).values().sum();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        counted, sent,
        "every packet sent before SIGTERM is in the flow records:\n{text}"
    );
}
