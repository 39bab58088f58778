//! Reads the shared capture corpus and compares with capinfos/tshark.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failures should panic

mod common;

use std::io::Write;

use burstwatch_capture::{CaptureFile, Format, LinkType, ReadErrorKind};
use common::{corpus, count, manifest, packets};

/// Files of the pcapng folders that are deliberately broken, with the reason we report.
/// (None is at present: all 74 read cleanly; broken files live under `malformed/`.)
const EXPECTED_FAILURES: &[(&str, &str)] = &[];

#[test]
fn pcapng_folders_match_capinfos_counts() {
    let mut checked = 0;
    for (rel, want) in manifest() {
        let top_level = rel.starts_with("pcapng/") && rel.matches('/').count() == 1;
        let wanted = rel.starts_with("pcapng/hadrielk/")
            || rel.starts_with("pcapng/rusticata/")
            || top_level;
        if !wanted {
            continue;
        }
        let (n, err) = count(&corpus().join(&rel));
        match EXPECTED_FAILURES
            .iter()
            .find(|(p, _)| *p == rel)
            .map(|(_, r)| *r)
        {
            None => {
                assert!(err.is_none(), "{rel}: unexpected error {err:?}");
                assert_eq!(Some(n), want, "{rel}: packet count");
            }
            Some(reason) => {
                let err = err.unwrap_or_else(|| panic!("{rel}: expected an error"));
                assert!(err.to_string().contains(reason), "{rel}: {err}");
            }
        }
        checked += 1;
    }
    assert!(
        checked >= 70,
        "only {checked} files checked: corpus missing?"
    );
}

/// Every file tshark reads without complaint: our count equals capinfos'.
#[test]
fn whole_corpus_readable_files_match_capinfos_counts() {
    let mut checked = 0;
    for (rel, want) in manifest() {
        let Some(want) = want else { continue };
        if rel == "malformed/ndpi/fuzz-2021-10-13.pcap" {
            // capinfos counts the cut-short record that claims 524501 bytes; we refuse it.
            continue;
        }
        let (n, err) = count(&corpus().join(&rel));
        assert!(err.is_none(), "{rel}: unexpected error {err:?}");
        assert_eq!(n, want, "{rel}: packet count");
        checked += 1;
    }
    assert!(checked > 1300, "only {checked} files checked");
}

#[test]
fn malformed_and_robustness_never_panic_and_errors_are_located() {
    let mut errors = 0;
    for (rel, _) in manifest() {
        if !(rel.starts_with("malformed/") || rel.starts_with("robustness/")) {
            continue;
        }
        let path = corpus().join(&rel);
        let (_, err) = count(&path);
        if let Some(e) = err {
            errors += 1;
            assert_eq!(e.path, path);
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("{}: offset {}: ", path.display(), e.offset)),
                "{text}"
            );
            assert!(text.len() > path.display().to_string().len() + 12, "{text}");
        }
    }
    assert!(
        errors >= 6,
        "the malformed headers should be reported ({errors})"
    );
}

#[test]
fn known_broken_files_report_the_right_reason() {
    let cases: &[(&str, u64, u64, &str)] = &[
        (
            "malformed/libpcap/pcap-invalid-version-1.pcap",
            0,
            0,
            "major version 1",
        ),
        (
            "malformed/libpcap/linktype-reserved-field-not-zero.pcap",
            0,
            0,
            "reserved bits",
        ),
        (
            "malformed/libpcap/pcapng-invalid-vers-1.pcapng",
            0,
            0,
            "version 0.1",
        ),
        (
            "malformed/libpcap/pcapng-invalid-vers-2.pcapng",
            0,
            0,
            "version 1.1",
        ),
        (
            "malformed/libpcap/shb-option-too-long.pcapng",
            0,
            0,
            "section header",
        ),
        (
            "malformed/ndpi/fuzz-2021-10-13.pcap",
            0,
            24,
            "record length 524501 exceeds the 262144-byte limit",
        ),
    ];
    for &(rel, packets, offset, reason) in cases {
        let (n, err) = count(&corpus().join(rel));
        let err = err.unwrap_or_else(|| panic!("{rel}: no error"));
        assert_eq!((n, err.offset), (packets, offset), "{rel}: {err}");
        assert!(err.to_string().contains(reason), "{rel}: {err}");
    }
}

