//! The `[daemon]` section: live capture, outputs, state and the metrics endpoint.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::{ConfigError, Ctx};

/// Which capture library reads the interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// libpcap: BPF filter, snaplen, kernel buffer, promiscuous and immediate mode.
    #[default]
    Pcap,
    /// A plain AF_PACKET socket (Linux); no BPF filter, timestamps taken on receipt.
    AfPacket,
}

/// Settings of `burstwatch daemon`.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSettings {
    /// Interfaces to capture on.
    pub interfaces: Vec<String>,
    /// Capture library.
    pub backend: Backend,
    /// libpcap filter expression applied in the kernel; empty for none.
    pub filter: String,
    /// Bytes captured per packet (headers are enough: lengths come from the IP header).
    pub snaplen: u32,
    /// Kernel capture buffer per interface, in MiB.
    pub buffer_mib: u32,
    /// Put the interfaces in promiscuous mode.
    pub promiscuous: bool,
    /// Deliver packets as they arrive instead of in buffered batches.
    pub immediate: bool,
    /// Address of the HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).
    pub metrics_bind: SocketAddr,
    /// Alerts as JSON lines, appended; reopened on SIGHUP (for logrotate).
    pub alerts_file: Option<PathBuf>,
    /// Alerts as JSON lines on standard output too.
    pub alerts_stdout: bool,
    /// Flow records as JSON lines, appended; reopened on SIGHUP.
    pub flows_file: Option<PathBuf>,
    /// Alertmanager base URL (alerts are POSTed to `{url}/api/v2/alerts`).
    pub alertmanager_url: Option<String>,
    /// Alerts waiting for the webhook beyond this are dropped (and counted).
    pub alertmanager_queue: usize,
    /// Learned state (baselines, endpoint prevalence, first contacts) written on exit and read
    /// on start.
    pub state_file: Option<PathBuf>,
    /// Seconds between retries of an interface that is down or missing (doubles up to 60).
    pub retry_seconds: f64,
    /// Engine workers: flow tables and per-subscriber detection split by home host over this
    /// many threads (endpoint prevalence and scoring stay on one). Read at start only.
    pub workers: usize,
    /// Account to switch to once the captures are open (keeping only CAP_NET_RAW and
    /// CAP_NET_ADMIN); `None` to keep running as started.
    pub user: Option<String>,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            backend: Backend::Pcap,
            filter: String::new(),
            snaplen: 256,
            buffer_mib: 64,
            promiscuous: true,
            immediate: true,
            metrics_bind: SocketAddr::from(([127, 0, 0, 1], 9811)),
            alerts_file: None,
            alerts_stdout: false,
            flows_file: None,
            alertmanager_url: None,
            alertmanager_queue: 10_000,
            state_file: None,
            retry_seconds: 1.0,
            workers: 1,
            user: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDaemon {
    interfaces: Option<Spanned<Vec<String>>>,
    backend: Option<Spanned<String>>,
    filter: Option<String>,
    snaplen: Option<Spanned<i64>>,
    buffer_mib: Option<Spanned<i64>>,
    promiscuous: Option<bool>,
    immediate: Option<bool>,
    metrics_bind: Option<Spanned<String>>,
    alerts_file: Option<String>,
    alerts_stdout: Option<bool>,
    flows_file: Option<String>,
    alertmanager_url: Option<Spanned<String>>,
    alertmanager_queue: Option<Spanned<i64>>,
    state_file: Option<String>,
    retry_seconds: Option<Spanned<f64>>,
    workers: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
}

fn non_empty(s: &Option<String>) -> Option<&String> {
    s.as_ref().filter(|s| !s.is_empty())
}

