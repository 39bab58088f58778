//! Several sensors, one view: three `analyze` processes, each on a subscriber-hash split of
//! one simulated capture, share endpoint prevalence through a real `redis-server`; together
//! they raise the alerts of one process on the whole capture, on one Redis server and on a
//! Redis Cluster of three primaries. Afterwards every key and value of the store (every node)
//! is scanned for subscriber addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use burstwatch_tests::{bin, json_lines, write_test_key};

use crate::simcap::sim;

#[path = "../../crates/cluster/tests/redis_cluster/mod.rs"]
mod redis_cluster;
use redis_cluster::RedisCluster;

/// A store as the sensors' config names it and as `redis-cli` reaches each of its nodes.
struct StoreUnderTest {
    /// The `[cluster]` lines that name it.
    config: String,
    /// Per node, the `redis-cli` arguments that reach it.
    nodes: Vec<Vec<String>>,
}

impl StoreUnderTest {
    fn one(r: &Redis) -> Self {
        Self {
            config: format!("redis_url = \"unix://{}\"\n", r.sock.display()),
            nodes: vec![vec!["-s".into(), r.sock.display().to_string()]],
        }
    }

    fn cluster(c: &RedisCluster) -> Self {
        let urls = c.urls();
        let seeds: Vec<String> = urls[1..].iter().map(|u| format!("{u:?}")).collect();
        Self {
            config: format!(
                "redis_url = {:?}\nredis_cluster = true\nredis_cluster_seeds = [{}]\n",
                urls[0],
                seeds.join(", ")
            ),
            nodes: c
                .ports
                .iter()
                .map(|p| vec!["-h".into(), "127.0.0.1".into(), "-p".into(), p.to_string()])
                .collect(),
        }
    }

    /// Every key and value of every node, as text and as raw bytes.
    fn dump(&self) -> Vec<u8> {
        let cli = |node: &[String], args: &[&str]| {
            Command::new("redis-cli")
                .args(node)
                .args(args)
                .output()
                .expect("redis-cli")
                .stdout
        };
        let mut blob = Vec::new();
        for node in &self.nodes {
            let keys = cli(node, &["--scan"]);
            for k in String::from_utf8(keys).unwrap().lines() {
                blob.extend(k.as_bytes());
                for args in [
                    ["--no-raw", "ZRANGE", k, "0", "-1", "WITHSCORES"].as_slice(),
                    &["--no-raw", "HGETALL", k],
                    &["--no-raw", "GET", k],
                    &["--no-raw", "DUMP", k],
                    &["--raw", "ZRANGE", k, "0", "-1"],
                    &["--raw", "DUMP", k],
                ] {
                    blob.extend(cli(node, args));
                }
            }
        }
        blob
    }
}

/// A `redis-server` on a unix socket, without persistence, stopped on drop.
pub struct Redis {
    child: Child,
    /// Its socket.
    pub sock: PathBuf,
}

impl Redis {
    /// Start one in `dir`.
    pub fn start(dir: &Path) -> Redis {
        let sock = dir.join("r.sock");
        let _ = std::fs::remove_file(&sock);
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

    /// `redis-cli` on its socket, standard output as bytes.
    pub fn cli(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("redis-cli");
        assert!(out.status.success(), "redis-cli {args:?}");
        out.stdout
    }

    /// Stop it now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A config of one sensor of the cluster on `redis`.
pub fn sensor_config(dir: &Path, redis: &Redis, id: &str) -> PathBuf {
    sensor_config_on(dir, &StoreUnderTest::one(redis), id)
}

/// A config of one sensor of the cluster on `store`.
fn sensor_config_on(dir: &Path, store: &StoreUnderTest, id: &str) -> PathBuf {
    let key = dir.join("cluster.key");
    if !key.exists() {
        write_test_key(&key);
    }
    let cfg = dir.join(format!("{id}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[cluster]\n{}sensor_id = \"{id}\"\nkey_file = \"cluster.key\"\n",
            store.config
        ),
    )
    .unwrap();
    cfg
}

fn home(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64),
        IpAddr::V6(v6) => v6.segments()[0] & 0xfe00 == 0xfc00,
    }
}

