//! Flow-table update throughput: packets of a realistic flow mix (many flows, so the table
//! falls out of cache as it does on a busy link), and the single-hot-flow best case.
#![allow(missing_docs, clippy::unwrap_used)] // bench harness

use std::net::{IpAddr, Ipv4Addr};

use burstwatch_engine::{FlowConfig, FlowTable};
use burstwatch_wire::PacketMeta;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

fn packets(flows: u32, n: usize) -> Vec<(i64, PacketMeta)> {
    // A deterministic LCG picks the flow of each packet; both directions occur.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|i| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let f = ((x >> 33) as u32) % flows;
            let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | f));
            let server = IpAddr::V4(Ipv4Addr::from(0xc612_0000 | (f % 4096)));
            let up = (x >> 7) & 1 == 0;
            let (src, dst, sport, dport) = if up {
                (client, server, 40_000, 443)
            } else {
                (server, client, 443, 40_000)
            };
            let meta = PacketMeta {
                src,
                dst,
                sport,
                dport,
                proto: 6,
                ip_len: 1500,
                payload_len: 1448,
                tcp_flags: 0x10,
                ..PacketMeta::default()
            };
            (1_700_000_000_000_000_000 + i as i64 * 1_000, meta)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_update");
    for flows in [1u32, 10_000, 1_000_000] {
        let pkts = packets(flows, 1_000_000);
        g.throughput(Throughput::Elements(pkts.len() as u64));
        g.bench_function(format!("{flows}_flows"), |b| {
            b.iter_batched_ref(
                || FlowTable::new(FlowConfig::default(), 5),
                |t| {
                    for (ts, m) in &pkts {
                        t.ingest(*ts, m);
                    }
                    while t.pop_record().is_some() {}
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
