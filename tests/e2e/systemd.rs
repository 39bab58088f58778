//! The daemon under systemd's eyes, without systemd: the notification protocol (`READY=1`,
//! `STATUS=`, `RELOADING=1`, `WATCHDOG=1`, `STOPPING=1`) read from a datagram socket this test
//! binds and hands over in `NOTIFY_SOCKET`, the watchdog going quiet while the engine thread is
//! held still, the exporter's `process_*` and `burstwatch_build_info`, and `--version`. The
//! unit file itself is checked by `systemd-analyze verify` and `security` in `.ci/run`. The
//! real daemon on `lo`, with a filter that matches nothing of this test.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use burstwatch_tests::prom::{http_get, promtool_check_metrics};
use burstwatch_tests::{repo, run_ok};

use crate::live::{live_tests_enabled, local_config, local_daemon_command, Guard};

/// What `WATCHDOG_USEC` asks for: pings every 2 s, each thread heard from within 4 s.
const WATCHDOG: Duration = Duration::from_secs(4);

/// The service manager's end: every datagram the daemon sent, with its arrival time.
struct Manager {
    sock: UnixDatagram,
    got: Vec<(Instant, String)>,
}

impl Manager {
    fn bind(path: &Path) -> Self {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            sock,
            got: Vec::new(),
        }
    }

    /// Read what has arrived until `until`.
    fn read_until(&mut self, until: Instant) {
        let mut buf = [0u8; 4096];
        while Instant::now() < until {
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.got
                    .push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into()));
            }
        }
    }

    /// Wait (up to `limit`) for a message, after the first `from` ones, that has `needle` as a
    /// line; its index.
    fn wait_for(&mut self, from: usize, needle: &str, limit: Duration) -> usize {
        let until = Instant::now() + limit;
        loop {
            if let Some(i) =
                (from..self.got.len()).find(|&i| self.got[i].1.lines().any(|l| l == needle))
            {
                return i;
            }
            assert!(
                Instant::now() < until,
                "no {needle:?} within {limit:?}; got {:#?}",
                self.texts()
            );
            let mut buf = [0u8; 4096];
            if let Ok(n) = self.sock.recv(&mut buf) {
                self.got
                    .push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into()));
            }
        }
    }

    /// Arrival times of the watchdog pings among messages `range`.
    fn pings(&self, range: std::ops::Range<usize>) -> Vec<Instant> {
        self.got[range]
            .iter()
            .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
            .map(|(t, _)| *t)
            .collect()
    }

    fn texts(&self) -> Vec<&str> {
        self.got.iter().map(|(_, m)| m.as_str()).collect()
    }
}

/// One thread of another process held still (and only it: `PTRACE_SEIZE` and
/// `PTRACE_INTERRUPT`, no signal, so the rest of the process runs on) until dropped.
struct Frozen(libc::pid_t);

impl Frozen {
    fn new(tid: libc::pid_t) -> Self {
        // SAFETY: ptrace requests without memory arguments on a thread id, and waitpid with a
        // pointer to a live local.
        #[allow(unsafe_code)]
        unsafe {
            assert_eq!(
                libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0),
                0,
                "PTRACE_SEIZE: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0), 0);
            let mut status = 0;
            assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid);
        }
        Self(tid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above; the thread is in its ptrace stop, so it can be detached.
        #[allow(unsafe_code)]
        unsafe {
            libc::ptrace(libc::PTRACE_DETACH, self.0, 0, 0);
        }
    }
}

/// The id of the thread of `pid` named `name`.
fn thread_named(pid: u32, name: &str) -> libc::pid_t {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(Result::ok)
        .find(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .and_then(|t| t.file_name().to_str()?.parse().ok())
        .unwrap_or_else(|| panic!("no thread {name:?} in process {pid}"))
}

/// The commit `--version` names: `1.2.3 (commit 0123456789ab; ...)` -> `0123456789ab`.
fn version_commit(line: &str) -> &str {
    line.split("(commit ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .unwrap_or_else(|| panic!("no commit in {line:?}"))
}

#[test]
fn version_names_the_commit_and_the_features() {
    let long = String::from_utf8(run_ok(&["--version"]).stdout).unwrap();
    let short = String::from_utf8(run_ok(&["-V"]).stdout).unwrap();
    assert_eq!(long, short);
    let line = long.trim_end();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        line.starts_with(&format!("burstwatch {version} (commit ")),
        "{line}"
    );
    let commit = version_commit(line);
    // A fresh checkout (CI): the commit it is on. Built outside git: `unknown`.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(head) => assert!(
            commit == head || commit == format!("{head}-dirty"),
            "{line}: HEAD is {head}"
        ),
        None => assert_eq!(commit, "unknown", "{line}"),
    }
    let features = if cfg!(feature = "report") {
        "report"
    } else {
        "none"
    };
    assert!(
        line.contains(&format!("; features: {features}; rustc ")),
        "{line}"
    );
}