/// The identity of an alert and its score.
fn keyed(alerts: &[serde_json::Value]) -> BTreeMap<(String, String, String, String), f64> {
    alerts
        .iter()
        .map(|a| {
            let k = |f: &str| a[f].as_str().unwrap_or_default().to_string();
            (
                (k("kind"), k("src"), k("dst"), a["start_ts"].to_string()),
                a["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// Scores of the split runs may differ from the whole run's by this much: the port-rarity
/// part counts the pairs of a port on one sensor only.
const SCORE_TOLERANCE: f64 = 0.05;

#[test]
fn three_sensors_on_a_split_capture_raise_the_alerts_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    three_sensors_raise_the_alerts_of_one(dir.path(), &StoreUnderTest::one(&redis));
}

#[test]
fn three_sensors_on_a_redis_cluster_raise_the_alerts_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let rc = RedisCluster::start(dir.path());
    three_sensors_raise_the_alerts_of_one(dir.path(), &StoreUnderTest::cluster(&rc));
    // The sets are spread over the three primaries.
    let per_node = rc.keys_per_node();
    assert!(per_node.iter().all(|&n| n > 10), "{per_node:?}");
}

/// Three `analyze` processes on a subscriber split of the simulated capture, sharing `store`,
/// raise the alerts of one process on the whole; the store holds no subscriber address.
fn three_sensors_raise_the_alerts_of_one(dir: &Path, store: &StoreUnderTest) {
    let s = sim();
    // Subscribers (home addresses) of the capture, split in three by a hash of the address.
    let subs: BTreeSet<IpAddr> = s
        .flows
        .iter()
        .flat_map(|f| [f["src"].as_str().unwrap(), f["dst"].as_str().unwrap()])
        .map(|a| a.parse::<IpAddr>().unwrap())
        .filter(home)
        .collect();
    assert!(subs.len() >= 50, "{}", subs.len());
    let part = |ip: &IpAddr| {
        let h = ip.to_string().bytes().fold(0u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        (h % 3) as usize
    };
    let mut children = Vec::new();
    for p in 0..3 {
        let id = format!("pop-{p}");
        let cfg = sensor_config_on(dir, store, &id);
        let alerts = dir.join(format!("{id}.alerts.jsonl"));
        let mut cmd = Command::new(bin());
        cmd.args(["analyze", "--quiet", "--cluster-peers", "3", "--config"])
            .arg(&cfg)
            .arg(&s.pcap)
            .arg("--alerts")
            .arg(&alerts)
            .args(["--flows", "/dev/null"]);
        for ip in subs.iter().filter(|ip| part(ip) == p) {
            cmd.arg("--host").arg(ip.to_string());
        }
        children.push((cmd.stderr(Stdio::piped()).spawn().unwrap(), alerts, id));
    }
    let mut split = Vec::new();
    for (child, alerts, id) in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains("did not reach"), "{err}");
        let lines = json_lines(&std::fs::read(alerts).unwrap());
        // Each sensor names itself on its alerts.
        for a in &lines {
            assert_eq!(a["sensor"], id.as_str(), "{a}");
        }
        split.extend(lines);
    }
    let whole = keyed(&s.alerts);
    let parts = keyed(&split);
    assert!(whole.len() >= 2);
    let min_score = 0.4; // detect.alert_min_score
    for (k, score) in &whole {
        match parts.get(k) {
            Some(p) => assert!(
                (p - score).abs() <= SCORE_TOLERANCE,
                "{k:?}: {score} vs {p}"
            ),
            None => assert!(
                *score < min_score + SCORE_TOLERANCE,
                "{k:?} missing from the split runs"
            ),
        }
    }
    for (k, score) in &parts {
        assert!(
            whole.contains_key(k) || *score < min_score + SCORE_TOLERANCE,
            "{k:?} only in the split runs"
        );
    }
    let worst = whole
        .iter()
        .filter_map(|(k, w)| Some((parts.get(k)? - w).abs()))
        .fold(0.0f64, f64::max);
    eprintln!(
        "{} alerts on the whole capture, {} over the three sensors, {} in both; largest score difference {worst:.4}",
        whole.len(),
        parts.len(),
        whole.keys().filter(|k| parts.contains_key(*k)).count()
    );
    // Every split alert was decided with the store's answer.
    for a in &split {
        let c = &a["endpoint"]["cluster"];
        assert!(c["global_prevalence"].is_u64(), "{a}");
        assert!(c["sensors_seen"].as_u64().unwrap() >= 1);
        assert!(
            a["endpoint"]["prevalence"].as_u64() >= c["local_prevalence"].as_u64(),
            "{a}"
        );
    }
    // Three sensors registered and finished; `cluster status` shows them.
    let cfg = sensor_config_on(dir, store, "pop-0");
    let out = Command::new(bin())
        .args(["cluster", "status", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sensors = status["sensors"].as_array().unwrap();
    assert_eq!(sensors.len(), 3, "{status}");
    assert!(sensors
        .iter()
        .all(|s| s["state"] == "finished" && s["written"].as_u64() > Some(0)));
    assert!(status["keys"].as_u64().unwrap() > 10);
    // The store's kind and its servers (a cluster's primaries), keys adding up.
    let servers = status["servers"].as_array().unwrap();
    assert_eq!(servers.len(), store.nodes.len(), "{status}");
    let kind = if store.nodes.len() > 1 {
        "redis-cluster"
    } else {
        "redis"
    };
    assert_eq!(status["store"], kind, "{status}");
    let sum: u64 = servers.iter().map(|n| n["keys"].as_u64().unwrap()).sum();
    assert_eq!(Some(sum), status["keys"].as_u64(), "{status}");

    // Privacy: no subscriber address in any key or value, as text or in binary.
    let blob = store.dump();
    assert!(blob.len() > 1000);
    for ip in &subs {
        let text = ip.to_string();
        let bin: Vec<u8> = match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        let mut rev = bin.clone();
        rev.reverse();
        let hex: String = bin.iter().map(|b| format!("{b:02x}")).collect();
        for needle in [text.as_bytes(), &bin, &rev, hex.as_bytes()] {
            assert!(
                !blob.windows(needle.len()).any(|w| w == needle),
                "{ip} found in the store"
            );
        }
    }
}

/// One packet of each of `subs` to 192.0.2.9, half a second into the burst's first second.
fn touches(subs: &[[u8; 4]], t0: u32) -> Vec<(u32, u32, Vec<u8>)> {
    subs.iter()
        .map(|s| {
            (
                t0,
                500_000,
                crate::crafted::frame(*s, [192, 0, 2, 9], 40_001, 9001, 200),
            )
        })
        .collect()
}

#[test]
fn an_endpoint_seen_by_2_plus_2_subscribers_on_two_sensors_is_not_rare() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path());
    let t0 = 1_767_225_600u32;
    // Sensor A: 10.0.0.5 sends 3 MB in 2 s to 192.0.2.9, which 10.0.0.6 talks to as well.
    let mut a_recs = touches(&[[10, 0, 0, 6]], t0);
    for i in 0..2200u32 {
        let us = i * 900;
        let f = crate::crafted::frame([10, 0, 0, 5], [192, 0, 2, 9], 40_000, 9001, 1400);
        a_recs.push((t0 + us / 1_000_000, us % 1_000_000, f));
    }
    a_recs.sort_by_key(|r| (r.0, r.1));
    let a = dir.path().join("a.pcap");
    std::fs::write(&a, crate::crafted::pcap(&a_recs)).unwrap();
    let run_pair = |b_subs: &[[u8; 4]], tag: &str| -> Vec<serde_json::Value> {
        let b = dir.path().join(format!("{tag}-b.pcap"));
        std::fs::write(&b, crate::crafted::pcap(&touches(b_subs, t0))).unwrap();
        let _ = redis.cli(&["FLUSHALL"]);
        let mut kids = Vec::new();
        for (id, cap) in [("a", &a), ("b", &b)] {
            let cfg = sensor_config(dir.path(), &redis, &format!("{tag}-{id}"));
            // A one-second look-back: the whole capture counts as warmed up.
            let text = std::fs::read_to_string(&cfg).unwrap();
            std::fs::write(&cfg, format!("[detect]\nlookback_seconds = 1\n{text}")).unwrap();
            kids.push(
                Command::new(bin())
                    .args([
                        "analyze",
                        "--quiet",
                        "--cluster-peers",
                        "2",
                        "--alerts",
                        "-",
                        "--config",
                    ])
                    .arg(&cfg)
                    .arg(cap)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
        let mut alerts = Vec::new();
        for k in kids {
            let out = k.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            alerts.extend(json_lines(&out.stdout));
        }
        alerts
    };
    // 2 + 1: three subscribers, still rare (rare_max_hosts 3); the alert shows both views.
    let alerts = run_pair(&[[10, 0, 1, 7]], "three");
    let al = alerts
        .iter()
        .find(|a| a["dst"] == "192.0.2.9")
        .expect("rare over both sensors");
    let c = &al["endpoint"]["cluster"];
    assert_eq!(c["local_prevalence"], 2, "{al}");
    assert_eq!(c["global_prevalence"], 3, "{al}");
    assert_eq!(c["sensors_seen"], 2, "{al}");
    assert_eq!(al["endpoint"]["prevalence"], 3);
    // 2 + 2: four subscribers over the two sensors, more than rare_max_hosts.
    let alerts = run_pair(&[[10, 0, 1, 7], [10, 0, 1, 8]], "four");
    assert!(
        alerts.iter().all(|a| a["dst"] != "192.0.2.9"),
        "not rare over both sensors: {alerts:?}"
    );
}
