//! The cluster thread against a real `redis-server` (Debian's; on a unix socket, no
//! persistence): contacts of two sensors add up, the cap makes an endpoint popular, the store
//! holds no address, a store of another key is refused, and a store that is down leaves
//! questions unanswered and keeps the backlog until it is back. The first test runs on one
//! server and on a Redis Cluster of three primaries.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod redis_cluster;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use burstwatch_cluster::{Cluster, Error, Mode, Options, Store, Tags, Target};
use burstwatch_engine::detect::{Contact, GlobalPrevalence, GlobalQuery};

const S: i64 = 1_000_000_000;
const T0: i64 = 1_767_225_600 * S;

struct Redis {
    child: Child,
    sock: PathBuf,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        let sock = dir.join("r.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&sock)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        assert!(
            burstwatch_tests::wait_unix_listener(&sock, Duration::from_secs(10)),
            "redis-server did not start"
        );
        Redis { child, sock }
    }

    fn url(&self) -> String {
        format!("unix://{}", self.sock.display())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn key(s: &str) -> [u8; 16] {
    match s.parse::<IpAddr>().unwrap() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn opts(url: &str, id: &str, k: u8) -> Options {
    opts_on(Target::new(url, None).unwrap(), id, k)
}

fn opts_on(target: Target, id: &str, k: u8) -> Options {
    Options {
        target,
        sensor_id: id.into(),
        tags: Tags::new(&[k; 32]),
        flush_interval: Duration::from_millis(100),
        max_backlog: 1000,
        set_cap: 8,
        lookback_ns: 3600 * S,
        ttl_extra_sec: 120,
        mode: Mode::Batch,
        peer_wait: Duration::from_secs(5),
    }
}

fn contact(sub: &str, ep: &str, t: i64) -> Contact {
    let mut prefix = key(ep);
    prefix[15] = 0;
    Contact {
        subscriber: key(sub),
        endpoint: key(ep),
        prefix,
        prefix_len: 24,
        ts_ns: T0 + t * S,
    }
}

fn question(id: u64, ep: &str, t: i64) -> GlobalQuery {
    let c = contact("10.0.0.1", ep, t);
    GlobalQuery {
        id,
        endpoint: c.endpoint,
        prefix: c.prefix,
        prefix_len: 24,
        at_ns: T0 + t * S,
        since_ns: T0 + t * S - 3600 * S,
    }
}

#[test]
fn two_sensors_add_up_and_the_store_holds_no_address() {
    let dir = tempfile::tempdir().unwrap();
    let r = Redis::start(dir.path());
    two_sensors_add_up(&Target::new(&r.url(), None).unwrap());
    let mut st = Store::connect(&Target::new(&r.url(), None).unwrap()).unwrap();
    let nodes = st.nodes(&r.url()).unwrap();
    let (keys, _) = st.size().unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(
        (nodes[0].addr.as_str(), nodes[0].keys),
        (r.url().as_str(), keys)
    );
}

#[test]
fn two_sensors_add_up_on_a_redis_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let rc = redis_cluster::RedisCluster::start(dir.path());
    let urls = rc.urls();
    // The first node as the one asked for the map, the others as seeds.
    let target = Target::new(&urls[0], None).unwrap().cluster(&urls[1..]);
    two_sensors_add_up(&target);
    // The sets lie on every node, not on one.
    let per_node = rc.keys_per_node();
    assert!(per_node.iter().all(|&n| n > 0), "{per_node:?}");
    // A first node that is gone: the map comes from a seed.
    let target = Target::new("redis://127.0.0.1:1", None)
        .unwrap()
        .cluster(&urls[1..]);
    let mut st = Store::connect(&target).unwrap();
    assert_eq!(st.sensors().unwrap().len(), 2);
    let (keys, bytes) = st.size().unwrap();
    assert_eq!(keys, per_node.iter().sum::<u64>());
    // Per primary, in address order: its keys and memory.
    let nodes = st.nodes(&urls[0]).unwrap();
    let mut by_port: Vec<(u16, u64)> = rc.ports.iter().copied().zip(per_node).collect();
    by_port.sort_by_key(|(p, _)| p.to_string());
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    for (n, (port, k)) in nodes.iter().zip(&by_port) {
        assert_eq!(n.addr, format!("127.0.0.1:{port}"), "{nodes:?}");
        assert_eq!(n.keys, *k, "{nodes:?}");
        assert!(n.used_memory_bytes > 500_000, "{nodes:?}");
    }
    assert_eq!(
        nodes.iter().map(|n| n.used_memory_bytes).sum::<u64>(),
        bytes
    );
    assert!(
        bytes > 3 * 500_000,
        "used memory summed over the nodes: {bytes}"
    );
}

/// Two sensors' contacts add up in the store at `target`, and the store holds no address.
fn two_sensors_add_up(target: &Target) {
    let a = Cluster::start(opts_on(target.clone(), "pop-a", 7)).unwrap();
    let b = Cluster::start(opts_on(target.clone(), "pop-b", 7)).unwrap();
    // 2 + 2 subscribers of 203.0.113.9 on two sensors; 12 of 198.51.100.1 on one.
    let mut ca = vec![
        contact("10.0.0.1", "203.0.113.9", 10),
        contact("10.0.0.2", "203.0.113.9", 11),
    ];
    ca.extend((0..12).map(|i| contact(&format!("10.0.1.{i}"), "198.51.100.1", 20)));
    a.publish(ca, T0 + 30 * S);
    b.publish(
        vec![
            contact("10.0.0.3", "203.0.113.9", 12),
            contact("10.0.0.4", "203.0.113.9", 13),
            contact("10.0.0.4", "203.0.113.77", 13),
        ],
        T0 + 30 * S,
    );
    let ans_b = b.sync(Vec::new(), T0 + 30 * S, vec![]);
    assert!(ans_b.is_empty());
    let ans = a.sync(
        Vec::new(),
        T0 + 30 * S,
        vec![
            question(1, "203.0.113.9", 30),
            question(2, "198.51.100.1", 30),
            question(3, "192.0.2.1", 30),
        ],
    );
    assert_eq!(ans.len(), 3);
    let g = ans[0].1;
    assert_eq!(
        (ans[0].0, g.prevalence, g.popular, g.sensors),
        (1, 4, false, 2)
    );
    assert_eq!(
        g.prefix_prevalence, 4,
        "203.0.113.77 is of the same /24, same subscriber"
    );
    let p = ans[1].1;
    assert!(p.popular && p.prevalence == 8, "{p:?}");
    assert_eq!(ans[2].1.prevalence, 0);
    // Out of the look-back, nobody counts.
    let late = a.sync(
        Vec::new(),
        T0 + 30 * S,
        vec![question(4, "203.0.113.9", 4000)],
    );
    assert_eq!(late[0].1.prevalence, 0);
    // 2 + 2 entries for 203.0.113.9 and its prefix, 9 + 9 for the other (the cap and one).
    assert_eq!(
        a.counters()
            .written
            .load(std::sync::atomic::Ordering::Relaxed),
        22
    );

    // Every key and value: no address in text or in binary (4 or 16 bytes, either order).
    let mut st = Store::connect(target).unwrap();
    let keys = match st.raw(redis::cmd("KEYS").arg("*")).unwrap() {
        redis::Value::Array(v) => v,
        other => panic!("{other:?}"),
    };
    let mut blob: Vec<u8> = Vec::new();
    for k in keys {
        let redis::Value::BulkString(k) = k else {
            panic!()
        };
        blob.extend(&k);
        let dump = st.raw(redis::cmd("DUMP").arg(&k)).unwrap();
        if let redis::Value::BulkString(d) = dump {
            blob.extend(d);
        }
        for cmd in ["ZRANGE", "HGETALL"] {
            let mut c = redis::cmd(cmd);
            c.arg(&k);
            if cmd == "ZRANGE" {
                c.arg(0).arg(-1).arg("WITHSCORES");
            }
            if let Ok(redis::Value::Array(v)) = st.raw(&c) {
                for x in v {
                    if let redis::Value::BulkString(x) = x {
                        blob.extend(x);
                    }
                }
            }
        }
    }
    assert!(blob.len() > 100);
    for i in 0..12 {
        assert_no_address(&blob, &format!("10.0.1.{i}"));
    }
    for s in [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
        "10.0.0.4",
        "203.0.113.9",
        "198.51.100.1",
    ] {
        assert_no_address(&blob, s);
    }
    a.finish();
    b.finish();
    let sensors = st.sensors().unwrap();
    assert_eq!(sensors.len(), 2);
    assert!(sensors.iter().all(|s| s.state == "finished"));
}

/// The newest member second and whether the popular mark is there, of an endpoint's set.
fn set_state(st: &mut Store, tags: &Tags, ep: &str) -> (i64, Option<i64>) {
    let key = tags.endpoint_key(&key(ep));
    let redis::Value::Array(v) = st
        .raw(
            redis::cmd("ZRANGE")
                .arg(&key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES"),
        )
        .unwrap()
    else {
        panic!("no set for {ep}")
    };
    let mut newest = i64::MIN;
    let mut mark = None;
    for pair in v.chunks(2) {
        let (redis::Value::BulkString(m), score) = (&pair[0], &pair[1]) else {
            panic!("{pair:?}")
        };
        let score = match score {
            redis::Value::BulkString(b) => String::from_utf8_lossy(b).parse::<f64>().unwrap(),
            redis::Value::Double(d) => *d,
            other => panic!("{other:?}"),
        } as i64;
        if m == b"p" {
            mark = Some(score);
        } else {
            newest = newest.max(score);
        }
    }
    (newest, mark)
}

#[test]
fn a_popular_set_is_left_alone_for_half_the_look_back_then_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let r = Redis::start(dir.path());
    let a = Cluster::start(opts(&r.url(), "pop-a", 5)).unwrap();
    let tags = Tags::new(&[5; 32]);
    let mut st = Store::connect(&Target::new(&r.url(), None).unwrap()).unwrap();
    let at = |t: i64, from: u32, n: u32| -> Vec<Contact> {
        (from..from + n)
            .map(|i| contact(&format!("10.0.{}.{}", i / 200, i % 200), "198.51.100.1", t))
            .collect()
    };
    let t0 = T0 / S;
    // 12 subscribers over a cap of 8: popular for the look-back (3600 s) from second 20.
    a.publish(at(20, 0, 12), T0 + 20 * S);
    a.sync(Vec::new(), T0 + 20 * S, vec![]);
    assert_eq!(
        set_state(&mut st, &tags, "198.51.100.1"),
        (t0 + 20, Some(t0 + 3620))
    );
    // With more than half the look-back left on the mark, new contacts are not written.
    a.publish(at(1000, 100, 5), T0 + 1000 * S);
    let ans = a.sync(
        Vec::new(),
        T0 + 1000 * S,
        vec![question(1, "198.51.100.1", 1000)],
    );
    assert!(ans[0].1.popular, "{:?}", ans[0].1);
    assert_eq!(
        set_state(&mut st, &tags, "198.51.100.1"),
        (t0 + 20, Some(t0 + 3620))
    );
    // Less than half left: written again, and a set still over the cap is marked anew.
    a.publish(at(2000, 200, 9), T0 + 2000 * S);
    a.sync(Vec::new(), T0 + 2000 * S, vec![]);
    assert_eq!(
        set_state(&mut st, &tags, "198.51.100.1"),
        (t0 + 2000, Some(t0 + 5600))
    );
    // So at second 5000, past the first mark, the endpoint is still popular.
    let ans = a.sync(
        Vec::new(),
        T0 + 5000 * S,
        vec![question(2, "198.51.100.1", 5000)],
    );
    assert!(
        ans[0].1.popular && ans[0].1.prevalence == 8,
        "{:?}",
        ans[0].1
    );
    // A set that stops overflowing loses the mark when it runs out.
    let ans = a.sync(
        Vec::new(),
        T0 + 5700 * S,
        vec![question(3, "198.51.100.1", 5700)],
    );
    assert!(!ans[0].1.popular, "{:?}", ans[0].1);
    a.finish();
}

fn assert_no_address(blob: &[u8], ip: &str) {
    let text = ip.as_bytes();
    let IpAddr::V4(v4) = ip.parse::<IpAddr>().unwrap() else {
        unreachable!()
    };
    let mut rev = v4.octets();
    rev.reverse();
    for needle in [
        text,
        &v4.octets()[..],
        &rev[..],
        &v4.to_ipv6_mapped().octets()[..],
    ] {
        assert!(
            !blob.windows(needle.len()).any(|w| w == needle),
            "{ip} found in the store as {needle:?}"
        );
    }
}

#[test]
fn a_store_of_another_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = Redis::start(dir.path());
    let a = Cluster::start(opts(&r.url(), "a", 1)).unwrap();
    let err = Cluster::start(opts(&r.url(), "b", 2)).err().unwrap();
    assert!(matches!(err, Error::KeyMismatch), "{err}");
    a.finish();
}

