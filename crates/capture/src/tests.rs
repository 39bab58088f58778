//! Unit tests on literal bytes, each run through every input path: a memory-mapped temp file,
//! the buffered file reader, and a stream that hands out 3 bytes per read (every refill path).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failures should panic

use std::io::{Read, Write};
use std::path::Path;

use crate::{CaptureFile, Format, LinkType, ReadError, ReadErrorKind};

/// (ts_ns, link, interface, wire_len, data) of every packet, and the error that ended the file.
type Read_ = (Vec<(i64, u32, u32, u32, Vec<u8>)>, Option<ReadError>);

fn collect(mut f: CaptureFile) -> Read_ {
    let mut v = Vec::new();
    loop {
        match f.next_packet() {
            Ok(Some(p)) => v.push((
                p.ts_ns,
                p.link_type.0,
                p.interface,
                p.wire_len,
                p.data.to_vec(),
            )),
            Ok(None) => return (v, None),
            Err(e) => {
                assert!(
                    f.next_packet().unwrap().is_none(),
                    "reads after an error must end"
                );
                return (v, Some(e));
            }
        }
    }
}

/// A reader that returns at most 3 bytes per call.
struct Trickle(std::io::Cursor<Vec<u8>>);

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(3);
        self.0.read(&mut buf[..n])
    }
}

/// Reads `bytes` through a buffered file and a trickling stream: both must agree.
fn read_both(bytes: &[u8]) -> Result<Read_, ReadError> {
    let mut tmp = tempfile::NamedTempFile::new().unwrap();
    tmp.write_all(bytes).unwrap();
    tmp.flush().unwrap();
    let streamed =
        CaptureFile::from_reader(tmp.path(), Trickle(std::io::Cursor::new(bytes.to_vec())))
            .map(collect);
    let buffered = CaptureFile::open(tmp.path()).map(collect);
    let show = |r: &Result<Read_, ReadError>| match r {
        Ok((p, e)) => format!("{p:?} {:?}", e.as_ref().map(|e| (e.offset, e.to_string()))),
        Err(e) => format!("open: {e}"),
    };
    assert_eq!(show(&buffered), show(&streamed));
    buffered
}

fn ok(bytes: &[u8]) -> Vec<(i64, u32, u32, u32, Vec<u8>)> {
    let (p, e) = read_both(bytes).unwrap();
    assert!(e.is_none(), "{e:?}");
    p
}

fn fail(bytes: &[u8]) -> (usize, ReadError) {
    match read_both(bytes) {
        Ok((p, Some(e))) => (p.len(), e),
        Ok((_, None)) => panic!("no error"),
        Err(e) => (0, e),
    }
}

// ---------------------------------------------------------------- classic pcap

fn put32(v: &mut Vec<u8>, x: u32, be: bool) {
    v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() });
}

fn pcap_header(magic: u32, be: bool, link: u32) -> Vec<u8> {
    let mut v = Vec::new();
    put32(&mut v, magic, be);
    let ver: [u8; 4] = if be { [0, 2, 0, 4] } else { [2, 0, 4, 0] };
    v.extend_from_slice(&ver);
    put32(&mut v, 0, be);
    put32(&mut v, 0, be);
    put32(&mut v, 65535, be);
    put32(&mut v, link, be);
    v
}

fn pcap_record(v: &mut Vec<u8>, be: bool, sec: u32, frac: u32, data: &[u8], orig: u32) {
    for x in [sec, frac, data.len() as u32, orig] {
        put32(v, x, be);
    }
    v.extend_from_slice(data);
}

