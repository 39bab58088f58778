//! Fault injection on the daemon's output files: the flow and alert files on a small tmpfs
//! that fills up, then a flow path that becomes a directory. Records are held, then dropped
//! and counted, `/readyz` is not ready, the error is logged once per kind, and writing resumes
//! by itself once it can. Runs the daemon on a veth between test namespaces (see `live.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::outputs::flows_and_bursts;

/// A tmpfs mounted by the test; unmounted on drop, also when the test fails.
pub(crate) struct Tmpfs(pub(crate) PathBuf);

impl Tmpfs {
    pub(crate) fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs on {}", path.display());
        Tmpfs(path.to_path_buf())
    }

    /// Fill the free space with a file `name`; returns its path.
    pub(crate) fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write as _;
        let path = self.0.join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 1 << 16];
        loop {
            if let Err(e) = f.write_all(&chunk) {
                assert_eq!(e.raw_os_error(), Some(28), "{e}");
                break;
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The value of one sample line of the exposition text (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Sum of every sample of a family (`name{...} v` and `name v`).
fn family_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

fn lines_in(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

/// Poll `/metrics` until `ok` holds for it (and `/readyz` answers `ready`), up to `limit`.
fn wait_metrics(
    addr: std::net::SocketAddr,
    ready: u16,
    limit: std::time::Duration,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    use burstwatch_tests::prom::http_get;
    let until = std::time::Instant::now() + limit;
    loop {
        let text = http_get(addr, "/metrics").map(|r| r.1).unwrap_or_default();
        let status = http_get(addr, "/readyz").map_or(0, |r| r.0);
        if status == ready && ok(&text) {
            return text;
        }
        assert!(
            std::time::Instant::now() < until,
            "{what}: not within {limit:?} (readyz {status}):\n{}",
            text.lines()
                .filter(|l| l.contains("output")
                    || l.contains("sink")
                    || l.contains("alerts_total"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Log lines of the daemon that contain every one of `needles`.
fn log_lines(log: &Path, needles: &[&str]) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

#[test]
fn daemon_output_files_on_a_full_disk_and_a_directory_count_drops_and_recover() {
    use crate::live::{live_tests_enabled, replay, start_daemon, wait_for_log, Netns};
    use std::time::Duration;
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&dir.path().join("fs"), "16m");
    let traffic = dir.path().join("traffic.pcap");
    flows_and_bursts(&traffic, 8000, true);
    let more = dir.path().join("more.pcap");
    flows_and_bursts(&more, 8000, false);
    let net = Netns::new("o");
    let addr = std::net::SocketAddr::from((net.mgmt_addr, burstwatch_tests::prom::free_port()));
    let cfg = dir.path().join("burstwatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[flow]\nudp_idle_timeout_seconds = 1\n\n\
             [detect]\nlookback_seconds = 1\nalert_hold_seconds = 1\n\n\
             [daemon]\ninterfaces = [\"{}\"]\nfilter = \"not ip6 multicast\"\n\
             metrics_bind = \"{addr}\"\nflows_file = \"fs/flows.jsonl\"\n\
             alerts_file = \"fs/alerts.jsonl\"\n",
            net.cap_if
        ),
    )
    .unwrap();
    let (flows, alerts) = (fs.0.join("flows.jsonl"), fs.0.join("alerts.jsonl"));
    let log = dir.path().join("daemon.log");
    let mut daemon = start_daemon(&net, &cfg, &log);
    wait_for_log(&log, "daemon started", Duration::from_secs(20));
    wait_metrics(addr, 200, Duration::from_secs(20), "ready at start", |_| {
        true
    });

    // The disk fills up: both files fail, records are held, then dropped and counted.
    let filler = fs.fill("filler");
    replay(&net, &traffic, "1");
    let flows_dropped = r#"burstwatch_output_dropped_total{output="flows"}"#;
    let text = wait_metrics(
        addr,
        503,
        Duration::from_secs(20),
        "drops while full",
        |t| {
            sample(t, flows_dropped) > 0.0
                && sample(t, r#"burstwatch_output_failing{output="flows"}"#) == 1.0
                && sample(t, r#"burstwatch_output_failing{output="alerts_file"}"#) == 1.0
                && family_sum(t, "burstwatch_alerts_total") >= 1.0
        },
    );
    assert_eq!(lines_in(&flows), 0);
    assert_eq!(lines_in(&alerts), 0);
    burstwatch_tests::prom::promtool_check_metrics(&text).unwrap();
    // Once each, not once per record.
    let enospc = ["output failing", "No space left on device"];
    let text_log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log_lines(&log, &[enospc[0], enospc[1], "flows.jsonl"]),
        1,
        "{text_log}"
    );
    assert_eq!(
        log_lines(&log, &[enospc[0], enospc[1], "alerts.jsonl"]),
        1,
        "{text_log}"
    );

    // Space again: the held records are written, the counters stop, ready again. Every flow
    // record the engine exported is in the file or counted as dropped; every alert is written.
    std::fs::remove_file(&filler).unwrap();
    let text = wait_metrics(addr, 200, Duration::from_secs(20), "recovery", |t| {
        sample(t, r#"burstwatch_output_failing{output="flows"}"#) == 0.0
            && sample(t, r#"burstwatch_output_failing{output="alerts_file"}"#) == 0.0
            && lines_in(&flows) as f64 + sample(t, flows_dropped)
                == family_sum(t, "burstwatch_flows_ended_total")
            && lines_in(&alerts) as f64 == family_sum(t, "burstwatch_alerts_total")
    });
    let dropped = sample(&text, flows_dropped);
    assert!(dropped > 0.0 && lines_in(&flows) > 0);
    assert_eq!(
        sample(
            &text,
            r#"burstwatch_output_dropped_total{output="alerts_file"}"#
        ),
        0.0,
        "the alerts waited in the backlog"
    );
    assert!(lines_in(&alerts) >= 1);
    eprintln!(
        "full disk: {} flow records written after recovery, {dropped} dropped; {} alerts held \
         and written",
        lines_in(&flows),
        lines_in(&alerts)
    );
    assert_eq!(log_lines(&log, &["output writing again", "flows.jsonl"]), 1);
    std::thread::sleep(Duration::from_secs(2));
    let text = wait_metrics(addr, 200, Duration::from_secs(5), "still ready", |_| true);
    assert_eq!(sample(&text, flows_dropped), dropped, "the counter stopped");

    // The flow path becomes a directory at run time (logrotate gone wrong): SIGHUP reopens
    // by name and fails. Counted, not ready, logged once; ready again once it is a file.
    std::fs::rename(&flows, fs.0.join("flows.jsonl.1")).unwrap();
    std::fs::create_dir(&flows).unwrap();
    let pid = daemon.0.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    wait_metrics(
        addr,
        503,
        Duration::from_secs(10),
        "directory: not ready",
        |t| sample(t, r#"burstwatch_output_failing{output="flows"}"#) == 1.0,
    );
    replay(&net, &more, "1");
    wait_metrics(
        addr,
        503,
        Duration::from_secs(20),
        "directory: drops",
        |t| sample(t, flows_dropped) > dropped,
    );
    assert_eq!(
        log_lines(&log, &["output failing", "Is a directory", "flows.jsonl"]),
        1,
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    std::fs::remove_dir(&flows).unwrap();
    let text = wait_metrics(
        addr,
        200,
        Duration::from_secs(20),
        "directory: recovery",
        |t| {
            sample(t, r#"burstwatch_output_failing{output="flows"}"#) == 0.0
                && lines_in(&flows) as f64
                    + lines_in(&fs.0.join("flows.jsonl.1")) as f64
                    + sample(t, flows_dropped)
                    == family_sum(t, "burstwatch_flows_ended_total")
        },
    );
    assert!(lines_in(&flows) > 0, "written again");
    assert!(sample(&text, flows_dropped) > dropped);
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    drop(fs);
}
