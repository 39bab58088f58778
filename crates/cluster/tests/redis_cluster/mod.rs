//! A throwaway Redis Cluster for tests: three primaries on loopback (Debian's `redis-server`,
//! joined by `redis-cli --cluster create`), no persistence, stopped on drop. A node can be
//! killed and started again (it rejoins from its cluster config file, its data gone).
#![allow(dead_code)] // each test crate that includes it uses a part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Three `redis-server` processes in cluster mode sharing the 16,384 slots.
pub struct RedisCluster {
    children: Vec<Option<Child>>,
    /// Their client ports on 127.0.0.1.
    pub ports: Vec<u16>,
    /// Their cluster bus ports.
    buses: Vec<u16>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ready() {
        assert!(t.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl RedisCluster {
    /// Start three nodes with their files in `dir` and join them into one cluster.
    pub fn start(dir: &Path) -> RedisCluster {
        let mut c = RedisCluster {
            children: Vec::new(),
            ports: Vec::new(),
            buses: Vec::new(),
            dir: dir.to_path_buf(),
        };
        for i in 0..3 {
            c.ports.push(free_port());
            c.buses.push(free_port());
            c.children.push(None);
            c.spawn(i);
        }
        let nodes: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(nodes.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        let made = cli(c.ports[0], &args);
        assert!(made.is_some(), "redis-cli --cluster create failed");
        c.wait_ok();
        c
    }

    /// Start node `i` (again: it reads its cluster config file and rejoins).
    fn spawn(&mut self, i: usize) {
        let (port, bus) = (self.ports[i], self.buses[i]);
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
            ])
            .arg("--cluster-config-file")
            .arg(self.dir.join(format!("nodes-{port}.conf")))
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        self.children[i] = Some(child);
        wait_for("a cluster node did not start", || {
            cli(port, &["ping"]).is_some_and(|o| o.contains("PONG"))
        });
    }

    /// Wait until every node serves all 16,384 slots.
    pub fn wait_ok(&self) {
        for &p in &self.ports {
            wait_for("the cluster did not come up", || {
                cli(p, &["cluster", "info"]).is_some_and(|o| {
                    o.contains("cluster_state:ok") && o.contains("cluster_slots_ok:16384")
                })
            });
        }
    }

    /// Kill node `i` now.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start node `i` again after [`RedisCluster::kill`] and wait for the cluster to be whole.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.wait_ok();
    }

    /// The nodes' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// Keys held by each node.
    pub fn keys_per_node(&self) -> Vec<u64> {
        self.ports
            .iter()
            .map(|&p| {
                cli(p, &["dbsize"])
                    .and_then(|o| o.trim().parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}
