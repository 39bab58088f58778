//! The `[daemon]` section: live capture, outputs, state and the metrics endpoint.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::ctx::Ctx;
use crate::sinks::{OneOrMany, RawClient, RawSyslog, RawWebhook};
use crate::{ConfigError, HttpClientSettings, SyslogSettings, WebhookSettings};

/// Which capture library reads the interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// libpcap: BPF filter, snaplen, kernel buffer, promiscuous and immediate mode.
    #[default]
    Pcap,
    /// AF_PACKET with a memory-mapped `TPACKET_V3` ring (Linux): BPF filter and snaplen in the
    /// kernel, kernel timestamps, drops from `PACKET_STATISTICS`.
    AfPacket,
}

/// Settings of `burstwatch daemon`.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSettings {
    /// Interfaces to capture on.
    pub interfaces: Vec<String>,
    /// UDP addresses to receive flow export on (NetFlow v5/v9, IPFIX, sFlow v5), written
    /// `udp://ADDR:PORT` in the file.
    pub flow_listen: Vec<SocketAddr>,
    /// Capture library.
    pub backend: Backend,
    /// libpcap filter expression applied in the kernel; empty for none.
    pub filter: String,
    /// Bytes captured per packet (headers are enough: lengths come from the IP header).
    pub snaplen: u32,
    /// Kernel capture buffer per interface, in MiB (the afpacket ring's size unless
    /// `ring_blocks` is given).
    pub buffer_mib: u32,
    /// afpacket: bytes per ring block, in KiB (a multiple of the 4 KiB page).
    pub ring_block_kib: u32,
    /// afpacket: blocks in the ring (default: `buffer_mib` split into blocks).
    pub ring_blocks: u32,
    /// afpacket: the kernel hands a block over after this many milliseconds even if not full.
    pub ring_block_timeout_ms: u32,
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
    /// Alertmanager base URLs (alerts are POSTed to `{url}/api/v2/alerts` of every one: the
    /// instances of an HA cluster each get every alert).
    pub alertmanager_url: Vec<String>,
    /// Alerts waiting for one Alertmanager beyond this are dropped (and counted).
    pub alertmanager_queue: usize,
    /// TLS and authentication of the Alertmanager URLs (`[daemon.alertmanager]`).
    pub alertmanager: HttpClientSettings,
    /// The generic webhook sink (`[daemon.webhook]`).
    pub webhook: Option<WebhookSettings>,
    /// The syslog sink (`[daemon.syslog]`).
    pub syslog: Option<SyslogSettings>,
    /// Name of this sensor, a `sensor` label on every alert the Alertmanager, webhook and
    /// syslog sinks send; `None`: the host name.
    pub sensor: Option<String>,
    /// Site of this sensor, a `site` label beside `sensor`; `None`: no such label.
    pub site: Option<String>,
    /// Learned state (baselines, endpoint prevalence, first contacts, candidates on hold)
    /// written on exit and every `state_save_seconds` while running, read on start.
    pub state_file: Option<PathBuf>,
    /// Seconds between checkpoints of the learned state while running (so that a crash loses
    /// at most this much learning, and no alert on hold).
    pub state_save_seconds: f64,
    /// Seconds between retries of an interface that is down or missing (doubles up to 60).
    pub retry_seconds: f64,
    /// Engine workers: flow tables and per-subscriber detection split by home host over this
    /// many threads (endpoint prevalence and scoring stay on one). Read at start only.
    pub workers: usize,
    /// Capture threads per interface (afpacket backend), each with its own ring in one
    /// `PACKET_FANOUT` group that keeps every subscriber on one thread; `None`: one per core,
    /// at most `workers` (1 with the pcap backend). Read at start only.
    pub capture_threads: Option<usize>,
    /// Account to switch to once the captures are open (keeping only CAP_NET_RAW and
    /// CAP_NET_ADMIN); `None` to keep running as started.
    pub user: Option<String>,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            flow_listen: Vec::new(),
            backend: Backend::Pcap,
            filter: String::new(),
            snaplen: 256,
            buffer_mib: 64,
            ring_block_kib: 1024,
            ring_blocks: 64,
            ring_block_timeout_ms: 50,
            promiscuous: true,
            immediate: true,
            metrics_bind: SocketAddr::from(([127, 0, 0, 1], 9811)),
            alerts_file: None,
            alerts_stdout: false,
            flows_file: None,
            alertmanager_url: Vec::new(),
            alertmanager_queue: 10_000,
            alertmanager: HttpClientSettings::default(),
            webhook: None,
            syslog: None,
            sensor: None,
            site: None,
            state_file: None,
            state_save_seconds: 60.0,
            retry_seconds: 1.0,
            workers: 1,
            capture_threads: None,
            user: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDaemon {
    interfaces: Option<Spanned<Vec<String>>>,
    flow_listen: Option<Spanned<Vec<String>>>,
    backend: Option<Spanned<String>>,
    filter: Option<String>,
    snaplen: Option<Spanned<i64>>,
    buffer_mib: Option<Spanned<i64>>,
    ring_block_kib: Option<Spanned<i64>>,
    ring_blocks: Option<Spanned<i64>>,
    ring_block_timeout_ms: Option<Spanned<i64>>,
    promiscuous: Option<bool>,
    immediate: Option<bool>,
    metrics_bind: Option<Spanned<String>>,
    alerts_file: Option<String>,
    alerts_stdout: Option<bool>,
    flows_file: Option<String>,
    alertmanager_url: Option<Spanned<OneOrMany>>,
    alertmanager_queue: Option<Spanned<i64>>,
    alertmanager: RawClient,
    webhook: Option<Spanned<RawWebhook>>,
    syslog: Option<Spanned<RawSyslog>>,
    sensor: Option<Spanned<String>>,
    site: Option<Spanned<String>>,
    state_file: Option<String>,
    state_save_seconds: Option<Spanned<f64>>,
    retry_seconds: Option<Spanned<f64>>,
    workers: Option<Spanned<i64>>,
    capture_threads: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
}

