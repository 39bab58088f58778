//! A SIGTERM that reaches the daemon while it is still starting (restoring state, opening
//! captures and sinks) stops it cleanly: exit 0, state saved, "stopped" logged. Before the
//! handlers were installed first, such a signal killed the process with nothing saved. The real
//! daemon on `lo`, with a filter that matches nothing of this test.

use std::time::{Duration, Instant};

use crate::live::{live_tests_enabled, local_config, start_local_daemon};

#[test]
fn sigterm_during_startup_is_a_clean_stop() {
    if !live_tests_enabled() {
        return;
    }
    // The signal leaves the moment the daemon's first log line is there (the state file was
    // looked at: start-up is under way), in a dozen runs. Before, about a third of such runs
    // found the default action and died with nothing saved.
    let mut judged = 0;
    for _ in 0..12 {
        let dir = tempfile::tempdir().unwrap();
        let cfg = local_config(dir.path(), "");
        let log = dir.path().join("daemon.log");
        let mut daemon = start_local_daemon(&cfg, &log);
        let pid = daemon.0.as_ref().unwrap().id();
        let until = Instant::now() + Duration::from_secs(20);
        let before = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !text.is_empty() || Instant::now() > until {
                break text;
            }
            std::hint::spin_loop();
        };
        // SAFETY: kill(2) with a live child's pid and SIGTERM has no memory effects.
        #[allow(unsafe_code)]
        let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) } == 0;
        assert!(sent, "SIGTERM not sent");
        let code = daemon.wait_exit(Duration::from_secs(30));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        judged += 1;
        assert_eq!(
            code,
            Some(0),
            "SIGTERM once it had logged:\n{before}\nlog:\n{text}"
        );
        assert!(text.contains("stopped"), "{text}");
        assert!(dir.path().join("state.json").exists(), "{text}");
    }
    assert_eq!(judged, 12);
}
