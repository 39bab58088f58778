//! Archives: many files as one stream in timestamp order.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failures should panic

mod common;

use std::path::PathBuf;

use burstwatch_capture::{Archive, ReadErrorKind};
use common::{frame, write_pcap};

const SEC: i64 = 1_000_000_000;

/// The tag `frame(n)` starts with: `n`.
fn tag(frame: &[u8]) -> u32 {
    u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]])
}

/// (ts_ns, tag) of every packet, and the errors, in delivery order.
fn drain(a: &mut Archive) -> (Vec<(i64, u32)>, Vec<burstwatch_capture::ReadError>, usize) {
    let (mut pkts, mut errs, mut max_open) = (Vec::new(), Vec::new(), 0);
    while let Some(ev) = a.next_event() {
        match ev {
            Ok(p) => pkts.push((p.ts_ns, tag(p.data))),
            Err(e) => errs.push(e),
        }
        max_open = max_open.max(a.open_files());
    }
    (pkts, errs, max_open)
}

fn records(range: std::ops::Range<u32>) -> Vec<(i64, Vec<u8>)> {
    range
        .map(|n| (1_700_000_000 * SEC + i64::from(n) * SEC / 10, frame(n)))
        .collect()
}

fn expected(range: std::ops::Range<u32>) -> Vec<(i64, u32)> {
    records(range).iter().map(|(t, f)| (*t, tag(f))).collect()
}

#[test]
fn rotated_files_in_wrong_order_and_as_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    // Names sort in the opposite order of time.
    write_pcap(&d.join("c.pcap"), &records(0..10));
    write_pcap(&d.join("sub/b.pcap"), &records(10..20));
    write_pcap(&d.join("a.pcap"), &records(20..30));
    std::fs::write(d.join("notes.txt"), "not a capture").unwrap();

    let mut a = Archive::open(&[d.join("a.pcap"), d.join("sub/b.pcap"), d.join("c.pcap")]);
    assert_eq!(a.files(), 3);
    let (pkts, errs, max_open) = drain(&mut a);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(pkts, expected(0..30));
    assert!(max_open <= 2, "{max_open} files open at once");
    assert_eq!(a.bytes_consumed(), a.bytes_total());

    let mut a = Archive::open(&[d.to_path_buf()]);
    assert_eq!(a.files(), 3, "notes.txt must be skipped, sub/ expanded");
    let (pkts, errs, _) = drain(&mut a);
    assert!(errs.is_empty());
    assert_eq!(pkts, expected(0..30));
}

#[test]
fn spans_are_the_time_range_read_from_each_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pcap(&d.join("late.pcap"), &records(20..30));
    // Out of order within the file: the span is its earliest and latest packet.
    let mut shuffled = records(0..10);
    shuffled.swap(0, 9);
    write_pcap(&d.join("early.pcap"), &shuffled);
    std::fs::write(d.join("bad.pcap"), b"this is not a capture file at all").unwrap();
    let mut a = Archive::open(&[
        d.join("late.pcap"),
        d.join("bad.pcap"),
        d.join("early.pcap"),
    ]);
    assert_eq!(a.spans(), &[None, None, None], "nothing read yet");
    drain(&mut a);
    let t = |n: i64| 1_700_000_000 * SEC + n * SEC / 10;
    assert_eq!(a.spans(), &[Some((t(20), t(29))), None, Some((t(0), t(9)))]);
}

#[test]
fn overlapping_files_interleave_and_ties_follow_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let all = records(0..20);
    let even: Vec<_> = all.iter().step_by(2).cloned().collect();
    let odd: Vec<_> = all.iter().skip(1).step_by(2).cloned().collect();
    write_pcap(&d.join("1-odd.pcap"), &odd);
    write_pcap(&d.join("2-even.pcap"), &even);
    // Same timestamps as "even", later in file order.
    let dup: Vec<_> = even.iter().map(|(t, _)| (*t, frame(1000))).collect();
    write_pcap(&d.join("3-dup.pcap"), &dup);
    let mut a = Archive::open(&[d.to_path_buf()]);
    let (pkts, errs, _) = drain(&mut a);
    assert!(errs.is_empty());
    let mut want = Vec::new();
    for (t, f) in &all {
        let n = tag(f);
        want.push((*t, n));
        if n % 2 == 0 {
            want.push((*t, 1000));
        }
    }
    assert_eq!(pkts, want);
}

