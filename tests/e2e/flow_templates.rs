//! Flow-export templates survive a daemon restart: data that an exporter sends after the
//! restart, before it announces its templates again (routers do so every few minutes), is
//! decoded at once, from the templates file saved beside the learned state.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use burstwatch_sim::export::encode::{self, Header, Record};

const NS: i64 = 1_000_000_000;

/// An export datagram of `format` with four records of the last ten seconds, with or
/// without its templates.
fn datagram(format: &str, templates: bool, sequence: u32) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let recs: Vec<Record> = (1..=4u8)
        .map(|i| Record {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)),
            proto: 6,
            sport: 40_000 + u16::from(i),
            dport: 443,
            bytes: 50_000,
            packets: 50,
            start_ns: now - 10 * NS,
            end_ns: now - NS,
        })
        .collect();
    let h = Header {
        export_ns: now,
        boot_ns: now - 3_600 * NS,
        sequence,
        domain: 1,
        sampling: 1,
    };
    let mut out = Vec::new();
    match format {
        "netflow9" => encode::netflow9(&h, &recs, templates, &mut out),
        _ => encode::ipfix(&h, &recs, templates, &mut out),
    }
    out
}

/// Start the daemon listening on `port` with its config, log and state in `d`.
fn start(d: &Path, port: u16, metrics: u16, run: u32) -> Child {
    start_in(d, d, port, metrics, run)
}

/// The same with the state in `state_dir`.
fn start_in(d: &Path, state_dir: &Path, port: u16, metrics: u16, run: u32) -> Child {
    let cfg = d.join("burstwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\nflow_listen = [\"udp://127.0.0.1:{port}\"]\n\
             metrics_bind = \"127.0.0.1:{metrics}\"\nstate_file = \"{}\"\n",
            state_dir.join("state.json").display()
        ),
    )
    .unwrap();
    crate::live::spawn_daemon(&cfg, &d.join(format!("daemon{run}.log")))
}

/// The exporter's records and template misses on /metrics, once `done` holds for them (or
/// after 10 s).
fn series(metrics: u16, done: impl Fn((u64, u64)) -> bool) -> (u64, u64) {
    let addr: SocketAddr = ([127, 0, 0, 1], metrics).into();
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let body = burstwatch_tests::prom::http_get(addr, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let value = |name: &str| -> u64 {
            body.lines()
                .find(|l| l.starts_with(&format!("{name}{{exporter=\"127.0.0.1\"}} ")))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
                .unwrap_or(0)
        };
        let got = (
            value("burstwatch_flow_export_records_total"),
            value("burstwatch_flow_export_template_misses_total"),
        );
        if done(got) || Instant::now() > until {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn stop(child: Child) {
    let st = terminate(child);
    assert!(st.success(), "{st}");
}

/// SIGTERM, then the exit status.
fn terminate(mut child: Child) -> std::process::ExitStatus {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap()
}

/// The daemon's flow and metrics ports, and one exporter socket for the whole test: the same
/// source address and port throughout, as a router's.
struct Ports {
    port: u16,
    metrics: u16,
    exporter: UdpSocket,
    to: SocketAddr,
}

impl Ports {
    fn new() -> Self {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Ports {
            port,
            metrics: burstwatch_tests::prom::free_port(),
            exporter: UdpSocket::bind("127.0.0.1:0").unwrap(),
            to: ([127, 0, 0, 1], port).into(),
        }
    }
}

#[test]
fn flow_export_templates_survive_a_daemon_restart() {
    for format in ["ipfix", "netflow9"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let Ports {
            port,
            metrics,
            exporter,
            to,
        } = Ports::new();
        let templates = d.join("state.json.templates");

        // First run: templates and data.
        let daemon = start(d, port, metrics, 1);
        exporter.send_to(&datagram(format, true, 0), to).unwrap();
        assert_eq!(
            series(metrics, |(r, _)| r >= 4),
            (4, 0),
            "{format}: first run"
        );
        stop(daemon);
        let saved = std::fs::read_to_string(&templates).unwrap();
        let scope = format!(
            "{}:127.0.0.1:{}/1",
            if format == "ipfix" { "ipfix" } else { "v9" },
            exporter.local_addr().unwrap().port()
        );
        assert!(saved.contains(&scope), "{format}: {saved}");

        // After the restart: data without templates is decoded at once.
        let daemon = start(d, port, metrics, 2);
        assert!(std::fs::read_to_string(d.join("daemon2.log"))
            .unwrap()
            .contains("flow-export templates restored"));
        exporter.send_to(&datagram(format, false, 4), to).unwrap();
        assert_eq!(
            series(metrics, |(r, _)| r >= 4),
            (4, 0),
            "{format}: after the restart"
        );
        stop(daemon);

        // Without the file, the same datagram waits for a template (the test bites).
        std::fs::remove_file(&templates).unwrap();
        let daemon = start(d, port, metrics, 3);
        exporter.send_to(&datagram(format, false, 8), to).unwrap();
        let got = series(metrics, |(r, m)| r + m > 0);
        assert_eq!(got, (0, 1), "{format}: without saved templates");
        stop(daemon);
    }
}

#[test]
fn a_full_disk_keeps_the_last_saved_templates() {
    if !crate::live::live_tests_enabled() {
        return; // mounting a small tmpfs needs root
    }
    let dir = tempfile::tempdir().unwrap();
    // Config and logs in `d`, the state on a small file system of its own.
    let d = dir.path();
    let fs = crate::daemon_outputs::Tmpfs::mount(&d.join("fs"), "1m");
    let state = fs.0.as_path();
    let Ports {
        port,
        metrics,
        exporter,
        to,
    } = Ports::new();
    let templates = state.join("state.json.templates");

    // Saved whole while there is room.
    let daemon = start_in(d, state, port, metrics, 1);
    exporter.send_to(&datagram("ipfix", true, 0), to).unwrap();
    assert_eq!(series(metrics, |(r, _)| r >= 4), (4, 0));
    stop(daemon);
    let saved = std::fs::read(&templates).unwrap();

    // The disk is full at the next stop: the save fails, loudly (log, exit status 1), and
    // leaves the last file whole and no partial one beside it.
    let filler = fs.fill("filler");
    let daemon = start_in(d, state, port, metrics, 2);
    exporter.send_to(&datagram("ipfix", false, 4), to).unwrap();
    assert_eq!(series(metrics, |(r, _)| r >= 4), (4, 0));
    let st = terminate(daemon);
    assert_eq!(st.code(), Some(1), "{st}");
    let log = std::fs::read_to_string(d.join("daemon2.log")).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("flow-export templates not saved")
                && l.contains("No space left on device")),
        "{log}"
    );
    assert_eq!(std::fs::read(&templates).unwrap(), saved);
    let leftovers: Vec<_> = std::fs::read_dir(state)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Room again: the file kept is read, data without templates is decoded at once.
    std::fs::remove_file(&filler).unwrap();
    let daemon = start_in(d, state, port, metrics, 3);
    exporter.send_to(&datagram("ipfix", false, 8), to).unwrap();
    assert_eq!(series(metrics, |(r, _)| r >= 4), (4, 0));
    stop(daemon);
}
