//! The daemon's exporter under hostile neighbours: thousands of idle connections held open,
//! a slow partial request, a connect flood. The real daemon, capturing on `lo` (a filter that
//! matches nothing of the test's traffic) with its metrics on a free loopback port.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use burstwatch_tests::prom::free_port;

use crate::live::start_local_daemon;

/// Idle connections the test holds.
const IDLE: usize = 2000;

/// The soft and hard limits on open files of this process (`/proc/self/limits`).
fn open_file_limits() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1])
}

/// Room for the idle connections, the flood and the rest of the test run: raise this
/// process's limit (with `prlimit`; raising the hard limit needs root) when it is too low.
fn ensure_open_files(needed: u64) {
    let (soft, hard) = open_file_limits();
    if soft >= needed {
        return;
    }
    let target = hard.max(needed);
    let st = Command::new("prlimit")
        .args(["--pid", &std::process::id().to_string()])
        .arg(format!("--nofile={target}:{target}"))
        .status()
        .expect("run prlimit");
    assert!(st.success(), "prlimit failed");
    let (soft, _) = open_file_limits();
    assert!(
        soft >= needed,
        "open-file limit {soft} below the {needed} this test needs (run as root)"
    );
}

/// `GET /metrics` on a new connection; the status line and body, or why not.
fn scrape(addr: SocketAddr, limit: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, limit).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(limit)).unwrap();
    s.set_write_timeout(Some(limit)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("read: {e}"))?;
    if text.starts_with("HTTP/1.1 200") && text.contains("burstwatch_build_info") {
        Ok(text)
    } else {
        Err(format!(
            "unexpected answer: {:?}",
            &text[..text.len().min(200)]
        ))
    }
}

/// Whether the server has closed `s` (without waiting).
fn closed_by_peer(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let closed = match s.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    s.set_nonblocking(false).unwrap();
    closed
}

/// Lines of `log` that are exporter warnings.
fn exporter_warnings(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("exporter"))
        .map(str::to_string)
        .collect()
}

#[test]
fn exporter_serves_every_scrape_while_2000_idle_connections_are_held() {
    ensure_open_files(IDLE as u64 + 1000);
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cfg = dir.path().join("burstwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ninterfaces = [\"lo\"]\nfilter = \"udp port 9\"\nmetrics_bind = \"{addr}\"\n"
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let started = Instant::now();
    let mut daemon = start_local_daemon(&cfg, &log);
    let until = Instant::now() + Duration::from_secs(20);
    while scrape(addr, Duration::from_secs(1)).is_err() {
        assert!(
            Instant::now() < until,
            "exporter not up:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Hold 2,000 idle connections (re-opening those the server closes, once a second) and
    // scrape every 250 ms for longer than the header-read timeout: every scrape is
    // served, and quickly.
    let mut idle: Vec<TcpStream> = (0..IDLE)
        .map(|_| TcpStream::connect(addr).expect("idle connection"))
        .collect();
    let phase = Instant::now();
    let (mut scrapes, mut slowest, mut reopened) = (0, Duration::ZERO, 0);
    let mut last_top_up = Instant::now();
    // At least 7 s (longer than the header-read timeout) and at least 12 scrapes, however
    // slowly a loaded machine runs the loop.
    while phase.elapsed() < Duration::from_secs(7) || scrapes < 12 {
        let t0 = Instant::now();
        if let Err(e) = scrape(addr, Duration::from_secs(3)) {
            panic!(
                "scrape {scrapes} failed with {IDLE} idle connections held: {e}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        slowest = slowest.max(t0.elapsed());
        scrapes += 1;
        if last_top_up.elapsed() >= Duration::from_secs(1) {
            for s in &mut idle {
                if closed_by_peer(s) {
                    if let Ok(new) = TcpStream::connect(addr) {
                        *s = new;
                        reopened += 1;
                    }
                }
            }
            last_top_up = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        slowest < Duration::from_secs(2),
        "slowest scrape {slowest:?}"
    );
    eprintln!(
        "{scrapes} scrapes served with {IDLE} idle connections held ({reopened} re-opened), \
         slowest {slowest:?}"
    );

    // A partial request head, then silence: the header-read timeout (5 s) closes it.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(9))).unwrap();
    let t0 = Instant::now();
    let mut sink = Vec::new();
    let ended = slow.read_to_end(&mut sink);
    assert!(
        !matches!(&ended, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "slow client still connected after {:?}",
        t0.elapsed()
    );
    eprintln!("slow client closed after {:?}", t0.elapsed());

    // A connect flood on top of the held connections: each connect evicts a held one, and the
    // log says so at most once per 10 s (with counts), not once per connection.
    let flood = Instant::now();
    let mut connects = 0;
    while connects < 5000 && flood.elapsed() < Duration::from_secs(10) {
        if TcpStream::connect(addr).is_ok() {
            connects += 1;
        }
    }
    scrape(addr, Duration::from_secs(3)).expect("scrape after the flood");
    assert!(connects >= 1000, "{connects} connects in the flood");
    drop(idle);
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let warnings = exporter_warnings(&log);
    // Two kinds of line (evictions, accept errors), each at most once per 10 s, plus the
    // first of each and a final summary.
    let periods = started.elapsed().as_secs() / 10 + 1;
    let bound = 2 * periods as usize + 2;
    assert!(
        warnings.len() <= bound,
        "{} exporter warnings for {connects} flood connects (at most {bound}):\n{}",
        warnings.len(),
        warnings[..warnings.len().min(20)].join("\n")
    );
    assert!(
        warnings.iter().any(|l| l.contains("closed")),
        "the evictions are told: {warnings:?}"
    );
    eprintln!(
        "{connects} flood connects, {} exporter warning line(s)",
        warnings.len()
    );
}
