//! A real Alertmanager for tests: [`Alertmanager::start`] runs Debian's
//! `prometheus-alertmanager` (or `ALERTMANAGER_BIN`) on loopback with a temporary configuration
//! and storage, clustering off, and kills it and removes its files on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::prom::{free_port, http_get};

/// A running Alertmanager.
pub struct Alertmanager {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// The Alertmanager binary (override with `ALERTMANAGER_BIN`).
pub fn alertmanager_bin() -> String {
    std::env::var("ALERTMANAGER_BIN").unwrap_or_else(|_| "prometheus-alertmanager".into())
}

impl Alertmanager {
    /// Start it and wait until it is ready.
    pub fn start() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "burstwatch-am-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("data")).map_err(|e| format!("temp dir: {e}"))?;
        let cfg = dir.join("alertmanager.yml");
        std::fs::write(
            &cfg,
            "route:\n  receiver: none\n  group_wait: 1h\nreceivers:\n  - name: none\n",
        )
        .map_err(|e| format!("write config: {e}"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let log = std::fs::File::create(dir.join("alertmanager.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let child = Command::new(alertmanager_bin())
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", alertmanager_bin()))?;
        let mut am = Self { child, addr, dir };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = am.child.try_wait() {
                return Err(format!("alertmanager exited: {status}; log:\n{}", am.log()));
            }
            if matches!(http_get(am.addr, "/-/ready"), Ok((200, _))) {
                return Ok(am);
            }
            if Instant::now() > until {
                return Err(format!("alertmanager not ready; log:\n{}", am.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("alertmanager.log")).unwrap_or_default()
    }

    /// The alerts it holds (`GET /api/v2/alerts`).
    pub fn alerts(&self) -> Result<Vec<serde_json::Value>, String> {
        let (status, body) = http_get(self.addr, "/api/v2/alerts")?;
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("HTTP {status}: {e}: {body}"))?;
        v.as_array()
            .cloned()
            .ok_or_else(|| format!("not an array: {body}"))
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