#[test]
fn pcap_micro_nano_both_byte_orders() {
    for be in [false, true] {
        for (magic, frac, want_ns) in [
            (0xa1b2_c3d4, 123_456, 123_456_000),
            (0xa1b2_3c4d, 123_456_789, 123_456_789),
        ] {
            let mut f = pcap_header(magic, be, 1);
            pcap_record(&mut f, be, 1_600_000_000, frac, &[1, 2, 3], 60);
            pcap_record(&mut f, be, 4_000_000_000, 0, &[], 0);
            let p = ok(&f);
            assert_eq!(p.len(), 2);
            assert_eq!(
                p[0],
                (
                    1_600_000_000 * 1_000_000_000 + want_ns,
                    1,
                    0,
                    60,
                    vec![1, 2, 3]
                )
            );
            // Seconds are unsigned (files from after 2038).
            assert_eq!(p[1].0, 4_000_000_000 * 1_000_000_000);
            let file = CaptureFile::open(&write(&f)).unwrap();
            assert_eq!(
                file.format(),
                Format::Pcap {
                    nanos: magic == 0xa1b2_3c4d,
                    big_endian: be
                }
            );
            assert!(!file.is_gzip());
        }
    }
}

fn write(bytes: &[u8]) -> std::path::PathBuf {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let (mut file, path) = tmp.keep().unwrap();
    file.write_all(bytes).unwrap();
    path
}

#[test]
fn pcap_fcs_bits_in_link_type_are_ignored_and_reserved_bits_refused() {
    let mut f = pcap_header(0xa1b2_c3d4, false, 0x1400_0001); // FCS length 4, flag set
    pcap_record(&mut f, false, 1, 0, &[9], 1);
    assert_eq!(ok(&f)[0].1, 1);
    let f = pcap_header(0xa1b2_c3d4, false, 0x0030_0001);
    assert!(matches!(fail(&f).1.reason, ReadErrorKind::BadHeader(_)));
}

#[test]
fn modified_pcap_has_24_byte_record_headers() {
    let mut f = pcap_header(0xa1b2_cd34, false, 1);
    for (sec, data) in [(10u32, &[1u8, 2][..]), (11, &[3][..])] {
        pcap_record(&mut f, false, sec, 5, data, data.len() as u32);
        let pos = f.len() - data.len();
        f.splice(pos..pos, [0u8; 8]); // ifindex, protocol, pkt_type, pad
    }
    let p = ok(&f);
    assert_eq!(
        p.iter().map(|p| (p.0, p.4.clone())).collect::<Vec<_>>(),
        [(10_000_005_000, vec![1, 2]), (11_000_005_000, vec![3])]
    );
}

#[test]
fn bad_magic_empty_and_short_files() {
    let (_, e) = fail(b"GIF89a........................");
    assert!(matches!(e.reason, ReadErrorKind::NotACapture));
    assert_eq!(e.offset, 0);
    assert!(matches!(fail(b"").1.reason, ReadErrorKind::Empty));
    assert!(matches!(
        fail(&[0xd4, 0xc3]).1.reason,
        ReadErrorKind::Truncated { needed: 4, have: 2 }
    ));
    let h = pcap_header(0xa1b2_c3d4, false, 1);
    assert!(matches!(
        fail(&h[..20]).1.reason,
        ReadErrorKind::Truncated {
            needed: 24,
            have: 20
        }
    ));
    let mut bad_version = h.clone();
    bad_version[4] = 1;
    assert!(matches!(
        fail(&bad_version).1.reason,
        ReadErrorKind::BadHeader(_)
    ));
}

#[test]
fn record_too_long_is_reported_at_its_offset_without_allocating() {
    let mut f = pcap_header(0xa1b2_c3d4, false, 1);
    pcap_record(&mut f, false, 1, 0, &[0; 10], 10);
    let at = f.len() as u64;
    for x in [2u32, 0, u32::MAX, u32::MAX] {
        put32(&mut f, x, false);
    }
    let (n, e) = fail(&f);
    assert_eq!((n, e.offset), (1, at));
    assert!(matches!(
        e.reason,
        ReadErrorKind::RecordTooLong {
            len: u32::MAX,
            limit: 262_144
        }
    ));
    let shown = e.to_string();
    assert!(
        shown.ends_with(": offset 50: record length 4294967295 exceeds the 262144-byte limit"),
        "{shown}"
    );
    let e = ReadError::new(
        "dir/x.pcap",
        1234,
        ReadErrorKind::RecordTooLong {
            len: u32::MAX,
            limit: 262_144,
        },
    );
    assert_eq!(
        e.to_string(),
        "dir/x.pcap: offset 1234: record length 4294967295 exceeds the 262144-byte limit"
    );
}

