//! Benchmark of the shared prevalence store: contact updates per second per sensor, bytes per
//! endpoint in Redis (`MEMORY USAGE`), and the time a question takes (what it adds to an alert
//! decision) while contacts stream in. Run by `deploy/bench/cluster.sh`.
//!
//! `cargo run --release -p burstwatch-cluster --example bench -- URL SENSORS CONTACTS ENDPOINTS`
//! (URL `cluster:redis://a:7000,redis://b:7000,...`: a Redis Cluster, the nodes as seeds).
#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed run

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use burstwatch_cluster::{Cluster, Mode, Options, Store, Tags, Target};
use burstwatch_engine::detect::{Contact, GlobalQuery};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

fn addr(v: u32) -> [u8; 16] {
    std::net::Ipv4Addr::from(v).to_ipv6_mapped().octets()
}

/// A contact of subscriber `sub` with endpoint `ep` at second `t`.
fn contact(sub: u32, ep: u32, t: i64) -> Contact {
    let e = addr(0xC633_0000 | ep);
    let mut p = e;
    p[15] = 0;
    Contact {
        subscriber: addr(0x0A00_0000 | sub),
        endpoint: e,
        prefix: p,
        prefix_len: 24,
        ts_ns: T0 + t * S,
    }
}

/// One server's URL, or `cluster:` and a Redis Cluster's node URLs, comma-separated.
fn target(url: &str) -> Target {
    match url.strip_prefix("cluster:") {
        Some(list) => {
            let nodes: Vec<String> = list.split(',').map(String::from).collect();
            Target::new(&nodes[0], None).unwrap().cluster(&nodes[1..])
        }
        None => Target::new(url, None).unwrap(),
    }
}

fn opts(url: &str, id: &str) -> Options {
    Options {
        target: target(url),
        sensor_id: id.into(),
        tags: Tags::new(&[9; 32]),
        flush_interval: Duration::from_millis(1000),
        max_backlog: 4_000_000,
        set_cap: 8,
        lookback_ns: 3600 * S,
        ttl_extra_sec: 120,
        mode: Mode::Live,
        peer_wait: Duration::from_secs(1),
    }
}

