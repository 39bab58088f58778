//! Records per second through the flow-export path: IPFIX datagrams (16 records each, templates
//! every 10 s) parsed, pro-rated into bins and fed to the engine, and the parser alone; with
//! records of 10 s spans and of zero spans; from a fresh and a warm engine (both to the end of
//! input) and in a steady state (fed on, never finished, as in a daemon).
//! `cargo bench -p burstwatch-flowexport -- --quick`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use burstwatch_engine::{DetectConfig, Engine, FlowConfig};
use burstwatch_flowexport::{engine_input, Collector, Config, NS_PER_SEC};
use burstwatch_sim::export::encode::{self, Header, Record};
use burstwatch_wire::PacketMeta;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const T0: i64 = 1_767_225_600 * NS_PER_SEC;
const DATAGRAMS: usize = 2_000;
const PER: usize = 16;

/// 2,000 datagrams, one every 10 ms from `t0`, of 16 records each: 32,000 records of
/// `span_s` s spans from 4,000 subscribers to 500 servers.
fn datagrams(t0: i64, span_s: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::with_capacity(DATAGRAMS);
    let mut n: u32 = 0;
    for d in 0..DATAGRAMS {
        let export_ns = t0 + d as i64 * 10_000_000;
        let recs: Vec<Record> = (0..PER)
            .map(|_| {
                n = n.wrapping_add(1);
                let sub = n % 4000;
                Record {
                    src: IpAddr::V4(Ipv4Addr::new(10, 0, (sub >> 8) as u8, sub as u8)),
                    dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, (n % 250) as u8)),
                    proto: 6,
                    sport: 30000 + (n % 20000) as u16,
                    dport: 443,
                    bytes: 20_000 + u64::from(n % 7919),
                    packets: 20,
                    start_ns: export_ns - (span_s + 1) * NS_PER_SEC,
                    end_ns: export_ns - NS_PER_SEC,
                }
            })
            .collect();
        let h = Header {
            export_ns,
            boot_ns: t0 - 3600 * NS_PER_SEC,
            sequence: (d * PER) as u32,
            domain: 1,
            sampling: 1,
        };
        let mut buf = Vec::new();
        encode::ipfix(&h, &recs, d % 1000 == 0, &mut buf);
        out.push((export_ns, buf));
    }
    out
}

/// The detector settings of flow-export input: beacon scoring off, as `analyze --input-kind
/// flow-export` sets it (a daemon skips beacon work for flow-export pairs one by one).
fn detect() -> DetectConfig {
    DetectConfig {
        beacon_min_events: u32::MAX,
        ..DetectConfig::default()
    }
}

/// Feed `input` through `col` into `engine`, draining both.
fn feed(col: &mut Collector, engine: &mut Engine, input: &[(i64, Vec<u8>)], meta: &mut PacketMeta) {
    let from = SocketAddr::from(([192, 0, 2, 250], 4739));
    let drain = |col: &mut Collector, engine: &mut Engine, meta: &mut PacketMeta| {
        while let Some(bin) = col.pop() {
            engine_input(&bin, meta, |ts, m| engine.ingest(ts, m));
        }
        while engine.pop_record().is_some() {}
        while engine.pop_alert().is_some() {}
    };
    for (ts, d) in input {
        col.push(*ts, from, d);
        drain(col, engine, meta);
    }
    col.finish();
    drain(col, engine, meta);
}

/// Feed `input` through `col` into `engine` as a daemon does: no end of input.
fn feed_open(
    col: &mut Collector,
    engine: &mut Engine,
    input: &[(i64, Vec<u8>)],
    meta: &mut PacketMeta,
) {
    let from = SocketAddr::from(([192, 0, 2, 250], 4739));
    for (ts, d) in input {
        col.push(*ts, from, d);
        while let Some(bin) = col.pop() {
            engine_input(&bin, meta, |ts, m| engine.ingest(ts, m));
        }
        while engine.pop_record().is_some() {}
        while engine.pop_alert().is_some() {}
    }
}

/// Records of 10 s spans (what an active timeout of 10 s gives long flows: each record
/// touches 11 one-second bins) and of zero spans (each touches one).
fn bench(c: &mut Criterion) {
    bench_spans(c, "ipfix", 10);
    bench_spans(c, "ipfix 0 s spans", 0);
}

fn bench_spans(c: &mut Criterion, name: &str, span_s: i64) {
    let input = datagrams(T0, span_s);
    // The same traffic an hour later: in the warm case the collector and the engine have seen
    // the first hour's records, which have timed out, so their tables and buffers have their
    // size and pages already (as in a daemon that has run for a while).
    let later = datagrams(T0 + 3600 * NS_PER_SEC, span_s);
    let from = SocketAddr::from(([192, 0, 2, 250], 4739));
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements((DATAGRAMS * PER) as u64));
    g.sample_size(10);
    g.bench_function("parser", |b| {
        b.iter(|| {
            let mut p = netflow_parser::scoped_parser::AutoScopedParser::new();
            let mut n = 0usize;
            for (_, d) in &input {
                n += p.parse_from_source(from, d).packets.len();
            }
            black_box(n)
        })
    });
    g.bench_function("collector", |b| {
        b.iter(|| {
            let mut col = Collector::new(Config::default()).expect("default config");
            let mut bins = 0u64;
            for (ts, d) in &input {
                col.push(*ts, from, d);
                while col.pop().is_some() {
                    bins += 1;
                }
            }
            col.finish();
            while col.pop().is_some() {
                bins += 1;
            }
            black_box(bins)
        })
    });
    g.bench_function("collector+engine", |b| {
        b.iter(|| {
            let mut col = Collector::new(Config::default()).expect("default config");
            let mut engine = Engine::new(FlowConfig::default(), detect(), 1);
            let mut meta = PacketMeta::default();
            feed(&mut col, &mut engine, &input, &mut meta);
            engine.finish();
            black_box(engine.flows().stats())
        })
    });
    g.bench_function("collector+engine warm", |b| {
        b.iter_batched(
            || {
                let mut col = Collector::new(Config::default()).expect("default config");
                let mut engine = Engine::new(FlowConfig::default(), detect(), 1);
                let mut meta = PacketMeta::default();
                feed(&mut col, &mut engine, &input, &mut meta);
                (col, engine, meta)
            },
            |(mut col, mut engine, mut meta)| {
                feed(&mut col, &mut engine, &later, &mut meta);
                engine.finish();
                black_box(engine.flows().stats())
            },
            criterion::BatchSize::PerIteration,
        )
    });
    // Steady state, as in a daemon: one collector and engine fed hour after hour of the same
    // traffic (each hour's flows have timed out by the next), never finished; the feed alone
    // is timed. With flow records made of the bins (a daemon with `flows_file`), and without
    // (the bins skip the flow table).
    for (name, export_flows) in [
        ("collector+engine steady", true),
        ("collector+engine steady, no flow records", false),
    ] {
        let mut col = Collector::new(Config::default()).expect("default config");
        let flow = FlowConfig {
            export_flows,
            ..FlowConfig::default()
        };
        let mut engine = Engine::new(flow, detect(), 1);
        let mut meta = PacketMeta::default();
        let mut hour = 2;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut took = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let data = datagrams(T0 + hour * 3600 * NS_PER_SEC, span_s);
                    hour += 1;
                    let t = std::time::Instant::now();
                    feed_open(&mut col, &mut engine, &data, &mut meta);
                    took += t.elapsed();
                }
                took
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