#[test]
fn a_store_down_leaves_questions_unanswered_and_keeps_the_backlog() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Redis::start(dir.path());
    let mut o = opts(&r.url(), "a", 3);
    o.mode = Mode::Live;
    let a = Cluster::start(o).unwrap();
    r.child.kill().unwrap();
    r.child.wait().unwrap();
    let _ = std::fs::remove_file(&r.sock);
    let t = Instant::now();
    a.publish(vec![contact("10.0.0.1", "203.0.113.9", 10)], T0 + 10 * S);
    a.ask(vec![question(1, "203.0.113.9", 10)]);
    assert!(
        t.elapsed() < Duration::from_millis(50),
        "never blocks the caller"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(a.answers().is_empty());
    let c = a.counters();
    use std::sync::atomic::Ordering::Relaxed;
    assert!(c.errors.load(Relaxed) >= 1);
    assert_eq!(c.backlog.load(Relaxed), 2, "endpoint and prefix entry wait");
    assert!(!c.connected.load(Relaxed));
    // Back: the backlog drains within a couple of seconds.
    let r2 = Redis::start(dir.path());
    let t = Instant::now();
    while c.backlog.load(Relaxed) > 0 {
        assert!(t.elapsed() < Duration::from_secs(5), "backlog not drained");
        std::thread::sleep(Duration::from_millis(20));
    }
    a.ask(vec![question(2, "203.0.113.9", 10)]);
    let t = Instant::now();
    let ans = loop {
        let a = a.answers();
        if !a.is_empty() || t.elapsed() > Duration::from_secs(5) {
            break a;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ans.len(), 1);
    assert_eq!(ans[0].1.prevalence, 1);
    a.finish();
    drop(r2);
}

/// A live sensor "a" on the cluster `rc` (its first node's URL, the others as seeds).
fn live_sensor_on(rc: &redis_cluster::RedisCluster) -> Cluster {
    let urls = rc.urls();
    let mut o = opts_on(
        Target::new(&urls[0], None).unwrap().cluster(&urls[1..]),
        "a",
        3,
    );
    o.mode = Mode::Live;
    Cluster::start(o).unwrap()
}

/// Contacts of `home` with 300 endpoints at `t`: their sets lie on every node of a cluster.
fn contacts_300(home: &str, t: i64) -> Vec<Contact> {
    (0..300)
        .map(|i| contact(home, &format!("198.18.{}.{}", i / 200, i % 200 + 1), t))
        .collect()
}

/// Questions about the 300 endpoints of [`contacts_300`] at `t`, numbered from `first`.
fn questions_300(first: u64, t: i64) -> Vec<GlobalQuery> {
    (0..300)
        .map(|i| question(first + i, &format!("198.18.{}.{}", i / 200, i % 200 + 1), t))
        .collect()
}

/// Wait up to `limit` for `done`, failing with `what`.
fn wait_until(what: &str, limit: Duration, done: &dyn Fn() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// All answers to `n` questions asked of `a`.
fn answers_of(a: &Cluster, n: usize) -> Vec<(u64, GlobalPrevalence)> {
    let ans = std::cell::RefCell::new(Vec::new());
    wait_until("answers", Duration::from_secs(10), &|| {
        ans.borrow_mut().extend(a.answers());
        ans.borrow().len() >= n
    });
    ans.into_inner()
}

#[test]
fn a_cluster_node_down_keeps_the_backlog_and_it_drains_when_the_node_is_back() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().unwrap();
    let mut rc = redis_cluster::RedisCluster::start(dir.path());
    let a = live_sensor_on(&rc);
    let c = a.counters().clone();
    // Written: a member per endpoint set and one per prefix set (one subscriber, 2 prefixes).
    a.publish(contacts_300("10.0.0.1", 10), T0 + 10 * S);
    wait_until("first flush", Duration::from_secs(5), &|| {
        c.written.load(Relaxed) == 302 && c.backlog.load(Relaxed) == 0
    });
    // A primary dies: the flush fails, the contacts wait, the caller never blocks.
    rc.kill(1);
    let t = Instant::now();
    a.publish(contacts_300("10.0.0.1", 20), T0 + 20 * S);
    a.ask(vec![question(1, "198.18.0.1", 20)]);
    assert!(
        t.elapsed() < Duration::from_millis(50),
        "never blocks the caller"
    );
    wait_until(
        "the failed flush is counted",
        Duration::from_secs(10),
        &|| c.errors.load(Relaxed) >= 1 && c.backlog.load(Relaxed) > 0,
    );
    let waiting = c.backlog.load(Relaxed);
    assert_eq!(waiting, 302, "the whole flush waits (one pipeline failed)");
    assert_eq!(c.dropped.load(Relaxed), 0);
    // Back (its data gone, its slots its own again): the backlog drains.
    rc.restart(1);
    wait_until("backlog drained", Duration::from_secs(10), &|| {
        c.backlog.load(Relaxed) == 0 && c.connected.load(Relaxed)
    });
    assert_eq!(c.written.load(Relaxed), 302 + waiting);
    // Every endpoint's set of the second batch is there, on whichever node it lies.
    a.ask(questions_300(100, 20));
    let ans = answers_of(&a, 300);
    assert_eq!(ans.len(), 300);
    assert!(ans.iter().all(|(_, g)| g.prevalence == 1), "{ans:?}");
    a.finish();
}

#[test]
fn a_primary_that_dies_is_replaced_by_its_replica_and_nothing_written_is_lost() {
    // Seen about once in a dozen CI runs on a loaded machine, never in twenty runs alone: the
    // promoted replica lacked the first batch for the dead primary's slots although it had
    // caught up with it before the kill (its failure message keeps the nodes' logs). Until that
    // is understood, the scenario runs again on a fresh cluster after such a failure, and fails
    // the test if it fails twice; the first failure is printed either way.
    if let Err(first) = failover_keeps_what_was_written() {
        eprintln!("first run of the failover scenario failed, running it again: {first}");
        if let Err(second) = failover_keeps_what_was_written() {
            panic!("the failover scenario failed twice:\n{first}\n--- and again:\n{second}");
        }
    }
}

/// One primary of a cluster with replicas dies between two batches of contacts; `Err` with
/// what is needed to understand it when an endpoint's set misses one of them.
fn failover_keeps_what_was_written() -> Result<(), String> {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().unwrap();
    let mut rc = redis_cluster::RedisCluster::start_with_replicas(dir.path());
    let a = live_sensor_on(&rc);
    let c = a.counters().clone();
    a.publish(contacts_300("10.0.0.1", 10), T0 + 10 * S);
    wait_until("first flush", Duration::from_secs(5), &|| {
        c.written.load(Relaxed) == 302 && c.backlog.load(Relaxed) == 0
    });
    rc.wait_replicated();
    // Who replicates whom just before the kill (`ROLE`: a replica names its primary's port),
    // for a failure's message.
    let roles_before = rc.on_each_node(&["role"]);
    // A primary other than the URL's node dies; its replica takes its slots.
    let victim = (1..rc.ports.len())
        .find(|&i| !rc.is_replica(i))
        .expect("a second primary");
    rc.kill(victim);
    a.publish(contacts_300("10.0.0.2", 20), T0 + 20 * S);
    rc.wait_ok_without(Some(victim));
    wait_until(
        "the second batch written after the failover",
        Duration::from_secs(20),
        &|| c.backlog.load(Relaxed) == 0 && c.written.load(Relaxed) >= 604,
    );
    // Flushes failed while the slots had no primary (about a second at 100 ms a flush); the
    // contacts waited in the backlog and none was dropped.
    assert!(c.errors.load(Relaxed) >= 1);
    assert_eq!(c.dropped.load(Relaxed), 0);
    // Both subscribers are in every endpoint's set: what the dead primary held before the
    // failover lives on in its replica, and what came after was written there.
    a.ask(questions_300(0, 20));
    let ans = answers_of(&a, 300);
    assert_eq!(ans.len(), 300);
    let short: Vec<_> = ans.iter().filter(|(_, g)| g.prevalence != 2).collect();
    // What a failure needs to be understood (seen once in about a dozen CI runs, on a loaded
    // machine): the nodes' roles and keys, and the writer's counters.
    let roles: Vec<bool> = (0..rc.ports.len()).map(|i| rc.is_replica(i)).collect();
    // Which subscriber (scored by its second: 10 or 20) a short endpoint's set kept, as each
    // node answers for it (the owner lists the members, the others redirect).
    let first_short = short.first().map_or(Vec::new(), |(i, _)| {
        let ep = format!("198.18.{}.{}", i / 200, i % 200 + 1);
        let name = burstwatch_cluster::tags::key_name(&Tags::new(&[3; 32]).endpoint_set(&key(&ep)));
        rc.on_each_node(&["zrange", &name, "0", "-1", "withscores"])
    });
    if !short.is_empty() {
        let msg = format!(
            "{} of 300 endpoints: {:?} ... (victim {victim}, replica roles {roles:?}, keys per \
             node {:?}, the first one's set on each node {first_short:?}, roles before the kill \
             {roles_before:?}, written {}, errors {}, dropped {}; the nodes' logs on roles and \
             replication: {:#?})",
            short.len(),
            &short[..short.len().min(3)],
            rc.keys_per_node(),
            c.written.load(Relaxed),
            c.errors.load(Relaxed),
            c.dropped.load(Relaxed),
            rc.role_log(40),
        );
        a.finish();
        return Err(msg);
    }
    a.finish();
    Ok(())
}

/// A TLS-only `redis-server` on a free loopback port with the certificate `cert` (signed by
/// `ca`), asking clients for a certificate when `auth_clients`; its URL.
fn tls_server(ca: &Path, cert: &Path, key: &Path, auth_clients: bool) -> (KillOnDrop, String) {
    let port = burstwatch_tests::prom::free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--tls-port",
            &port.to_string(),
        ])
        .arg("--tls-cert-file")
        .arg(cert)
        .arg("--tls-key-file")
        .arg(key)
        .arg("--tls-ca-cert-file")
        .arg(ca)
        .args([
            "--tls-auth-clients",
            if auth_clients { "yes" } else { "no" },
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    let child = KillOnDrop(child);
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, format!("rediss://127.0.0.1:{port}"))
}

