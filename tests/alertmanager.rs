//! A real Alertmanager for tests: [`Alertmanager::start`] runs Debian's
//! `prometheus-alertmanager` (or `ALERTMANAGER_BIN`) on loopback with a temporary configuration
//! and storage, clustering off, and kills it and removes its files on drop.
//! [`Alertmanager::start_with`] listens on another address, and with [`Web`] serves https
//! (`--web.config.file`) and asks for basic auth.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::prom::{free_port, http_get};

/// A running Alertmanager.
pub struct Alertmanager {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
    web: Option<Web>,
}

/// TLS and basic auth of Alertmanager's web server.
#[derive(Debug, Clone)]
pub struct Web {
    /// CA that signed `cert` (for clients).
    pub ca: PathBuf,
    /// Server certificate (PEM).
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
    /// The one user.
    pub user: String,
    /// Its password.
    pub password: String,
    /// Its password's bcrypt hash.
    pub bcrypt: String,
}

/// The password [`Web::test`] uses, and its bcrypt hash (cost 10).
pub const TEST_PASSWORD: &str = "burstwatch-test";
const TEST_BCRYPT: &str = "$2b$10$ROJOi9oKBoi2uLL6zQY3ZuXzjrg3gvSeYLXO2Kljm1vy62nTbS38u";

impl Web {
    /// A CA and a server certificate for `ip` made with `openssl` in `dir`, user `burstwatch`
    /// with [`TEST_PASSWORD`].
    pub fn test(dir: &Path, ip: IpAddr) -> Result<Web, String> {
        let (ca, cert, key) = make_certs(dir, ip)?;
        Ok(Web {
            ca,
            cert,
            key,
            user: "burstwatch".into(),
            password: TEST_PASSWORD.into(),
            bcrypt: TEST_BCRYPT.into(),
        })
    }
}

/// A CA (`ca.pem`) and a certificate for `ip` it signed (`server.pem`, `server.key`) in `dir`.
/// The certificate serves clients and is a client's too (Redis Cluster nodes present it to each
/// other on the cluster bus).
pub fn make_certs(dir: &Path, ip: IpAddr) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let ssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("cannot run openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    ssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=burstwatch test CA",
    ])?;
    ssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=alertmanager",
    ])?;
    std::fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth,clientAuth\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    ssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ])?;
    Ok((
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    ))
}

/// The Alertmanager binary (override with `ALERTMANAGER_BIN`).
pub fn alertmanager_bin() -> String {
    std::env::var("ALERTMANAGER_BIN").unwrap_or_else(|_| "prometheus-alertmanager".into())
}

impl Alertmanager {
    /// Start it on loopback and wait until it is ready.
    pub fn start() -> Result<Self, String> {
        Self::start_with(IpAddr::from([127, 0, 0, 1]), None)
    }

    /// Start it on `ip` (a free port), with TLS and basic auth if `web` is given, and wait
    /// until it is ready.
    pub fn start_with(ip: IpAddr, web: Option<Web>) -> Result<Self, String> {
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
        let addr = SocketAddr::new(ip, free_port());
        let web_file = dir.join("web.yml");
        let web_yml = match &web {
            None => String::new(),
            Some(w) => format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {}: \"{}\"\n",
                w.cert.display(),
                w.key.display(),
                w.user,
                w.bcrypt
            ),
        };
        std::fs::write(&web_file, web_yml).map_err(|e| format!("write web config: {e}"))?;
        let log = std::fs::File::create(dir.join("alertmanager.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let child = Command::new(alertmanager_bin())
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--cluster.listen-address=")
            .arg(format!("--web.config.file={}", web_file.display()))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", alertmanager_bin()))?;
        let mut am = Self {
            child,
            addr,
            dir,
            web,
        };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = am.child.try_wait() {
                return Err(format!("alertmanager exited: {status}; log:\n{}", am.log()));
            }
            if matches!(am.get("/-/ready"), Ok((200, _))) {
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

    /// `GET path`: plain HTTP, or with `curl` over https with the CA and credentials.
    fn get(&self, path: &str) -> Result<(u16, String), String> {
        let Some(w) = &self.web else {
            return http_get(self.addr, path);
        };
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-w",
                "\n%{http_code}",
                "--cacert",
            ])
            .arg(&w.ca)
            .arg("-u")
            .arg(format!("{}:{}", w.user, w.password))
            .arg(format!("https://{}{path}", self.addr))
            .output()
            .map_err(|e| format!("cannot run curl: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').ok_or("no curl output")?;
        let code = code.trim().parse().map_err(|_| format!("curl: {text}"))?;
        Ok((code, body.to_string()))
    }

    /// The alerts it holds (`GET /api/v2/alerts`).
    pub fn alerts(&self) -> Result<Vec<serde_json::Value>, String> {
        let (status, body) = self.get("/api/v2/alerts")?;
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
