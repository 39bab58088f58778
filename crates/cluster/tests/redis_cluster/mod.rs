//! A throwaway Redis Cluster for tests: three primaries on loopback (Debian's `redis-server`,
//! joined by `redis-cli --cluster create`), no persistence, stopped on drop. A node can be
//! killed and started again (it rejoins from its cluster config file, its data gone). With
//! [`RedisCluster::start_tls`] the nodes speak TLS only, to clients and on the cluster bus;
//! with [`RedisCluster::start_with_replicas`] each primary has a replica that takes over
//! within about a second of its primary's death.
#![allow(dead_code)] // each test crate that includes it uses a part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Three `redis-server` primaries in cluster mode sharing the 16,384 slots (and their replicas,
/// if asked for).
pub struct RedisCluster {
    children: Vec<Option<Child>>,
    /// Their client ports on 127.0.0.1.
    pub ports: Vec<u16>,
    /// Their cluster bus ports.
    buses: Vec<u16>,
    dir: PathBuf,
    /// TLS only: the CA, certificate and key files.
    tls: Option<[PathBuf; 3]>,
    /// Replicas per primary.
    replicas: usize,
}

/// `redis-cli` arguments that reach `port` (over TLS, trusting `tls`'s CA, if given).
fn cli_args(port: u16, tls: Option<&[PathBuf; 3]>) -> Vec<String> {
    let mut a = vec![
        "-h".to_string(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
    ];
    if let Some([ca, ..]) = tls {
        a.extend(["--tls".into(), "--cacert".into(), ca.display().to_string()]);
    }
    a
}

/// A loopback port no other test of this process was given (see the function's docs).
fn free_port() -> u16 {
    burstwatch_tests::prom::free_port()
}

/// `redis-cli` on `port`, its output if it succeeded within a minute.
fn cli(port: u16, tls: Option<&[PathBuf; 3]>, args: &[&str]) -> Option<String> {
    let out = Command::new("timeout")
        .args(["60", "redis-cli"])
        .args(cli_args(port, tls))
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
        Self::start_with(dir, None, 0)
    }

    /// Three primaries and a replica of each (nodes 0-2 the primaries, 3-5 their replicas as
    /// `redis-cli` pairs them), failing over after a second without a primary.
    pub fn start_with_replicas(dir: &Path) -> RedisCluster {
        Self::start_with(dir, None, 1)
    }

    /// The same, speaking TLS only with the certificate and key given (and trusting the CA).
    pub fn start_tls(dir: &Path, ca: &Path, cert: &Path, key: &Path) -> RedisCluster {
        Self::start_with(
            dir,
            Some([ca.to_path_buf(), cert.to_path_buf(), key.to_path_buf()]),
            0,
        )
    }

    fn start_with(dir: &Path, tls: Option<[PathBuf; 3]>, replicas: usize) -> RedisCluster {
        let mut c = RedisCluster {
            children: Vec::new(),
            ports: Vec::new(),
            buses: Vec::new(),
            dir: dir.to_path_buf(),
            tls,
            replicas,
        };
        for i in 0..3 * (1 + replicas) {
            c.ports.push(free_port());
            c.buses.push(free_port());
            c.children.push(None);
            c.spawn(i);
        }
        let nodes: Vec<String> = c.ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(nodes.iter().map(String::as_str));
        let replicas = replicas.to_string();
        args.extend(["--cluster-replicas", &replicas, "--cluster-yes"]);
        let made = cli(c.ports[0], c.tls.as_ref(), &args);
        assert!(made.is_some(), "redis-cli --cluster create failed");
        c.wait_ok();
        c
    }

    /// Start node `i` (again: it reads its cluster config file and rejoins).
    fn spawn(&mut self, i: usize) {
        let (port, bus) = (self.ports[i], self.buses[i]);
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1"]);
        match &self.tls {
            None => cmd.args(["--port", &port.to_string()]),
            Some([ca, cert, key]) => cmd
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--tls-cluster", "yes", "--tls-auth-clients", "no"])
                .arg("--tls-ca-cert-file")
                .arg(ca)
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key),
        };
        let child = cmd
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
                "--cluster-node-timeout",
                if self.replicas > 0 { "1000" } else { "15000" },
            ])
            .arg("--cluster-config-file")
            .arg(self.dir.join(format!("nodes-{port}.conf")))
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.log_path(i))
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        self.children[i] = Some(child);
        let tls = self.tls.clone();
        wait_for("a cluster node did not start", || {
            cli(port, tls.as_ref(), &["ping"]).is_some_and(|o| o.contains("PONG"))
        });
    }

    /// Wait until every node serves all 16,384 slots.
    pub fn wait_ok(&self) {
        self.wait_ok_without(None);
    }

    /// The same, leaving out node `down` (killed: its replica has to take over).
    pub fn wait_ok_without(&self, down: Option<usize>) {
        for (_, &p) in self
            .ports
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != down)
        {
            wait_for("the cluster did not come up", || {
                cli(p, self.tls.as_ref(), &["cluster", "info"]).is_some_and(|o| {
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

    /// The nodes' URLs (`rediss://` for TLS).
    pub fn urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        self.ports
            .iter()
            .map(|p| format!("{scheme}://127.0.0.1:{p}"))
            .collect()
    }

    /// Whether node `i` is a replica now.
    pub fn is_replica(&self, i: usize) -> bool {
        cli(self.ports[i], self.tls.as_ref(), &["role"]).is_some_and(|o| o.starts_with("slave"))
    }

    /// Wait until every replica has the whole of its primary's data (replication is
    /// asynchronous: a test that kills a primary waits for this first).
    pub fn wait_replicated(&self) {
        for (i, &p) in self.ports.iter().enumerate() {
            if self.is_replica(i) {
                continue;
            }
            wait_for("the replicas did not catch up", || {
                let Some(info) = cli(p, self.tls.as_ref(), &["info", "replication"]) else {
                    return false;
                };
                let field = |name: &str| {
                    info.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_string())
                };
                let offset = field("master_repl_offset:");
                let replicas: Vec<String> = (0..self.replicas)
                    .filter_map(|r| field(&format!("slave{r}:")))
                    .collect();
                replicas.len() == self.replicas
                    && replicas.iter().all(|r| {
                        r.contains("state=online")
                            && offset
                                .as_deref()
                                .is_some_and(|o| r.contains(&format!("offset={o},")))
                    })
            });
        }
    }

    /// Keys held by each node.
    /// `redis-cli args` on every node that answers: (node, its output), for a failed test's
    /// message.
    pub fn on_each_node(&self, args: &[&str]) -> Vec<(usize, String)> {
        (0..self.ports.len())
            .filter(|&i| self.children[i].is_some())
            .filter_map(|i| {
                Some((
                    i,
                    cli(self.ports[i], self.tls.as_ref(), args)?.trim().into(),
                ))
            })
            .collect()
    }

    /// Node `i`'s log file (kept across restarts).
    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node-{}.log", self.ports[i]))
    }

    /// The lines of each node's log about roles, failovers and replication (at most the last
    /// `max` of each), for a failed test's message.
    pub fn role_log(&self, max: usize) -> Vec<(usize, Vec<String>)> {
        const ABOUT: [&str; 8] = [
            "ailover",
            "eplica",
            "master",
            "MASTER",
            "FAIL",
            "Reconfiguring",
            "sync",
            "election",
        ];
        (0..self.ports.len())
            .map(|i| {
                let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
                let lines: Vec<String> = text
                    .lines()
                    .filter(|l| ABOUT.iter().any(|a| l.contains(a)) && !l.contains("overcommit"))
                    .map(String::from)
                    .collect();
                (i, lines[lines.len().saturating_sub(max)..].to_vec())
            })
            .collect()
    }

    pub fn keys_per_node(&self) -> Vec<u64> {
        self.ports
            .iter()
            .map(|&p| {
                cli(p, self.tls.as_ref(), &["dbsize"])
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