#[test]
fn truncated_last_record_after_good_packets() {
    let mut f = pcap_header(0xa1b2_c3d4, true, 1);
    pcap_record(&mut f, true, 1, 0, &[1; 40], 40);
    pcap_record(&mut f, true, 2, 0, &[2; 40], 40);
    let at = f.len() as u64;
    pcap_record(&mut f, true, 3, 0, &[3; 40], 40);
    // Cut in the data, and in the record header.
    let (n, e) = fail(&f[..f.len() - 15]);
    assert_eq!((n, e.offset), (2, at));
    assert!(
        matches!(
            e.reason,
            ReadErrorKind::Truncated {
                needed: 56,
                have: 41
            }
        ),
        "{e}"
    );
    let (n, e) = fail(&f[..at as usize + 7]);
    assert_eq!((n, e.offset), (2, at));
    assert!(
        matches!(
            e.reason,
            ReadErrorKind::Truncated {
                needed: 16,
                have: 7
            }
        ),
        "{e}"
    );
}

// ---------------------------------------------------------------- pcapng

/// Builds a block: type, length, body (padded), length.
fn block(btype: u32, body: &[u8], be: bool) -> Vec<u8> {
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let total = 12 + body.len() as u32;
    let mut v = Vec::new();
    put32(&mut v, btype, be);
    put32(&mut v, total, be);
    v.extend_from_slice(&body);
    put32(&mut v, total, be);
    v
}

fn shb(be: bool) -> Vec<u8> {
    let mut b = Vec::new();
    put32(&mut b, 0x1a2b_3c4d, be);
    b.extend_from_slice(&if be { [0, 1, 0, 0] } else { [1, 0, 0, 0] });
    b.extend_from_slice(&[0xff; 8]); // section length: unknown
    block(0x0a0d_0d0a, &b, be)
}

fn option(code: u16, value: &[u8], be: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let c = |x: u16| if be { x.to_be_bytes() } else { x.to_le_bytes() };
    v.extend_from_slice(&c(code));
    v.extend_from_slice(&c(value.len() as u16));
    v.extend_from_slice(value);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn idb(link: u16, opts: &[Vec<u8>], be: bool) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&if be {
        link.to_be_bytes()
    } else {
        link.to_le_bytes()
    });
    b.extend_from_slice(&[0, 0]);
    put32(&mut b, 0, be);
    for o in opts {
        b.extend_from_slice(o);
    }
    if !opts.is_empty() {
        b.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(1, &b, be)
}

fn epb(iface: u32, ts: u64, data: &[u8], wire: u32, be: bool) -> Vec<u8> {
    let mut b = Vec::new();
    for x in [iface, (ts >> 32) as u32, ts as u32, data.len() as u32, wire] {
        put32(&mut b, x, be);
    }
    b.extend_from_slice(data);
    block(6, &b, be)
}

#[test]
fn pcapng_two_sections_of_different_byte_order() {
    let mut f = shb(false);
    f.extend(idb(1, &[], false));
    f.extend(epb(0, 1_500_000, &[1, 2, 3, 4, 5], 70, false));
    f.extend(block(0x0000_0bad, &[7; 10], false)); // custom block: skipped
    f.extend(shb(true));
    f.extend(idb(101, &[option(9, &[9], true)], true));
    f.extend(idb(113, &[], true));
    f.extend(epb(0, 1_000_000_007, &[6], 1, true));
    f.extend(epb(1, 2, &[7, 8], 2, true));
    let p = ok(&f);
    assert_eq!(
        p,
        [
            (1_500_000_000, 1, 0, 70, vec![1, 2, 3, 4, 5]),
            (1_000_000_007, 101, 0, 1, vec![6]),
            (2_000, 113, 1, 2, vec![7, 8]),
        ]
    );
    assert_eq!(
        CaptureFile::open(&write(&f)).unwrap().format(),
        Format::PcapNg
    );
}

