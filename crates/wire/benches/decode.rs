//! Decoding cost of typical frames: `cargo bench -p burstwatch-wire -- --quick`.

use std::hint::black_box;

use burstwatch_wire::{decode, Decoded, LinkType, PacketMeta};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const MAC: [u8; 12] = [0, 1, 2, 3, 4, 5, 0, 6, 7, 8, 9, 10];

/// Ethernet / IPv4 / TCP (ACK with 1448 bytes, as cut by a 128-byte snaplen).
fn eth_ipv4_tcp() -> Vec<u8> {
    [
        &MAC[..],
        &[0x08, 0x00],
        &[
            0x45, 0, 0x05, 0xDC, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ],
        &[
            0x01, 0xBB, 0xC3, 0x50, 0, 0, 0, 1, 0, 0, 0, 1, 0x80, 0x10, 0x01, 0xF5, 0, 0, 0, 0,
        ],
        &[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        &[0; 62],
    ]
    .concat()
}

/// Ethernet / 802.1Q / IPv6 / UDP (DNS-sized).
fn vlan_ipv6_udp() -> Vec<u8> {
    [
        &MAC[..],
        &[0x81, 0x00, 0, 100, 0x86, 0xDD],
        &[0x60, 0, 0, 0, 0, 40, 17, 64],
        &[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        &[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        &[0xD4, 0x31, 0, 53, 0, 40, 0, 0],
        &[0; 32],
    ]
    .concat()
}

/// Ethernet / IPv4 / UDP 4789 / VXLAN / Ethernet / IPv4 / TCP.
fn vxlan() -> Vec<u8> {
    [
        &MAC[..],
        &[0x08, 0x00],
        &[
            0x45, 0, 0, 90, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 1,
        ],
        &[0xC0, 0x00, 0x12, 0xB5, 0, 70, 0, 0],
        &[0x08, 0, 0, 0, 0, 0x12, 0x34, 0],
        &MAC[..],
        &[0x08, 0x00],
        &[
            0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ],
        &[
            0, 80, 0xC3, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x12, 0xFF, 0xFF, 0, 0, 0, 0,
        ],
    ]
    .concat()
}

fn bench(c: &mut Criterion) {
    let frames = [
        ("eth_ipv4_tcp", eth_ipv4_tcp()),
        ("vlan_ipv6_udp", vlan_ipv6_udp()),
        ("vxlan_ipv4_tcp", vxlan()),
    ];
    let mut meta = PacketMeta::default();
    for (_, f) in &frames {
        assert_eq!(decode(LinkType::ETHERNET, f, &mut meta), Ok(Decoded::Ip));
    }
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    for (name, f) in &frames {
        group.bench_function(*name, |b| {
            b.iter(|| decode(LinkType::ETHERNET, black_box(f), black_box(&mut meta)))
        });
    }
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("mix", |b| {
        b.iter(|| {
            for (_, f) in &frames {
                let _ = black_box(decode(LinkType::ETHERNET, black_box(f), &mut meta));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