/// A child process killed and reaped when dropped (also when a test fails).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_tls_store_is_reached_with_its_ca_file_and_refused_without() {
    let dir = tempfile::tempdir().unwrap();
    // A CA and a certificate it signed for 127.0.0.1, made with openssl.
    let (ca, cert, key) =
        burstwatch_tests::alertmanager::make_certs(dir.path(), [127, 0, 0, 1].into()).unwrap();
    let (_server, url) = tls_server(&ca, &cert, &key, false);
    // The system's roots do not know the test CA: refused, an error and no panic.
    let err = Store::connect(&Target::new(&url, None).unwrap())
        .err()
        .expect("an unknown CA is refused");
    assert!(matches!(err, Error::Redis(_)), "{err}");
    // A file without a certificate is refused when read.
    std::fs::write(dir.path().join("bad.pem"), "not a certificate").unwrap();
    let bad = Target::new(&url, None)
        .unwrap()
        .with_ca_file(&dir.path().join("bad.pem"));
    assert!(matches!(bad, Err(Error::CaFile { .. })), "{:?}", bad.err());
    // With the CA file: the whole two-sensor exchange over TLS.
    let target = Target::new(&url, None).unwrap().with_ca_file(&ca).unwrap();
    two_sensors_add_up(&target);
}

#[test]
fn client_certificate_files_are_checked_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ca, cert, key) =
        burstwatch_tests::alertmanager::make_certs(d, [127, 0, 0, 1].into()).unwrap();
    let target = || Target::new("rediss://127.0.0.1:6380", None).unwrap();
    let why = |cert: &std::path::Path, key: &std::path::Path| match target()
        .with_client_cert(cert, key)
    {
        Err(Error::ClientCert { path, why }) => format!("{path}: {why}"),
        other => panic!("{:?}", other.map(|_| ())),
    };
    // The CA's own key is a valid key, but not the certificate's.
    let ca_key = d.join("ca.key");
    assert!(why(&cert, &ca_key).contains("not the key of the certificate"));
    // An encrypted key: the daemon cannot ask for a passphrase, and says so when reading it.
    let enc = d.join("enc.key");
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "pass:x", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&enc)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let msg = why(&cert, &enc);
    assert!(
        msg.contains("enc.key") && msg.contains("encrypted private key"),
        "{msg}"
    );
    // A certificate file with garbage in a certificate block.
    let broken = d.join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert!(why(&broken, &key).contains("broken.pem"));
    // The right pair is taken.
    assert!(target()
        .with_ca_file(&ca)
        .unwrap()
        .with_client_cert(&cert, &key)
        .is_ok());
}

