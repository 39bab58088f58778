//! A real Prometheus for tests: [`Prometheus::start`] runs the `prometheus` binary on loopback
//! with a temporary configuration (scraping the given targets every second under
//! `job="burstwatch"`, with `deploy/prometheus/rules.yml` loaded) and a temporary TSDB, and
//! kills it and removes its files on drop, also when a test panics.
//!
//! [`check_deploy_queries`] evaluates every query of the Grafana dashboard and every rule
//! expression against it: point it at any exporter (the library's in a test, the real daemon
//! later).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The labels of one series.
pub type Labels = BTreeMap<String, String>;

/// A running Prometheus server.
pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// `prometheus` binary (override with `PROMETHEUS_BIN`).
pub fn prometheus_bin() -> String {
    std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into())
}

/// `promtool` binary (override with `PROMTOOL_BIN`).
pub fn promtool_bin() -> String {
    std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".into())
}

/// A port that was free a moment ago on 127.0.0.1 and that no earlier call in this process
/// handed out. Tests run in parallel, and the kernel hands a port out again once it is free:
/// a test that kills a server and starts it again on its port could otherwise find another
/// test's server there, or another test could be given the port while it is down.
pub fn free_port() -> u16 {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = l.local_addr().expect("local address").port();
        // A test that panicked while holding the lock leaves the set as it was: still right.
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.insert(port) {
            return port;
        }
    }
}

impl Prometheus {
    /// Start Prometheus scraping `targets` (`host:port`) every second, with `rule_files`
    /// loaded (evaluated every second), and wait until it is ready.
    pub fn start(targets: &[String], rule_files: &[PathBuf]) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "burstwatch-prom-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("data")).map_err(|e| format!("temp dir: {e}"))?;
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|p| format!("  - \"{}\"", p.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
             rule_files:\n{}\n\
             scrape_configs:\n  - job_name: burstwatch\n    static_configs:\n      - targets: [{}]\n",
            if rules.is_empty() {
                "  []".to_string()
            } else {
                rules.join("\n")
            },
            targets.join(", ")
        );
        let cfg_path = dir.join("prometheus.yml");
        std::fs::write(&cfg_path, config).map_err(|e| format!("write config: {e}"))?;
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(prometheus_bin())
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.join("prometheus.log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", prometheus_bin()))?;
        let mut p = Self { child, addr, dir };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                return Err(format!("prometheus exited: {status}; log:\n{}", p.log()));
            }
            if matches!(http_get(p.addr, "/-/ready"), Ok((200, _))) {
                return Ok(p);
            }
            if Instant::now() > until {
                return Err(format!("prometheus not ready; log:\n{}", p.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Prometheus' own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Evaluate an instant query: the series of the result (a scalar comes back as one series
    /// without labels).
    pub fn query(&self, expr: &str) -> Result<Vec<(Labels, f64)>, String> {
        let path = format!("/api/v1/query?query={}", url_encode(expr));
        let (status, body) = http_get(self.addr, &path)?;
        let v: Value =
            serde_json::from_str(&body).map_err(|e| format!("HTTP {status}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{expr}: {}", v["error"]));
        }
        let value = |pair: &Value| -> f64 {
            pair[1]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let data = &v["data"];
        Ok(match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| {
                            let labels = s["metric"]
                                .as_object()
                                .map(|m| {
                                    m.iter()
                                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").into()))
                                        .collect()
                                })
                                .unwrap_or_default();
                            (labels, value(&s["value"]))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Some("scalar") => vec![(Labels::new(), value(&data["result"]))],
            other => return Err(format!("{expr}: unexpected result type {other:?}")),
        })
    }

    /// Poll `query(expr)` until it returns at least one series or `timeout` passes.
    pub fn query_until_data(
        &self,
        expr: &str,
        timeout: Duration,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let until = Instant::now() + timeout;
        loop {
            let r = self.query(expr)?;
            if !r.is_empty() || Instant::now() > until {
                return Ok(r);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The rules Prometheus loaded.
    pub fn rules(&self) -> Result<Vec<LoadedRule>, String> {
        let (_, body) = http_get(self.addr, "/api/v1/rules")?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        let s = |v: &Value| v.as_str().unwrap_or("").to_string();
        let mut out = Vec::new();
        for g in v["data"]["groups"].as_array().into_iter().flatten() {
            for r in g["rules"].as_array().into_iter().flatten() {
                out.push(LoadedRule {
                    group: s(&g["name"]),
                    name: s(&r["name"]),
                    expr: s(&r["query"]),
                    health: s(&r["health"]),
                    last_error: s(&r["lastError"]),
                });
            }
        }
        Ok(out)
    }
}

/// One rule as Prometheus loaded it (`/api/v1/rules`).
#[derive(Debug, Clone)]
pub struct LoadedRule {
    /// Rule group.
    pub group: String,
    /// Alert or record name.
    pub name: String,
    /// The expression, as Prometheus parsed and printed it.
    pub expr: String,
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: String,
    /// The last evaluation error.
    pub last_error: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `promtool check metrics` on exposition text: `Ok` when it reports nothing.
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    let mut child = Command::new(promtool_bin())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", promtool_bin()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("promtool stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("promtool: {e}"))?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && report.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "promtool check metrics ({}):\n{report}",
            out.status
        ))
    }
}

/// `GET path` over HTTP/1.0: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("no HTTP status")?;
    Ok((status, body.to_string()))
}

