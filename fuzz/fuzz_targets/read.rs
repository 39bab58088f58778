//! Fuzz the capture-file reader: the input is a whole file (pcap, pcapng or gzip of either).
//! Every packet handed out must respect the record cap; after an error nothing more comes.
#![no_main]

use std::path::Path;

use burstwatch_capture::{CaptureFile, MAX_RECORD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut file) =
        CaptureFile::from_reader(Path::new("fuzz"), std::io::Cursor::new(data.to_vec()))
    else {
        return;
    };
    let mut packets = 0u64;
    loop {
        match file.next_packet() {
            Ok(Some(p)) => {
                assert!(p.data.len() <= MAX_RECORD as usize);
                packets += 1;
            }
            Ok(None) => break,
            Err(_) => {
                assert!(matches!(file.next_packet(), Ok(None)));
                break;
            }
        }
    }
    // A record header is at least 12 bytes (pcapng SPB) or 16 (pcap).
    assert!(packets <= data.len() as u64 / 12 + 1);
});