#[test]
fn bad_files_give_one_error_event_and_the_rest_continues() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_pcap(&d.join("1.pcap"), &records(0..10));
    std::fs::write(d.join("2.pcap"), b"this is not a capture file at all").unwrap();
    // A file cut inside its 6th record: 5 packets then one error.
    write_pcap(&d.join("3.pcap"), &records(10..20));
    let full = std::fs::read(d.join("3.pcap")).unwrap();
    let cut = 24 + 5 * (16 + 60) + 30;
    std::fs::write(d.join("3.pcap"), &full[..cut]).unwrap();
    write_pcap(&d.join("4.pcap"), &records(20..30));
    let missing = d.join("0-missing.pcap");

    let mut inputs = vec![missing.clone(), d.to_path_buf()];
    inputs.reverse();
    let mut a = Archive::open(&inputs);
    let mut events = Vec::new();
    while let Some(ev) = a.next_event() {
        events.push(
            ev.map(|p| p.ts_ns)
                .map_err(|e| (e.path.clone(), e.offset, e.to_string(), e.reason)),
        );
    }
    let errors: Vec<_> = events.iter().filter_map(|e| e.as_ref().err()).collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    // Startup errors first, in input order: the non-capture, then the missing file.
    assert!(events[0].is_err() && events[1].is_err());
    let (p0, _, _, r0) = events[0].as_ref().unwrap_err();
    assert_eq!(p0, &d.join("2.pcap"));
    assert!(matches!(r0, ReadErrorKind::NotACapture));
    let (p1, _, _, r1) = events[1].as_ref().unwrap_err();
    assert_eq!(p1, &missing);
    assert!(matches!(r1, ReadErrorKind::Io(_)));
    // The truncated file's error comes after its 5 good packets, at the 6th record's offset.
    let pos = events.iter().rposition(|e| e.is_err()).unwrap();
    let (p3, off, text, r3) = events[pos].as_ref().unwrap_err();
    assert_eq!(p3, &d.join("3.pcap"));
    assert_eq!(*off, 24 + 5 * 76);
    assert!(
        matches!(
            r3,
            ReadErrorKind::Truncated {
                needed: 76,
                have: 30
            }
        ),
        "{text}"
    );
    let before: Vec<i64> = events[..pos]
        .iter()
        .filter_map(|e| e.as_ref().ok().copied())
        .collect();
    assert_eq!(before.len(), 15);
    let ts: Vec<i64> = events
        .iter()
        .filter_map(|e| e.as_ref().ok().copied())
        .collect();
    let want: Vec<i64> = expected(0..15)
        .into_iter()
        .chain(expected(20..30))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(ts, want);
}

#[test]
fn empty_inputs_and_empty_files() {
    let mut a = Archive::open(&[]);
    assert!(a.next_event().is_none());
    let dir = tempfile::tempdir().unwrap();
    let only_header = dir.path().join("h.pcap");
    write_pcap(&only_header, &[]);
    let empty = dir.path().join("e.pcap");
    std::fs::write(&empty, b"").unwrap();
    let mut a = Archive::open(&[only_header, empty.clone()]);
    let ev: Vec<_> = std::iter::from_fn(|| {
        a.next_event()
            .map(|e| e.map(|p| p.ts_ns).map_err(|e| e.path))
    })
    .collect();
    assert_eq!(ev, vec![Err(empty)]);
    assert_eq!(a.bytes_consumed(), a.bytes_total());
    let _ = PathBuf::new();
}

