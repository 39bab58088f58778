//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burstwatch_capture::{CaptureFile, ReadError};

/// The shared capture corpus.
pub fn corpus() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/pcaps"
    ))
}

/// `(path relative to the corpus, capinfos packet count or None when capinfos could not read it)`.
pub fn manifest() -> Vec<(String, Option<u64>)> {
    let text = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let path_col = header
        .iter()
        .position(|c| *c == "path")
        .expect("path column");
    let count_col = header
        .iter()
        .position(|c| *c == "packet_count")
        .expect("packet_count column");
    lines
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (
                cols[path_col].to_string(),
                cols[count_col].trim().parse().ok(),
            )
        })
        .collect()
}

/// Reads a whole file: (packets delivered, the error that stopped it if any).
pub fn count(path: &Path) -> (u64, Option<ReadError>) {
    let mut f = match CaptureFile::open(path) {
        Ok(f) => f,
        Err(e) => return (0, Some(e)),
    };
    let mut n = 0;
    loop {
        match f.next_packet() {
            Ok(Some(p)) => {
                assert!(p.data.len() <= burstwatch_capture::MAX_RECORD as usize);
                n += 1;
            }
            Ok(None) => return (n, None),
            Err(e) => return (n, Some(e)),
        }
    }
}

/// All packets of a file as owned values: (ts_ns, link type, interface, wire_len, data).
pub fn packets(path: &Path) -> Vec<(i64, u32, u32, u32, Vec<u8>)> {
    let mut f = CaptureFile::open(path).expect("open");
    let mut v = Vec::new();
    while let Some(p) = f.next_packet().expect("read") {
        v.push((
            p.ts_ns,
            p.link_type.0,
            p.interface,
            p.wire_len,
            p.data.to_vec(),
        ));
    }
    v
}

/// Writes a little-endian microsecond pcap (Ethernet) holding `(ts_ns, data)` records.
pub fn write_pcap(path: &Path, records: &[(i64, Vec<u8>)]) {
    let mut b = Vec::new();
    b.extend_from_slice(&[
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0,
    ]);
    for (ts, data) in records {
        let sec = (ts / 1_000_000_000) as u32;
        let usec = ((ts % 1_000_000_000) / 1_000) as u32;
        for v in [sec, usec, data.len() as u32, data.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(data);
    }
    std::fs::write(path, b).expect("write pcap");
}

/// A 60-byte frame tagged with `n`.
pub fn frame(n: u32) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[..4].copy_from_slice(&n.to_be_bytes());
    f
}