fn non_empty(s: &Option<String>) -> Option<&String> {
    s.as_ref().filter(|s| !s.is_empty())
}

/// Why `name` cannot be a Linux network interface name (the kernel's `dev_valid_name`: 1 to 15
/// bytes, not `.` or `..`, no `/`, `:` or white space), or `None` when it can. Whether it
/// exists on this machine is another question: see `burstwatch check-config`.
pub fn interface_name_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty")
    } else if name.len() > 15 {
        Some("longer than 15 bytes (IFNAMSIZ)")
    } else if name == "." || name == ".." {
        Some("not a name")
    } else if name.contains(['/', ':', '\0']) || name.chars().any(char::is_whitespace) {
        Some("contains '/', ':', NUL or white space")
    } else {
        None
    }
}

/// The longest first pause before retrying an interface: the backoff doubles up to this
/// anyway, so a longer `retry_seconds` would only delay the first retry.
const MAX_RETRY_SECONDS: f64 = 60.0;

impl Ctx<'_> {
    pub(crate) fn daemon(&self, r: &RawDaemon, base: &Path) -> Result<DaemonSettings, ConfigError> {
        let d = DaemonSettings::default();
        let path = |s: &Option<String>| non_empty(s).map(|p| base.join(p));
        let interfaces = match &r.interfaces {
            Some(v) => {
                let names = v.get_ref();
                for (i, name) in names.iter().enumerate() {
                    if let Some(why) = interface_name_error(name) {
                        return Err(self.invalid(
                            v.span().start,
                            "daemon.interfaces",
                            format!("not an interface name ({why}): {name:?}"),
                        ));
                    }
                    if names[..i].contains(name) {
                        // Two capture threads on one interface would count every packet twice.
                        return Err(self.invalid(
                            v.span().start,
                            "daemon.interfaces",
                            format!("{name:?} is listed twice"),
                        ));
                    }
                }
                names.clone()
            }
            None => d.interfaces,
        };
        let mut flow_listen = Vec::new();
        if let Some(v) = &r.flow_listen {
            for url in v.get_ref() {
                let addr = url
                    .strip_prefix("udp://")
                    .and_then(|a| a.parse::<SocketAddr>().ok())
                    .ok_or_else(|| {
                        self.invalid(
                            v.span().start,
                            "daemon.flow_listen",
                            format!("not udp://ADDR:PORT (e.g. \"udp://0.0.0.0:2055\"): {url:?}"),
                        )
                    })?;
                if flow_listen.contains(&addr) {
                    return Err(self.invalid(
                        v.span().start,
                        "daemon.flow_listen",
                        format!("{url:?} is listed twice"),
                    ));
                }
                flow_listen.push(addr);
            }
        }
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
            Some(s) => {
                let bad = || {
                    self.invalid(
                        s.span().start,
                        "daemon.metrics_bind",
                        format!(
                            "must be an address:port such as 127.0.0.1:9811 (port 1 to 65535), got {:?}",
                            s.get_ref()
                        ),
                    )
                };
                let addr: SocketAddr = s.get_ref().parse().map_err(|_| bad())?;
                // Port 0 would bind a random port that no scrape config can name.
                if addr.port() == 0 {
                    return Err(bad());
                }
                addr
            }
        };
        let alertmanager_url = self.alertmanager_urls(&r.alertmanager_url)?;
        let buffer_mib = self.count(
            &r.buffer_mib,
            "daemon.buffer_mib",
            d.buffer_mib as usize,
            4096,
        )? as u32;
        if let Some(v) = r.buffer_mib.as_ref() {
            // libpcap takes the buffer size as a C int: 2047 MiB is the most it can hold.
            if backend == Backend::Pcap && buffer_mib > 2047 {
                return Err(self.invalid(
                    v.span().start,
                    "daemon.buffer_mib",
                    format!("the pcap backend takes at most 2047 MiB (a C int), got {buffer_mib}"),
                ));
            }
        }
        let (ring_block_kib, ring_blocks) = self.ring(r, buffer_mib)?;
        let capture_threads = match &r.capture_threads {
            None => None,
            Some(v) => {
                let n = self.count(&r.capture_threads, "daemon.capture_threads", 1, 64)?;
                if n > 1 && backend == Backend::Pcap {
                    return Err(self.invalid(
                        v.span().start,
                        "daemon.capture_threads",
                        format!("{n} threads per interface need backend = \"afpacket\" (PACKET_FANOUT); libpcap reads with one"),
                    ));
                }
                Some(n)
            }
        };
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
        let retry_ns = self.seconds_in(
            &r.retry_seconds,
            "daemon.retry_seconds",
            1_000_000_000,
            0.0,
            MAX_RETRY_SECONDS,
        )?;
        let save_ns = self.seconds(
            &r.state_save_seconds,
            "daemon.state_save_seconds",
            60_000_000_000,
        )?;
        Ok(DaemonSettings {
            interfaces,
            flow_listen,
            backend,
            filter: r.filter.clone().unwrap_or_default(),
            // Below 96 bytes the headers of a tagged IPv6/TCP packet no longer fit, and every
            // packet would be a decode error.
            snaplen: self.count_in(
                &r.snaplen,
                "daemon.snaplen",
                d.snaplen as usize,
                96,
                262_144,
            )? as u32,
            buffer_mib,
            ring_block_kib,
            ring_blocks,
            ring_block_timeout_ms: self.count(
                &r.ring_block_timeout_ms,
                "daemon.ring_block_timeout_ms",
                d.ring_block_timeout_ms as usize,
                10_000,
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
            alertmanager: self.client(&r.alertmanager, "daemon.alertmanager", base)?,
            webhook: self.webhook(&r.webhook, base)?,
            syslog: self.syslog(&r.syslog)?,
            sensor: self.origin_name(&r.sensor, "daemon.sensor")?,
            site: self.origin_name(&r.site, "daemon.site")?,
            state_file: path(&r.state_file),
            state_save_seconds: save_ns as f64 / 1e9,
            retry_seconds: retry_ns as f64 / 1e9,
            workers: self.count(&r.workers, "daemon.workers", d.workers, 64)?,
            capture_threads,
            user,
        })
    }
}