/// CPU seconds redis-server has used (INFO cpu), over every node of a cluster.
fn redis_cpu(st: &mut Store) -> f64 {
    fn sum(v: &redis::Value) -> f64 {
        match v {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b)
                .lines()
                .filter(|l| l.starts_with("used_cpu_sys:") || l.starts_with("used_cpu_user:"))
                .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
                .sum(),
            redis::Value::VerbatimString { text, .. } => {
                sum(&redis::Value::BulkString(text.as_bytes().to_vec()))
            }
            redis::Value::Map(m) => m.iter().map(|(_, v)| sum(v)).sum(),
            _ => 0.0,
        }
    }
    st.raw(redis::cmd("INFO").arg("cpu"))
        .map(|v| sum(&v))
        .unwrap_or(0.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let sensors: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    let contacts: u32 = args
        .get(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let endpoints: u32 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(200_000);

    // 1. Throughput: each sensor streams `contacts` distinct (subscriber, endpoint) contacts
    //    (a mostly rare population: 2 subscribers per endpoint and sensor on average) over
    //    60 s of packet time; the figure is what the store took per second per sensor.
    let mut st = Store::connect(&target(&url)).unwrap();
    let cpu0 = redis_cpu(&mut st);
    let started = Instant::now();
    let handles: Vec<_> = (0..sensors)
        .map(|s| {
            let url = url.clone();
            std::thread::spawn(move || {
                let c = Cluster::start(opts(&url, &format!("bench-{s}"))).unwrap();
                let per_sec = contacts / 60;
                let t0 = Instant::now();
                for t in 0..60u32 {
                    let batch: Vec<Contact> = (0..per_sec)
                        .map(|i| {
                            let n = t * per_sec + i;
                            contact(
                                s * 1_000_000 + n % 100_000,
                                (n * 7919 + s) % endpoints,
                                i64::from(t),
                            )
                        })
                        .collect();
                    // One second of contacts, handed over and flushed (blocking here, to
                    // measure what the store takes; the packet path never waits).
                    c.sync(batch, T0 + i64::from(t) * S, Vec::new());
                }
                let secs = t0.elapsed().as_secs_f64();
                let written = c.counters().written.load(Relaxed);
                let dropped = c.counters().dropped.load(Relaxed);
                c.finish();
                (written, dropped, secs, u64::from(per_sec) * 60)
            })
        })
        .collect();
    let results: Vec<(u64, u64, f64, u64)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, (w, d, secs, sent)) in results.iter().enumerate() {
        println!(
            "sensor {i}: {sent} contacts in {secs:.2} s = {:.0} contacts/s; {w} set updates after merging (endpoint and prefix sets) = {:.0} updates/s; {d} dropped",
            *sent as f64 / secs,
            *w as f64 / secs
        );
    }
    let cpu = redis_cpu(&mut st) - cpu0;
    let updates: u64 = results.iter().map(|r| r.0).sum();
    let sent: u64 = results.iter().map(|r| r.3).sum();
    println!(
        "all sensors: {:.2} s wall; redis-server used {cpu:.2} CPU-s: {:.0} contacts and {:.0} set updates per redis CPU-second",
        started.elapsed().as_secs_f64(),
        sent as f64 / cpu,
        updates as f64 / cpu
    );

    // 2. Memory per endpoint: MEMORY USAGE of a sample of endpoint sets.
    let tags = Tags::new(&[9; 32]);
    let mut total = 0u64;
    let mut n = 0u64;
    let mut members = 0u64;
    for ep in (0..endpoints).step_by((endpoints as usize / 2000).max(1)) {
        let key = tags.endpoint_key(&addr(0xC633_0000 | ep));
        if let Ok(redis::Value::Int(b)) = st.raw(redis::cmd("MEMORY").arg("USAGE").arg(&key)) {
            total += b as u64;
            n += 1;
            if let Ok(redis::Value::Int(m)) = st.raw(redis::cmd("ZCARD").arg(&key)) {
                members += m as u64;
            }
        }
    }
    let (keys, used) = st.size().unwrap();
    println!(
        "memory: {} B per endpoint set on average (MEMORY USAGE of {n} sets, {:.1} members each); store: {keys} keys, {used} B used = {:.0} B per key",
        total / n.max(1),
        members as f64 / n.max(1) as f64,
        used as f64 / keys.max(1) as f64
    );

    // 3. Question latency under load: one sensor streams 10,000 contacts/s while another asks
    //    batches of 16 questions (what a second of held candidates at a busy sensor looks like).
    let loader = Cluster::start(opts(&url, "bench-load")).unwrap();
    let asker = Cluster::start(opts(&url, "bench-ask")).unwrap();
    let mut lat: Vec<f64> = Vec::new();
    let t = Instant::now();
    let mut k = 0u32;
    while t.elapsed() < Duration::from_secs(20) {
        // 200 contacts every 20 ms: 10,000 contacts/s from the other sensor.
        let batch: Vec<Contact> = (0..200)
            .map(|i| contact(k * 200 + i, (k * 200 + i) % endpoints, 100 + i64::from(k)))
            .collect();
        loader.publish(batch, T0 + (100 + i64::from(k)) * S);
        let qs: Vec<GlobalQuery> = (0..16)
            .map(|i| {
                let c = contact(0, (k * 16 + i) % endpoints, 100);
                GlobalQuery {
                    id: u64::from(k * 16 + i),
                    endpoint: c.endpoint,
                    prefix: c.prefix,
                    prefix_len: 24,
                    at_ns: T0 + 100 * S,
                    since_ns: T0 + 100 * S - 3600 * S,
                }
            })
            .collect();
        let q0 = Instant::now();
        asker.ask(qs);
        loop {
            if !asker.answers().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        lat.push(q0.elapsed().as_secs_f64() * 1000.0);
        k += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize];
    println!(
        "question latency under load ({} batches of 16): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        p(0.5),
        p(0.99),
        lat[lat.len() - 1]
    );
    loader.finish();
    asker.finish();
}