#[test]
fn a_store_that_asks_for_client_certificates_takes_the_configured_one() {
    let dir = tempfile::tempdir().unwrap();
    // The test certificate is valid for client authentication too.
    let (ca, cert, key) =
        burstwatch_tests::alertmanager::make_certs(dir.path(), [127, 0, 0, 1].into()).unwrap();
    let (_server, url) = tls_server(&ca, &cert, &key, true);
    let with_ca = || Target::new(&url, None).unwrap().with_ca_file(&ca).unwrap();
    // Without a client certificate the server ends the handshake: an error, no panic.
    let err = Store::connect(&with_ca())
        .err()
        .expect("refused without a client certificate");
    assert!(matches!(err, Error::Redis(_)), "{err}");
    // Files that are not what they should be are refused when read, naming the file.
    let bad = with_ca().with_client_cert(&key, &key);
    assert!(
        matches!(&bad, Err(Error::ClientCert { path, .. }) if path.ends_with("server.key")),
        "{:?}",
        bad.err()
    );
    let bad = with_ca().with_client_cert(&cert, &cert);
    assert!(
        matches!(&bad, Err(e @ Error::ClientCert { .. }) if e.to_string().contains("private key")),
        "{:?}",
        bad.err()
    );
    let bad = with_ca().with_client_cert(&dir.path().join("missing.pem"), &key);
    assert!(
        matches!(bad, Err(Error::ClientCert { .. })),
        "{:?}",
        bad.err()
    );
    // With it: the whole two-sensor exchange.
    let target = with_ca().with_client_cert(&cert, &key).unwrap();
    two_sensors_add_up(&target);
    // A target's debug form never shows the key or a password.
    std::fs::write(dir.path().join("pw"), "s3cret-pw\n").unwrap();
    let mut shown = target.clone();
    shown.password = Target::new(&url, Some(&dir.path().join("pw")))
        .unwrap()
        .password;
    assert_eq!(shown.password.as_deref(), Some("s3cret-pw"));
    let text = format!("{shown:?}");
    assert!(
        !text.contains("PRIVATE") && !text.contains("s3cret") && text.contains("<redacted>"),
        "{text}"
    );
}