#[test]
fn daemon_speaks_the_notify_protocol_and_its_watchdog_follows_the_packet_path() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = local_config(dir.path(), "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let addr: std::net::SocketAddr = text
        .lines()
        .find_map(|l| l.strip_prefix("metrics_bind = \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap()
        .parse()
        .unwrap();
    let log = dir.path().join("daemon.log");
    let sock = dir.path().join("notify.sock");
    let mut sd = Manager::bind(&sock);
    let mut daemon = Guard(Some(
        local_daemon_command(&cfg, &log)
            .env("NOTIFY_SOCKET", &sock)
            .env("WATCHDOG_USEC", WATCHDOG.as_micros().to_string())
            .spawn()
            .unwrap(),
    ));
    let pid = daemon.0.as_ref().unwrap().id();
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();

    // READY=1 once the daemon runs: the exporter answers then, the state restore is behind it.
    let ready = sd.wait_for(0, "READY=1", Duration::from_secs(30));
    let (code, _) = http_get(addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(logged().contains("engine ready"), "{}", logged());
    assert!(
        sd.got[..=ready]
            .iter()
            .any(|(_, m)| m.contains("STATUS=capturing on lo; 0 alerts")),
        "{:#?}",
        sd.texts()
    );

    // Pings every half interval while all is well.
    let t0 = Instant::now();
    sd.read_until(t0 + WATCHDOG * 2);
    let pings = sd.pings(ready..sd.got.len());
    assert!(pings.len() >= 3, "{:#?}", sd.texts());
    for w in pings.windows(2) {
        assert!(w[1] - w[0] < WATCHDOG, "{:?} between pings", w[1] - w[0]);
    }

    // A reload: RELOADING=1 (with the monotonic time), then READY=1.
    let before = sd.got.len();
    // SAFETY: kill(2) with a live child's pid and SIGHUP has no memory effects.
    #[allow(unsafe_code)]
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) } == 0;
    assert!(sent);
    let reloading = sd.wait_for(before, "RELOADING=1", Duration::from_secs(10));
    assert!(
        sd.got[reloading].1.contains("MONOTONIC_USEC="),
        "{}",
        sd.got[reloading].1
    );
    sd.wait_for(reloading + 1, "READY=1", Duration::from_secs(10));

    // The engine thread held still: the pings stop (and the status says why) although the
    // rest of the process runs; let go, they come back.
    let frozen = Frozen::new(thread_named(pid, "engine"));
    let held = Instant::now();
    let stalled = sd.wait_for(
        sd.got.len(),
        "STATUS=packet path stalled: engine worker silent for over 4s",
        WATCHDOG * 3,
    );
    let quiet_from = sd.got.len();
    sd.read_until(Instant::now() + WATCHDOG);
    assert_eq!(
        sd.pings(quiet_from..sd.got.len()),
        vec![],
        "pings while the engine was held:\n{:#?}",
        sd.texts()
    );
    // The last ping before the stall came within the interval after the thread stopped.
    assert!(sd
        .pings(0..stalled)
        .last()
        .is_some_and(|t| *t < held + WATCHDOG));
    drop(frozen);
    let resumed = sd.got.len();
    sd.wait_for(resumed, "WATCHDOG=1", WATCHDOG * 2);
    assert!(logged().contains("watchdog pings resumed"), "{}", logged());

    // The exporter: process metrics and the build, lint-clean.
    let (code, body) = http_get(addr, "/metrics").unwrap();
    assert_eq!(code, 200);
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
        "process_threads",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(&format!("{family} "))),
            "{family} missing:\n{body}"
        );
    }
    let version = String::from_utf8(run_ok(&["--version"]).stdout).unwrap();
    let commit = version_commit(version.trim_end());
    assert!(
        body.contains(&format!(
            "burstwatch_build_info{{commit=\"{commit}\",features=\"{}\",",
            if cfg!(feature = "report") {
                "report"
            } else {
                ""
            }
        )),
        "{body}"
    );
    promtool_check_metrics(&body).unwrap();

    // SIGTERM: STOPPING=1, then a clean exit; no ping after it.
    let before = sd.got.len();
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    let stopping = sd.wait_for(before, "STOPPING=1", Duration::from_secs(1));
    sd.read_until(Instant::now() + Duration::from_millis(200));
    assert_eq!(
        sd.pings(stopping..sd.got.len()),
        vec![],
        "{:#?}",
        sd.texts()
    );
}
