//! `daemon.user = "root"`: the daemon stays root but keeps only the two capabilities capture
//! needs, with the bounding set cut to them and `no_new_privs` set, and says so (it is not
//! "running unprivileged"). The real daemon on `lo`, with a filter that matches nothing of this
//! test. The switch to another account is tested live in `live.rs`.

use std::time::Duration;

use crate::live::{
    live_tests_enabled, local_config, start_local_daemon, thread_status, wait_for_log,
};

#[test]
fn daemon_told_to_stay_root_keeps_only_the_capture_capabilities_and_says_so() {
    if !live_tests_enabled() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = local_config(dir.path(), "user = \"root\"\n");
    let log = dir.path().join("daemon.log");
    let mut daemon = start_local_daemon(&cfg, &log);
    let text = wait_for_log(&log, "daemon started", Duration::from_secs(20));
    assert!(!text.contains("running unprivileged"), "{text}");
    let told = text
        .lines()
        .find(|l| l.contains("staying root"))
        .unwrap_or_else(|| panic!("no 'staying root' line:\n{text}"));
    assert!(
        told.contains("CAP_NET_RAW") && told.contains("CAP_NET_ADMIN"),
        "{told}"
    );
    let pid = daemon.0.as_ref().unwrap().id();
    let uids = thread_status(pid, "Uid:");
    assert!(uids.len() >= 4, "capture, worker, output threads: {uids:?}");
    assert!(uids.iter().all(|u| u == "0 0 0 0"), "{uids:?}");
    // Root by name only: CAP_NET_ADMIN (12) and CAP_NET_RAW (13), in every set that can hold
    // them, nothing inheritable, nothing to regain through a program it could execute.
    for key in ["CapEff:", "CapPrm:", "CapBnd:"] {
        let caps = thread_status(pid, key);
        assert!(
            caps.iter().all(|c| c == "0000000000003000"),
            "{key} {caps:?}"
        );
    }
    for (key, want) in [("CapInh:", "0000000000000000"), ("NoNewPrivs:", "1")] {
        let v = thread_status(pid, key);
        assert!(v.iter().all(|c| c == want), "{key} {v:?}");
    }
    // It still writes its state on the way out.
    assert_eq!(daemon.terminate(Duration::from_secs(30)), Some(0));
    assert!(dir.path().join("state.json").exists());
}