/// Percent-encode a query-string value.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every `expr` of a Grafana dashboard (panels, also inside rows): `(panel title, expr)`,
/// with Grafana's variables replaced by values Prometheus accepts (`$__rate_interval` and
/// `$__interval` by `1m`, `$job` by `burstwatch`, `$instance` by `.+`).
pub fn dashboard_queries(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mut out = Vec::new();
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("").to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    let e = e
                        .replace("$__rate_interval", "1m")
                        .replace("$__interval", "1m")
                        .replace("$job", "burstwatch")
                        .replace("$instance", ".+");
                    out.push((title.clone(), e));
                }
            }
            walk(&p["panels"], out);
        }
    }
    walk(&v["panels"], &mut out);
    out
}

/// The left-hand side of a rule's top-level comparison (`a > 0.9` → `a`), so a test can check
/// that the measured quantity exists even while the rule does not fire. `None` without one.
pub fn comparison_lhs(expr: &str) -> Option<&str> {
    let b = expr.as_bytes();
    let (mut depth, mut quote, mut last) = (0i32, None::<u8>, None);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                b'"' | b'\'' | b'`' => quote = Some(c),
                b'(' | b'{' | b'[' => depth += 1,
                b')' | b'}' | b']' => depth -= 1,
                b'>' | b'<' if depth == 0 => last = Some(i),
                b'=' | b'!' if depth == 0 && b.get(i + 1) == Some(&b'=') => {
                    last = Some(i);
                    i += 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    last.map(|i| expr[..i].trim())
}

/// The outcome of [`check_deploy_queries`].
#[derive(Debug, Default)]
pub struct QueryReport {
    /// Dashboard queries and rule expressions (or their measured side) that returned data:
    /// `(what, expr, series)`.
    pub with_data: Vec<(String, String, usize)>,
    /// Those that returned no data or failed: `(what, expr, why)`.
    pub failed: Vec<(String, String, String)>,
    /// Rules whose full expression returns data now (they fire, or would after `for`).
    pub firing: Vec<String>,
    /// What `promtool check metrics` (or the scrape) reported on the target's `/metrics`;
    /// `None` when clean.
    pub lint: Option<String>,
}

/// Start a Prometheus scraping `target` (`host:port` serving `/metrics`) with the repository's
/// rules, then evaluate every Grafana dashboard query and every rule expression (for rules with
/// a comparison, its measured side must return data; the full expression, after ten scrapes,
/// decides `firing`),
/// and lint a scrape with promtool. Each query may take `timeout` to return data. Queries and
/// rules that name a metric family starting with one of `without` are not evaluated (families
/// of an input the target does not have, e.g. flow export on a packet-capture daemon).
pub fn check_deploy_queries(
    target: SocketAddr,
    repo: &Path,
    timeout: Duration,
    without: &[&str],
) -> Result<QueryReport, String> {
    let skipped = |expr: &str| without.iter().any(|w| expr.contains(w));
    let rules_file = repo.join("deploy/prometheus/rules.yml");
    let prom = Prometheus::start(&[target.to_string()], std::slice::from_ref(&rules_file))?;
    let mut report = QueryReport::default();
    let check = |what: String, expr: &str, report: &mut QueryReport| match prom
        .query_until_data(expr, timeout)
    {
        Ok(r) if !r.is_empty() => report.with_data.push((what, expr.to_string(), r.len())),
        Ok(_) => report
            .failed
            .push((what, expr.to_string(), "no data".into())),
        Err(e) => report.failed.push((what, expr.to_string(), e)),
    };
    let panels = dashboard_queries(&repo.join("deploy/grafana/burstwatch.json"));
    if panels.is_empty() {
        return Err("no queries found in the dashboard".into());
    }
    for (title, expr) in panels.iter().filter(|(_, e)| !skipped(e)) {
        check(format!("dashboard: {title}"), expr, &mut report);
    }
    let rules = prom.rules()?;
    if rules.is_empty() {
        return Err(format!("prometheus loaded no rules; log:\n{}", prom.log()));
    }
    for r in rules.iter().filter(|r| !skipped(&r.expr)) {
        let measured = comparison_lhs(&r.expr).unwrap_or(&r.expr);
        check(format!("rule: {}", r.name), measured, &mut report);
    }
    // Whether a rule fires depends on rates and increases: give them ten scrapes of history.
    prom.query_until_data("count_over_time(up{job=\"burstwatch\"}[1m]) >= 10", timeout)?;
    for r in &rules {
        match prom.query(&r.expr) {
            Ok(v) if !v.is_empty() => report.firing.push(r.name.clone()),
            Ok(_) => {}
            Err(e) => report
                .failed
                .push((format!("rule: {}", r.name), r.expr.clone(), e)),
        }
    }
    // Every rule has been evaluated by now (1 s interval): none may report an error.
    for r in prom.rules()? {
        if r.health == "err" {
            report
                .failed
                .push((format!("rule health: {}", r.name), r.expr, r.last_error));
        }
    }
    report.lint = match http_get(target, "/metrics") {
        Ok((200, text)) => promtool_check_metrics(&text).err(),
        Ok((status, _)) => Some(format!("scrape: HTTP {status}")),
        Err(e) => Some(format!("scrape: {e}")),
    };
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_sides() {
        for (expr, lhs) in [
            ("up{job=\"x\"} == 0", Some("up{job=\"x\"}")),
            ("a / b > 0.9", Some("a / b")),
            (
                "sum by (x) (rate(m{a=~\"b>c\"}[5m])) >= 1",
                Some("sum by (x) (rate(m{a=~\"b>c\"}[5m]))"),
            ),
            ("time() - m > 30", Some("time() - m")),
            ("x != 1", Some("x")),
            ("sum(rate(m[5m]))", None),
            ("clamp_min(a > 1, 0)", None),
        ] {
            assert_eq!(comparison_lhs(expr), lhs, "{expr}");
        }
    }

    #[test]
    fn url_encoding() {
        assert_eq!(url_encode("a{b=\"c\"} > 1"), "a%7Bb%3D%22c%22%7D%20%3E%201");
    }
}
