//! Cost of one pseudonym (IPv4: 32 AES blocks, IPv6: 128) and of one reveal.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::net::IpAddr;

use burstwatch_anon::Pseudonymizer;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let key: [u8; 32] = core::array::from_fn(|i| (i * 37) as u8);
    let p = Pseudonymizer::new(&key);
    let v4: IpAddr = "10.52.115.2".parse().unwrap_or(IpAddr::from([10, 0, 0, 1]));
    let v6: IpAddr = "fddb:f000:0:500:e845:ed1b:6fb5:97f"
        .parse()
        .unwrap_or(IpAddr::from([0xfd; 16]));
    c.bench_function("pseudonymize_v4", |b| {
        b.iter(|| p.pseudonymize(black_box(v4)))
    });
    c.bench_function("pseudonymize_v6", |b| {
        b.iter(|| p.pseudonymize(black_box(v6)))
    });
    c.bench_function("reveal_v4", |b| b.iter(|| p.reveal(black_box(v4))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