#[test]
fn new_section_resets_interfaces() {
    let mut f = shb(false);
    f.extend(idb(1, &[], false));
    f.extend(idb(1, &[], false));
    f.extend(epb(1, 1, &[1], 1, false));
    f.extend(shb(false));
    f.extend(idb(1, &[], false));
    let at = f.len() as u64;
    f.extend(epb(1, 1, &[1], 1, false));
    let (n, e) = fail(&f);
    assert_eq!((n, e.offset), (1, at));
    assert!(
        e.to_string()
            .contains("interface id 1 out of range (1 interfaces"),
        "{e}"
    );
}

#[test]
fn tsresol_ns_and_power_of_two_and_tsoffset() {
    let mut f = shb(false);
    f.extend(idb(1, &[option(9, &[9], false)], false));
    f.extend(idb(1, &[option(9, &[0x80 | 20], false)], false));
    f.extend(idb(1, &[option(14, &100i64.to_le_bytes(), false)], false));
    f.extend(idb(
        1,
        &[
            option(9, &[3], false),
            option(14, &(-1i64).to_le_bytes(), false),
        ],
        false,
    ));
    f.extend(epb(0, 1_234_567_891, &[], 0, false));
    f.extend(epb(1, 3 << 19, &[], 0, false)); // 1.5 s in 2^-20 units
    f.extend(epb(2, 5, &[], 0, false)); // 5 µs + 100 s
    f.extend(epb(3, 2_500, &[], 0, false)); // 2.5 s - 1 s
    let ts: Vec<i64> = ok(&f).iter().map(|p| p.0).collect();
    assert_eq!(
        ts,
        [1_234_567_891, 1_500_000_000, 100_000_005_000, 1_500_000_000]
    );
}

#[test]
fn spb_and_opb() {
    let be = true;
    let mut f = shb(be);
    f.extend(idb(1, &[], be));
    f.extend(idb(0, &[], be));
    f.extend(epb(0, 42, &[1], 1, be));
    // SPB: original length 3 in a padded body of 4 -> 3 bytes; then one cut by the block.
    let mut s = Vec::new();
    put32(&mut s, 3, be);
    s.extend_from_slice(&[5, 6, 7]);
    f.extend(block(3, &s, be));
    let mut s = Vec::new();
    put32(&mut s, 1500, be);
    s.extend_from_slice(&[8; 8]);
    f.extend(block(3, &s, be));
    // OPB: interface u16, drops u16, ts, caplen, len.
    let mut o = vec![0, 1, 0, 0];
    for x in [0u32, 77, 2, 90] {
        put32(&mut o, x, be);
    }
    o.extend_from_slice(&[9, 9]);
    f.extend(block(2, &o, be));
    let p = ok(&f);
    assert_eq!(
        p,
        [
            (42_000, 1, 0, 1, vec![1]),
            (42_000, 1, 0, 3, vec![5, 6, 7]),
            (42_000, 1, 0, 1500, vec![8; 8]),
            (77_000, 0, 1, 90, vec![9, 9]),
        ]
    );
    let _ = LinkType::NULL;
}

