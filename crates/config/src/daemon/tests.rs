#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
use crate::Settings;

use super::*;

#[test]
fn flow_listen_takes_udp_urls() {
    let s = Settings::parse(
        "[daemon]\nflow_listen = [\"udp://127.0.0.1:2055\", \"udp://[::]:6343\"]\n",
        "b.toml",
    )
    .unwrap();
    assert_eq!(
        s.daemon.flow_listen,
        [
            "127.0.0.1:2055".parse::<SocketAddr>().unwrap(),
            "[::]:6343".parse().unwrap()
        ]
    );
    for bad in ["tcp://1.2.3.4:1", "udp://host:2055", "udp://1.2.3.4"] {
        let text = format!("[daemon]\nflow_listen = [{bad:?}]\n");
        let e = Settings::parse(&text, "b.toml").unwrap_err().to_string();
        assert!(
            e.contains("daemon.flow_listen") && e.contains("b.toml"),
            "{e}"
        );
    }
    let twice = "[daemon]\nflow_listen = [\"udp://0.0.0.0:1\", \"udp://0.0.0.0:1\"]\n";
    assert!(Settings::parse(twice, "b.toml").is_err());
}

#[test]
fn daemon_section_parses_and_resolves_paths() {
    let s = Settings::parse(
        "[daemon]\ninterfaces = [\"eth1\", \"eth2\"]\nbackend = \"afpacket\"\n\
         metrics_bind = \"0.0.0.0:9900\"\nalerts_file = \"alerts.jsonl\"\n",
        "/etc/bw/b.toml",
    )
    .unwrap();
    assert_eq!(s.daemon.interfaces, ["eth1", "eth2"]);
    assert_eq!(s.daemon.backend, Backend::AfPacket);
    assert_eq!(s.daemon.metrics_bind.port(), 9900);
    assert_eq!(
        s.daemon.alerts_file.as_deref(),
        Some(Path::new("/etc/bw/alerts.jsonl"))
    );
}

#[test]
fn ring_keys_default_to_the_buffer_and_are_checked() {
    let s = Settings::parse("[daemon]\nbuffer_mib = 16\n", "x.toml").unwrap();
    assert_eq!(
        (
            s.daemon.ring_block_kib,
            s.daemon.ring_blocks,
            s.daemon.ring_block_timeout_ms
        ),
        (1024, 16, 50)
    );
    let s = Settings::parse(
        "[daemon]\nbackend = \"afpacket\"\nfilter = \"tcp\"\nring_block_kib = 4\n\
         ring_blocks = 2\nring_block_timeout_ms = 1\n",
        "x.toml",
    )
    .unwrap();
    assert_eq!(
        (
            s.daemon.ring_block_kib,
            s.daemon.ring_blocks,
            s.daemon.ring_block_timeout_ms
        ),
        (4, 2, 1)
    );
    assert_eq!(s.daemon.filter, "tcp");
    for (text, line, key) in [
        ("ring_block_kib = 6", 2, "daemon.ring_block_kib"),
        ("ring_block_kib = 0", 2, "daemon.ring_block_kib"),
        ("ring_block_kib = 32768", 2, "daemon.ring_block_kib"),
        ("ring_blocks = 0", 2, "daemon.ring_blocks"),
        (
            "ring_block_kib = 16384\nring_blocks = 1000",
            3,
            "daemon.ring_blocks",
        ),
        (
            "ring_block_timeout_ms = 0",
            2,
            "daemon.ring_block_timeout_ms",
        ),
    ] {
        let e = Settings::parse(&format!("[daemon]\n{text}\n"), "x.toml").unwrap_err();
        assert!(
            e.to_string().starts_with(&format!("x.toml:{line}: {key}:")),
            "{text}: {e}"
        );
    }
}

#[test]
fn capture_threads_need_the_afpacket_backend() {
    let s = Settings::parse(
        "[daemon]\nbackend = \"afpacket\"\ncapture_threads = 4\n",
        "x.toml",
    )
    .unwrap();
    assert_eq!(s.daemon.capture_threads, Some(4));
    let s = Settings::parse("[daemon]\ncapture_threads = 1\n", "x.toml").unwrap();
    assert_eq!(s.daemon.capture_threads, Some(1));
    assert_eq!(
        Settings::parse("", "x.toml")
            .unwrap()
            .daemon
            .capture_threads,
        None
    );
    let e = Settings::parse("[daemon]\ncapture_threads = 2\n", "x.toml").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("x.toml:2: daemon.capture_threads: 2 threads per interface need"),
        "{e}"
    );
    let e = Settings::parse("[daemon]\ncapture_threads = 0\n", "x.toml").unwrap_err();
    assert!(e.to_string().contains("daemon.capture_threads"), "{e}");
}

#[test]
fn daemon_errors_name_key_and_line() {
    let e = Settings::parse("[daemon]\n\nbackend = \"dpdk\"\n", "x.toml").unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.toml:3: daemon.backend: must be \"pcap\" or \"afpacket\", got \"dpdk\""
    );
    let e = Settings::parse("[daemon]\nmetrics_bind = \"localhost\"\n", "x.toml").unwrap_err();
    assert!(
        e.to_string().starts_with("x.toml:2: daemon.metrics_bind:"),
        "{e}"
    );
    for (text, what) in [
        ("interfaces = [\"eth0\", \"eth0/1\"]", "contains '/'"),
        (
            "interfaces = [\"a-very-long-interface-name\"]",
            "longer than 15 bytes",
        ),
        ("interfaces = [\"eth 1\"]", "white space"),
        ("interfaces = [\"\"]", "empty"),
        ("interfaces = [\"eth1\", \"eth1\"]", "listed twice"),
        ("alertmanager_url = \"http://\"", "not a URL"),
        ("alertmanager_url = \"http://exa mple:9093\"", "not a URL"),
        ("alertmanager_url = \"http://am:99999\"", "not a URL"),
        ("alertmanager_url = \"ftp://am:9093\"", "https://"),
        (
            "alertmanager_url = \"http://user:pw@am:9093\"",
            "credentials",
        ),
        (
            "alertmanager_url = [\"http://am:9093\", \"http://am:9093/\"]",
            "listed twice",
        ),
        ("alertmanager_url = \"am:9093\"", "http://"),
        ("alertmanager_url = \"http://am:0\"", "port 0"),
        ("alertmanager_url = \"http://am:9093/?x=1\"", "query"),
    ] {
        let e = Settings::parse(&format!("[daemon]\n{text}\n"), "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml:2: daemon."), "{text}: {e}");
        assert!(e.contains(what), "{text}: {e}");
    }
    for ok in ["lo", "any", "eth0.100", "enp0s31f6", "bond0-v"] {
        assert_eq!(interface_name_error(ok), None, "{ok}");
    }
    let s = Settings::parse(
        "[daemon]\nalertmanager_url = \"http://[::1]:9093/am/\"\n",
        "x.toml",
    )
    .unwrap();
    assert_eq!(s.daemon.alertmanager_url, ["http://[::1]:9093/am"]);
    let e = Settings::parse("[daemon]\nsnaplen = 0\n", "x.toml").unwrap_err();
    assert!(
        e.to_string().starts_with("x.toml:2: daemon.snaplen:"),
        "{e}"
    );
}