#[test]
fn modified_pcap_is_read() {
    let f = CaptureFile::open(&corpus().join("pcapng/rusticata/modified-format.pcap")).unwrap();
    assert_eq!(
        f.format(),
        Format::Pcap {
            nanos: false,
            big_endian: false
        }
    );
    let p = packets(&corpus().join("pcapng/rusticata/modified-format.pcap"));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].4.len(), 98);
}

/// `tshark -r pcapng/pcapng-multi-interface.pcapng -T fields -e frame.time_epoch
/// -e frame.interface_id -e frame.len -e frame.cap_len` (interface 0 in ns, 1 in µs).
#[test]
fn multi_interface_timestamps_match_tshark() {
    let want: &[(i64, u32, u32)] = &[
        (1_767_663_089_500_330_493, 0, 96),
        (1_767_663_089_514_291_940, 0, 214),
        (1_767_663_437_111_897_000, 1, 70),
        (1_767_663_437_126_460_000, 1, 166),
        (1_767_663_437_128_303_000, 1, 70),
        (1_767_663_437_140_942_000, 1, 182),
    ];
    let got = packets(&corpus().join("pcapng/pcapng-multi-interface.pcapng"));
    let got: Vec<(i64, u32, u32)> = got.iter().map(|p| (p.0, p.2, p.3)).collect();
    assert_eq!(got, want);
}

/// Two interfaces of different link types (Ethernet, NULL), in both byte orders; tshark:
/// time_epoch, interface_id, frame.len, frame.cap_len, encap (1 = Ethernet, 15 = NULL).
#[test]
fn two_link_types_match_tshark() {
    let want: &[(i64, u32, u32, u32, u32)] = &[
        (1_340_954_905_298_858_000, 1, 0, 314, 96),
        (1_340_954_905_299_858_000, 0, 1, 168, 168),
        (1_340_954_905_300_858_000, 1, 0, 342, 96),
        (1_340_954_905_301_858_000, 1, 0, 314, 96),
        (1_340_954_905_302_858_000, 1, 0, 342, 96),
    ];
    for order in ["le", "be"] {
        let path = corpus().join(format!(
            "pcapng/hadrielk/output_{order}__basic__test006.pcapng"
        ));
        let got: Vec<_> = packets(&path)
            .iter()
            .map(|p| (p.0, p.1, p.2, p.3, p.4.len() as u32))
            .collect();
        assert_eq!(got, want, "{order}");
    }
    // Nanosecond interface (if_tsresol = 9) next to a microsecond one.
    let path = corpus().join("pcapng/hadrielk/output_be__basic__test008.pcapng");
    let got: Vec<_> = packets(&path).iter().map(|p| (p.0, p.2)).collect();
    assert_eq!(
        got,
        [
            (1_340_954_905_298_858, 0),
            (1_340_954_905_299_858, 1),
            (1_340_954_905_300_858, 0),
            (1_340_954_905_301_858, 1)
        ]
    );
    assert_eq!(LinkType::ETHERNET, LinkType(1));
}

#[test]
fn gzip_gives_identical_packets() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "pcapng/rusticata/wireshark_samples-test.pcapng",
        "pcapng/rusticata/ntp.pcap",
        "pcapng/vntag.pcap",
    ] {
        let src = corpus().join(rel);
        let raw = std::fs::read(&src).unwrap();
        // Named without .gz on purpose: detection is by magic bytes.
        let gz = dir.path().join("compressed.bin");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(&raw).unwrap();
        enc.finish().unwrap();
        let f = CaptureFile::open(&gz).unwrap();
        assert!(f.is_gzip());
        assert_eq!(packets(&gz), packets(&src), "{rel}");
        let mut f = f;
        while f.next_packet().unwrap().is_some() {}
        assert_eq!(f.bytes_consumed(), std::fs::metadata(&gz).unwrap().len());
    }
}

#[test]
fn truncated_gzip_reports_gzip_error_after_good_packets() {
    let dir = tempfile::tempdir().unwrap();
    let raw =
        std::fs::read(corpus().join("pcapng/rusticata/wireshark_samples-test.pcapng")).unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&raw).unwrap();
    let gz = enc.finish().unwrap();
    let cut = dir.path().join("cut.pcapng.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let (n, err) = count(&cut);
    assert!(n > 100, "{n}");
    let err = err.expect("error");
    assert!(
        matches!(
            err.reason,
            ReadErrorKind::Gzip(_) | ReadErrorKind::Truncated { .. }
        ),
        "{err}"
    );
}
