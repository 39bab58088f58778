//! Reading speed: a generated ~100 MB pcap from a temp file, read through the buffer, and a
//! gzip-compressed copy. Reports MB/s (bytes of file) and packets/s.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)] // bench harness

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use burstwatch_capture::CaptureFile;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Writes a pcap of about `target` bytes with an ISP-like mix of frame sizes; returns the
/// packet count.
fn generate(path: &Path, target: usize) -> u64 {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(&[
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0,
    ])
    .unwrap();
    let sizes = [64usize, 1514, 576, 66, 1514, 1200, 90, 1514];
    // Incompressible-ish payload (xorshift), so the gzip figure is not flattered.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let payload: Vec<u8> = (0..1514)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let (mut written, mut n) = (24usize, 0u64);
    while written < target {
        let len = sizes[n as usize % sizes.len()];
        let ts_us = 1_700_000_000_000_000u64 + n * 7;
        for v in [
            (ts_us / 1_000_000) as u32,
            (ts_us % 1_000_000) as u32,
            len as u32,
            len as u32,
        ] {
            out.write_all(&v.to_le_bytes()).unwrap();
        }
        out.write_all(&payload[..len]).unwrap();
        written += 16 + len;
        n += 1;
    }
    out.flush().unwrap();
    n
}

fn drain(mut f: CaptureFile) -> (u64, u64) {
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(p) = f.next_packet().unwrap() {
        n += 1;
        bytes += u64::from(p.wire_len) + u64::from(p.data[p.data.len() / 2]);
    }
    (n, bytes)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("bench.pcap");
    let packets = generate(&plain, 100 << 20);
    let size = std::fs::metadata(&plain).unwrap().len();
    let gz = dir.path().join("bench.pcap.gz");
    {
        let raw = std::fs::read(&plain).unwrap();
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(&raw).unwrap();
        enc.finish().unwrap();
    }
    eprintln!("bench file: {size} bytes, {packets} packets");

    let mut g = c.benchmark_group("read_bytes");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(size));
    g.bench_function("pcap_buffered", |b| {
        b.iter(|| black_box(drain(CaptureFile::open(&plain).unwrap())))
    });
    g.bench_function("pcap_gzip", |b| {
        b.iter(|| black_box(drain(CaptureFile::open(&gz).unwrap())))
    });
    g.finish();

    let mut g = c.benchmark_group("read_packets");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(packets));
    g.bench_function("pcap_buffered", |b| {
        b.iter(|| black_box(drain(CaptureFile::open(&plain).unwrap())))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
