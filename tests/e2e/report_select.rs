//! The report's second pass and threads (needs the `report` feature): the alert timelines are
//! read from the same packets as the first pass, whether the inputs are a file, a glob or a
//! directory of rotated files, and only within `--since`/`--until`; one thread or two (the
//! report built on a thread of its own, the second pass reading files in parallel) write the
//! same report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use burstwatch_tests::run_ok;

use crate::report::{parquet, secs, strs, u64s, TABLES};
use crate::simcap::sim;

/// `analyze INPUTS... --report DIR/TAG EXTRA...`; returns the report directory.
fn report(dir: &Path, tag: &str, inputs: &[&str], extra: &[&str]) -> PathBuf {
    let out_dir = dir.join(tag);
    let mut args = vec!["analyze", "-q"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&["--report", out_dir.to_str().unwrap()]);
    args.extend_from_slice(extra);
    run_ok(&args);
    out_dir
}

/// `pcap` split by editcap into rotated files of 100 s each in `dir/parts`.
fn rotated(pcap: &Path, dir: &Path) -> PathBuf {
    let parts = dir.join("parts");
    std::fs::create_dir(&parts).unwrap();
    let st = Command::new("editcap")
        .args(["-F", "pcap", "-i", "100"])
        .arg(pcap)
        .arg(parts.join("part.pcap"))
        .status()
        .expect("editcap installed");
    assert!(st.success());
    let n = std::fs::read_dir(&parts).unwrap().count();
    assert!(n >= 3, "{n} parts");
    parts
}

/// Timeline rows as (alert id, second, packets up + down).
fn timeline(report: &Path) -> Vec<(String, i64, u64)> {
    let tl = parquet(report, "timeline");
    let (id, ts) = (strs(&tl, "alert_id"), secs(&tl, "ts"));
    let (up, down) = (u64s(&tl, "packets_up"), u64s(&tl, "packets_down"));
    (0..tl.height())
        .map(|i| (id[i].clone(), ts[i] as i64, up[i] + down[i]))
        .collect()
}

#[test]
fn timelines_of_a_glob_and_a_directory_equal_those_of_the_single_file() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let parts = rotated(&s.pcap, dir.path());

    let single = timeline(&report(
        dir.path(),
        "single",
        &[s.pcap.to_str().unwrap()],
        &[],
    ));
    let packets: u64 = single.iter().map(|r| r.2).sum();
    assert!(packets > 0, "the timelines hold packets");
    let glob = parts.join("part*.pcap");
    for (tag, input) in [
        ("glob", glob.to_str().unwrap()),
        ("dir", parts.to_str().unwrap()),
    ] {
        let other = timeline(&report(dir.path(), tag, &[input], &[]));
        assert!(
            other == single,
            "{tag}: timelines differ from the single file's"
        );
    }
}

#[test]
fn timelines_hold_no_packet_after_until() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let pcap = s.pcap.to_str().unwrap();
    let full_dir = report(dir.path(), "full", &[pcap], &[]);
    let full = timeline(&full_dir);
    let alerts = parquet(&full_dir, "alerts");
    let (ids, starts, ends) = (
        strs(&alerts, "id"),
        secs(&alerts, "start_ts"),
        secs(&alerts, "end_ts"),
    );
    // The longest alert, cut three seconds after its start: still raised (its id hashes kind,
    // pair and start; three seconds of it carry the volume a burst needs), with packets of the
    // full run after the cut.
    let i = (0..ids.len())
        .max_by(|&a, &b| (ends[a] - starts[a]).total_cmp(&(ends[b] - starts[b])))
        .unwrap();
    assert!(
        ends[i] - starts[i] >= 3.0,
        "longest alert: {} s",
        ends[i] - starts[i]
    );
    let (id, until) = (&ids[i], starts[i].floor() as i64 + 3);
    let by_second = |t: &[(String, i64, u64)]| -> BTreeMap<i64, u64> {
        t.iter()
            .filter(|r| &r.0 == id)
            .map(|r| (r.1, r.2))
            .collect()
    };
    let before = by_second(&full);
    assert!(
        before.iter().any(|(sec, n)| *sec > until && *n > 0),
        "alert {id}: no packets after {until} to cut"
    );

    let cut_dir = report(dir.path(), "cut", &[pcap], &["--until", &until.to_string()]);
    let after = by_second(&timeline(&cut_dir));
    assert!(
        !after.is_empty(),
        "alert {id} is still raised with --until {until}"
    );
    for (sec, got) in &after {
        if *sec < until {
            assert_eq!(got, &before[sec], "second {sec}: packets before --until");
        } else if *sec > until {
            assert_eq!(*got, 0, "second {sec}: packets after --until {until}");
        }
    }
}

#[test]
fn one_thread_and_two_write_the_same_report() {
    let s = sim();
    let dir = tempfile::tempdir().unwrap();
    let parts = rotated(&s.pcap, dir.path());
    let input = parts.to_str().unwrap();
    let one = report(dir.path(), "one", &[input], &["--threads", "1"]);
    let two = report(dir.path(), "two", &[input], &["--threads", "2"]);
    for t in TABLES {
        let (a, b) = (parquet(&one, t), parquet(&two, t));
        assert!(a.height() > 0, "{t} is empty");
        assert!(a.equals_missing(&b), "{t} differs:\n{a:?}\n{b:?}");
    }
    let page = |d: &Path| std::fs::read_to_string(d.join("report.html")).unwrap();
    assert_eq!(page(&one), page(&two));
}