#[test]
fn indexed_byte_ranges_hold_exactly_the_packets_of_the_wanted_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 10 packets a second for 60 s, and a file whose seconds go backwards once.
    write_pcap(&d.join("a.pcap"), &records(0..600));
    let mut shuffled = records(600..700);
    shuffled.swap(10, 60);
    write_pcap(&d.join("b.pcap"), &shuffled);
    std::fs::write(d.join("c.pcap.gz"), b"not even gzip").unwrap();
    let mut a = Archive::open(&[d.join("a.pcap"), d.join("b.pcap"), d.join("c.pcap.gz")]);
    drain(&mut a);
    let [Some(ix), Some(unordered), None] = a.indexes() else {
        panic!("{:?}", a.indexes());
    };
    assert!(ix.is_complete());
    assert_eq!(
        unordered.ranges(&[(0, i64::MAX)], u64::MAX),
        None,
        "read whole"
    );
    let base = 1_700_000_000;
    for wanted in [
        vec![(base + 5, base + 5)],
        vec![
            (base, base + 2),
            (base + 30, base + 31),
            (base + 59, base + 90),
        ],
        vec![(base - 10, base - 1)],
    ] {
        let ranges = ix.ranges(&wanted, 1_000).unwrap();
        let mut got = Vec::new();
        for (start, end) in ranges {
            let mut f =
                burstwatch_capture::CaptureFile::open_range(&d.join("a.pcap"), start, end).unwrap();
            while let Some(p) = f.next_packet().unwrap() {
                got.push((p.ts_ns, tag(p.data)));
            }
        }
        // Whole seconds around the wanted ones may come too; every wanted packet comes, once.
        let want: Vec<(i64, u32)> = expected(0..600)
            .into_iter()
            .filter(|(t, _)| wanted.iter().any(|(a, b)| (*a..=*b).contains(&(t / SEC))))
            .collect();
        let kept: Vec<(i64, u32)> = got
            .iter()
            .copied()
            .filter(|(t, _)| wanted.iter().any(|(a, b)| (*a..=*b).contains(&(t / SEC))))
            .collect();
        assert_eq!(kept, want, "{wanted:?}");
        let mut sorted = got.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), got.len(), "no packet twice");
        // Only the wanted seconds and their neighbours were read: 10 packets a second.
        let seconds: i64 = wanted
            .iter()
            .map(|(a, b)| (b.min(&(base + 59)) - a.max(&base) + 1).max(0))
            .sum();
        assert!(
            got.len() as i64 <= 10 * (seconds + 2 * wanted.len() as i64),
            "{} read",
            got.len()
        );
    }
    // A range of something else than a plain pcap file is refused.
    assert!(burstwatch_capture::CaptureFile::open_range(&d.join("c.pcap.gz"), 0, 100).is_err());
}

#[test]
fn many_overlapping_files_merge_with_a_bounded_number_open() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 150 files whose packets interleave: file k holds packets k, k + 150, k + 300. Every
    // third file is gzip-compressed (parked gzip files are decompressed again to their place).
    let n = 150u32;
    for k in 0..n {
        let recs: Vec<_> = (0..3)
            .map(|r| records(k + r * n..k + r * n + 1)[0].clone())
            .collect();
        let p = d.join(format!("f{k:03}.pcap"));
        write_pcap(&p, &recs);
        if k % 3 == 0 {
            let bytes = std::fs::read(&p).unwrap();
            std::fs::remove_file(&p).unwrap();
            let gz = std::fs::File::create(d.join(format!("f{k:03}.pcap.gz"))).unwrap();
            let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
            enc.write_all(&bytes).unwrap();
            enc.finish().unwrap();
        }
    }
    let mut a = Archive::open(&[d.to_path_buf()]);
    assert_eq!(a.files(), n as usize);
    let (pkts, errs, max_open) = drain(&mut a);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(pkts, expected(0..3 * n));
    assert!(max_open <= 64, "{max_open} files open at once");
    assert_eq!(a.open_files(), 0);
}

#[test]
fn directories_are_read_by_content_and_each_file_once() {
    use burstwatch_capture::{InputList, SkipReason};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // tcpdump -C names: dump, dump1, dump2 (no extension), and things that are not captures.
    write_pcap(&d.join("dump"), &records(0..10));
    write_pcap(&d.join("dump1"), &records(10..20));
    write_pcap(&d.join("dump2"), &records(20..30));
    std::fs::write(d.join("README"), "notes").unwrap();
    std::fs::write(d.join("zero"), b"").unwrap();
    std::os::unix::fs::symlink(d.join("dump1"), d.join("link-to-dump1")).unwrap();
    let list = InputList::list(&[d.to_path_buf(), d.join("dump2")]);
    assert_eq!(
        list.files,
        vec![d.join("dump"), d.join("dump1"), d.join("dump2")]
    );
    assert_eq!(
        list.skipped,
        vec![
            (d.join("README"), SkipReason::NotACapture),
            (d.join("zero"), SkipReason::Empty)
        ]
    );
    assert_eq!(
        list.duplicates,
        vec![
            (d.join("link-to-dump1"), d.join("dump1")),
            (d.join("dump2"), d.join("dump2"))
        ]
    );
    let mut a = Archive::from_list(list);
    let (pkts, errs, _) = drain(&mut a);
    assert!(errs.is_empty(), "{errs:?}");
    assert_eq!(pkts, expected(0..30));
    let empty = tempfile::tempdir().unwrap();
    let list = InputList::list(&[empty.path().to_path_buf()]);
    assert!(list.files.is_empty());
    assert_eq!(list.empty_dirs, vec![empty.path().to_path_buf()]);
}