impl Ctx<'_> {
    pub(crate) fn daemon(&self, r: &RawDaemon, base: &Path) -> Result<DaemonSettings, ConfigError> {
        let d = DaemonSettings::default();
        let path = |s: &Option<String>| non_empty(s).map(|p| base.join(p));
        let interfaces = match &r.interfaces {
            Some(v) => {
                if let Some(bad) = v.get_ref().iter().find(|i| i.is_empty() || i.len() > 64) {
                    return Err(self.invalid(
                        v.span().start,
                        "daemon.interfaces",
                        format!("not an interface name: {bad:?}"),
                    ));
                }
                v.get_ref().clone()
            }
            None => d.interfaces,
        };
        let backend = match &r.backend {
            None => d.backend,
            Some(b) => match b.get_ref().as_str() {
                "pcap" => Backend::Pcap,
                "afpacket" => Backend::AfPacket,
                other => {
                    return Err(self.invalid(
                        b.span().start,
                        "daemon.backend",
                        format!("must be \"pcap\" or \"afpacket\", got {other:?}"),
                    ))
                }
            },
        };
        let metrics_bind = match &r.metrics_bind {
            None => d.metrics_bind,
            Some(s) => s.get_ref().parse().map_err(|_| {
                self.invalid(
                    s.span().start,
                    "daemon.metrics_bind",
                    format!(
                        "must be an address:port such as 127.0.0.1:9811, got {:?}",
                        s.get_ref()
                    ),
                )
            })?,
        };
        let alertmanager_url = match &r.alertmanager_url {
            Some(u) if !u.get_ref().is_empty() => {
                let url = u.get_ref();
                if !url.starts_with("http://") {
                    return Err(self.invalid(
                        u.span().start,
                        "daemon.alertmanager_url",
                        format!("must start with http:// (put TLS in a local proxy), got {url:?}"),
                    ));
                }
                Some(url.trim_end_matches('/').to_string())
            }
            _ => None,
        };
        if let Some(b) = &r.backend {
            if backend == Backend::AfPacket && non_empty(&r.filter).is_some() {
                return Err(self.invalid(
                    b.span().start,
                    "daemon.filter",
                    "the afpacket backend has no BPF filter; use backend = \"pcap\"".into(),
                ));
            }
        }
        let user = match &r.user {
            Some(u) if !u.get_ref().is_empty() => {
                let name = u.get_ref();
                if name.len() > 64 || name.contains(['\0', '/', ':']) {
                    return Err(self.invalid(
                        u.span().start,
                        "daemon.user",
                        format!("not an account name: {name:?}"),
                    ));
                }
                Some(name.clone())
            }
            _ => None,
        };
        let retry_ns = self.seconds(&r.retry_seconds, "daemon.retry_seconds", 1_000_000_000)?;
        Ok(DaemonSettings {
            interfaces,
            backend,
            filter: r.filter.clone().unwrap_or_default(),
            snaplen: self.count(&r.snaplen, "daemon.snaplen", d.snaplen as usize, 262_144)? as u32,
            buffer_mib: self.count(
                &r.buffer_mib,
                "daemon.buffer_mib",
                d.buffer_mib as usize,
                4096,
            )? as u32,
            promiscuous: r.promiscuous.unwrap_or(d.promiscuous),
            immediate: r.immediate.unwrap_or(d.immediate),
            metrics_bind,
            alerts_file: path(&r.alerts_file),
            alerts_stdout: r.alerts_stdout.unwrap_or(d.alerts_stdout),
            flows_file: path(&r.flows_file),
            alertmanager_url,
            alertmanager_queue: self.count(
                &r.alertmanager_queue,
                "daemon.alertmanager_queue",
                d.alertmanager_queue,
                10_000_000,
            )?,
            state_file: path(&r.state_file),
            retry_seconds: retry_ns as f64 / 1e9,
            workers: self.count(&r.workers, "daemon.workers", d.workers, 64)?,
            user,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use crate::Settings;

    use super::*;

    #[test]
    fn daemon_section_parses_and_resolves_paths() {
        let s = Settings::parse(
            "[daemon]\ninterfaces = [\"eth1\", \"eth2\"]\nbackend = \"afpacket\"\n\
             metrics_bind = \"0.0.0.0:9900\"\nalerts_file = \"alerts.jsonl\"\n",
            "/etc/bw/b.toml",
        )
        .unwrap();
        assert_eq!(s.daemon.interfaces, ["eth1", "eth2"]);
        assert_eq!(s.daemon.backend, Backend::AfPacket);
        assert_eq!(s.daemon.metrics_bind.port(), 9900);
        assert_eq!(
            s.daemon.alerts_file.as_deref(),
            Some(Path::new("/etc/bw/alerts.jsonl"))
        );
    }

    #[test]
    fn daemon_errors_name_key_and_line() {
        let e = Settings::parse("[daemon]\n\nbackend = \"dpdk\"\n", "x.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.toml:3: daemon.backend: must be \"pcap\" or \"afpacket\", got \"dpdk\""
        );
        let e = Settings::parse("[daemon]\nmetrics_bind = \"localhost\"\n", "x.toml").unwrap_err();
        assert!(
            e.to_string().starts_with("x.toml:2: daemon.metrics_bind:"),
            "{e}"
        );
        let e = Settings::parse("[daemon]\nsnaplen = 0\n", "x.toml").unwrap_err();
        assert!(
            e.to_string().starts_with("x.toml:2: daemon.snaplen:"),
            "{e}"
        );
    }
}
