//! Arbitrary bytes as a capture file: never a panic, never an oversized packet.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: failures should panic

use std::io::Write;

use burstwatch_capture::{CaptureFile, MAX_RECORD};
use proptest::prelude::*;

fn read_all(bytes: &[u8]) {
    let mut tmp = tempfile::NamedTempFile::new().unwrap();
    tmp.write_all(bytes).unwrap();
    tmp.flush().unwrap();
    let Ok(mut f) = CaptureFile::open(tmp.path()) else {
        return;
    };
    let mut n = 0;
    loop {
        match f.next_packet() {
            Ok(Some(p)) => assert!(p.data.len() <= MAX_RECORD as usize),
            Ok(None) => break,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                // After an error: nothing more.
                assert!(f.next_packet().unwrap().is_none());
                break;
            }
        }
        n += 1;
        assert!(n < 1_000_000);
    }
}

fn prefixed(magic: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..600).prop_map(move |tail| {
        let mut v = magic.to_vec();
        v.extend(tail);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        read_all(&bytes);
    }

    #[test]
    fn arbitrary_pcap_bodies_never_panic(
        bytes in prop_oneof![
            prefixed(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]),
            prefixed(&[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1]),
            prefixed(&[0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0]),
        ]
    ) {
        read_all(&bytes);
    }

    #[test]
    fn arbitrary_pcapng_bodies_never_panic(
        bytes in prop_oneof![
            // SHB (LE) + IDB (Ethernet) then arbitrary blocks.
            prefixed(&[
                0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0,
                1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 4, 0, 20, 0, 0, 0,
            ]),
            prefixed(&[0x0a, 0x0d, 0x0d, 0x0a]),
        ]
    ) {
        read_all(&bytes);
    }

    #[test]
    fn gzip_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        let gz = enc.finish().unwrap();
        read_all(&gz);
        read_all(&gz[..gz.len() / 2]);
    }
}