#[test]
fn block_length_faults() {
    let base = {
        let mut f = shb(false);
        f.extend(idb(1, &[], false));
        f
    };
    let at = base.len() as u64;
    let good = epb(0, 1, &[1, 2, 3, 4], 4, false);
    // Trailing length differs.
    let mut f = base.clone();
    let mut b = good.clone();
    let n = b.len();
    b[n - 4] ^= 4;
    f.extend(b);
    let (k, e) = fail(&f);
    assert_eq!((k, e.offset), (0, at));
    assert!(e.to_string().contains("trailing block length"), "{e}");
    // Not a multiple of 4, less than 12, over the cap.
    for (len, text) in [
        (37u32, "not a multiple of 4"),
        (8, "less than 12"),
        (0x7000_0000, "exceeds the 16777216-byte limit"),
    ] {
        let mut f = base.clone();
        let mut b = good.clone();
        b[4..8].copy_from_slice(&len.to_le_bytes());
        f.extend(b);
        let (_, e) = fail(&f);
        assert_eq!(e.offset, at);
        assert!(e.to_string().contains(text), "{e}");
    }
    // Captured length larger than the block.
    let mut f = base.clone();
    let mut b = good.clone();
    b[20..24].copy_from_slice(&400u32.to_le_bytes());
    f.extend(b);
    assert!(fail(&f)
        .1
        .to_string()
        .contains("captured length 400 exceeds"));
    // Captured length over the record limit.
    let mut f = base.clone();
    let mut b = good.clone();
    b[20..24].copy_from_slice(&300_000u32.to_le_bytes());
    f.extend(b);
    assert!(matches!(
        fail(&f).1.reason,
        ReadErrorKind::RecordTooLong { len: 300_000, .. }
    ));
    // Cut inside the last block (a skipped one and a packet one).
    let mut f = base.clone();
    f.extend(&good);
    let at2 = f.len() as u64;
    f.extend(block(5, &[0; 40], false));
    let (k, e) = fail(&f[..f.len() - 10]);
    assert_eq!((k, e.offset), (1, at2));
    assert!(
        matches!(
            e.reason,
            ReadErrorKind::Truncated {
                needed: 52,
                have: 42
            }
        ),
        "{e}"
    );
    let mut f = base.clone();
    f.extend(&good);
    let (k, e) = fail(&f[..f.len() - 1]);
    assert_eq!((k, e.offset), (0, at));
    assert!(
        matches!(
            e.reason,
            ReadErrorKind::Truncated {
                needed: 36,
                have: 35
            }
        ),
        "{e}"
    );
}

#[test]
fn bad_interface_id_and_missing_interface() {
    let mut f = shb(false);
    f.extend(idb(1, &[], false));
    let at = f.len() as u64;
    f.extend(epb(7, 1, &[1], 1, false));
    let (_, e) = fail(&f);
    assert_eq!(e.offset, at);
    assert!(matches!(e.reason, ReadErrorKind::BadBlock(_)));
    assert!(e.to_string().contains("interface id 7 out of range"), "{e}");
    let mut f = shb(false);
    f.extend(block(3, &[1, 0, 0, 0, 1, 0, 0, 0], false));
    assert!(fail(&f).1.to_string().contains("before any interface"));
}

#[test]
fn bad_section_headers() {
    let mut f = shb(false);
    f[8..12].copy_from_slice(&[1, 2, 3, 4]);
    assert!(matches!(fail(&f).1.reason, ReadErrorKind::BadHeader(_)));
    let mut f = shb(false);
    f[12] = 2; // version 2.0
    assert!(fail(&f).1.to_string().contains("version 2.0"));
    // An option that overruns its block.
    let mut f = shb(false);
    f.extend(idb(1, &[option(2, &[b'x'; 8], false)], false));
    let n = f.len();
    f[n - 18..n - 16].copy_from_slice(&200u16.to_le_bytes());
    let (_, e) = fail(&f);
    assert!(e.to_string().contains("overruns"), "{e}");
}

#[test]
fn gzip_detected_by_magic_and_streamed() {
    let mut f = pcap_header(0xa1b2_c3d4, false, 1);
    for i in 0..1000u32 {
        pcap_record(&mut f, false, i, 0, &i.to_le_bytes(), 4);
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&f).unwrap();
    let gz = enc.finish().unwrap();
    let plain = ok(&f);
    assert_eq!(ok(&gz), plain);
    // Two concatenated members are one stream.
    let half = f.len() / 2;
    let mut two = Vec::new();
    for part in [&f[..half], &f[half..]] {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(part).unwrap();
        two.extend(enc.finish().unwrap());
    }
    assert_eq!(ok(&two), plain);
    let path = write(&gz);
    let file = CaptureFile::open(Path::new(&path)).unwrap();
    assert!(file.is_gzip());
    // A cut gzip stream: a gzip error after the packets decoded so far.
    let (k, e) = fail(&gz[..gz.len() / 2]);
    assert!(k < 1000);
    assert!(matches!(e.reason, ReadErrorKind::Gzip(_)), "{e}");
}

#[test]
fn readers_can_move_to_another_thread() {
    fn send<T: Send>() {}
    send::<CaptureFile>();
    send::<crate::Archive>();
    send::<crate::BpfFilter>();
    send::<ReadError>();
}