impl Ctx<'_> {
    /// `ring_block_kib` and `ring_blocks`: a block a whole number of 4 KiB pages, at most
    /// 16 MiB; the ring at most 4 GiB; by default `buffer_mib` split into blocks.
    fn ring(&self, r: &RawDaemon, buffer_mib: u32) -> Result<(u32, u32), ConfigError> {
        let d = DaemonSettings::default();
        let kib = self.count(
            &r.ring_block_kib,
            "daemon.ring_block_kib",
            d.ring_block_kib as usize,
            16_384,
        )? as u32;
        if let Some(v) = r.ring_block_kib.as_ref().filter(|_| kib % 4 != 0) {
            return Err(self.invalid(
                v.span().start,
                "daemon.ring_block_kib",
                format!("must be a multiple of 4 (whole pages), got {kib}"),
            ));
        }
        let default_blocks = (u64::from(buffer_mib) * 1024 / u64::from(kib)).max(2);
        let blocks = self.count(
            &r.ring_blocks,
            "daemon.ring_blocks",
            default_blocks as usize,
            1 << 20,
        )? as u32;
        let total_kib = u64::from(kib) * u64::from(blocks);
        if total_kib > 4096 * 1024 {
            let at = r
                .ring_blocks
                .as_ref()
                .or(r.ring_block_kib.as_ref())
                .map_or(0, |v| v.span().start);
            return Err(self.invalid(
                at,
                "daemon.ring_blocks",
                format!(
                    "a ring of {blocks} blocks of {kib} KiB is {} MiB; at most 4096 MiB",
                    total_kib / 1024
                ),
            ));
        }
        Ok((kib, blocks))
    }
}

#[cfg(test)]
mod tests;