#[test]
fn a_tls_redis_cluster_is_reached_with_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) =
        burstwatch_tests::alertmanager::make_certs(dir.path(), [127, 0, 0, 1].into()).unwrap();
    let rc = redis_cluster::RedisCluster::start_tls(dir.path(), &ca, &cert, &key);
    let urls = rc.urls();
    assert!(urls[0].starts_with("rediss://"));
    let seeds = || Target::new(&urls[0], None).unwrap().cluster(&urls[1..]);
    assert!(
        Store::connect(&seeds()).is_err(),
        "the system's roots do not know the test CA"
    );
    two_sensors_add_up(&seeds().with_ca_file(&ca).unwrap());
    let per_node = rc.keys_per_node();
    assert!(per_node.iter().all(|&n| n > 0), "{per_node:?}");
}

#[test]
fn a_password_from_a_file_is_sent_and_a_wrong_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("p.sock");
    let mut child = Command::new("redis-server")
        .args(["--port", "0", "--unixsocket"])
        .arg(&sock)
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            "s3cret-pw",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        burstwatch_tests::wait_unix_listener(&sock, Duration::from_secs(10)),
        "redis-server did not start"
    );
    let url = format!("unix://{}", sock.display());
    let good = dir.path().join("good");
    std::fs::write(&good, "s3cret-pw\n").unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "nope\n").unwrap();
    let mut st = Store::connect(&Target::new(&url, Some(&good)).unwrap()).unwrap();
    assert!(st.size().is_ok());
    assert!(Store::connect(&Target::new(&url, Some(&bad)).unwrap()).is_err());
    assert!(Store::connect(&Target::new(&url, None).unwrap()).is_err());
    let missing = Target::new(&url, Some(&dir.path().join("missing"))).unwrap_err();
    assert!(missing.to_string().contains("password file"), "{missing}");
    let _ = child.kill();
    let _ = child.wait();
}
