//! The syslog sink: one RFC 5424 message per alert,
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [origin software="burstwatch" swVersion="V"] MSG`,
//! where
//!
//! * PRI is `facility * 8 + severity`, the severity from the alert's: critical 2 (crit),
//!   high 3 (err), medium 4 (warning), low 5 (notice);
//! * TIMESTAMP is the send time in UTC with milliseconds, HOSTNAME the machine's host name,
//!   PROCID the daemon's process id, MSGID the alert kind (`burst`, `beacon`);
//! * the structured data is the IANA-registered `origin` element (RFC 5424 section 7.2);
//! * MSG is the alert object as the alert file holds it, with `sensor` (and `site`) added, in
//!   UTF-8 without a byte-order mark (what log collectors parse as JSON).
//!
//! Transports: UDP (one datagram per message), TCP with octet-counting framing
//! (`LEN SP MESSAGE`, RFC 6587; reconnected with backoff, a message retried up to 5 times), or a
//! local datagram socket such as `/dev/log`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};
use tokio::sync::mpsc;

use super::client::Retry;
use super::webhook::with_origin;
use super::{rfc3339, AlertEvent, Msg, SinkCounters, SinkError};

/// Where the messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// UDP to `host:port`.
    Udp(String),
    /// TCP to `host:port`, octet-counting framing.
    Tcp(String),
    /// A local datagram socket (`/dev/log`).
    Unix(PathBuf),
}

impl Transport {
    /// The address as a label value, e.g. `udp://127.0.0.1:514`.
    pub fn label(&self) -> String {
        match self {
            Transport::Udp(a) => format!("udp://{a}"),
            Transport::Tcp(a) => format!("tcp://{a}"),
            Transport::Unix(p) => format!("unix://{}", p.display()),
        }
    }
}

/// Settings of the syslog sink.
#[derive(Debug, Clone)]
pub struct SyslogConfig {
    /// Where to send.
    pub transport: Transport,
    /// Facility code (0 to 23).
    pub facility: u8,
    /// APP-NAME (1 to 48 printable ASCII characters).
    pub app_name: String,
    /// Alerts that may wait for delivery; more are dropped and counted.
    pub queue: usize,
    /// TCP: reconnects and backoff.
    pub retry: Retry,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            transport: Transport::Udp("127.0.0.1:514".into()),
            facility: 3,
            app_name: "burstwatch".into(),
            queue: 10_000,
            retry: Retry::default(),
        }
    }
}

/// Syslog severity of an alert severity.
fn severity(alert: &str) -> u8 {
    match alert {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        "low" => 5,
        _ => 6,
    }
}

/// Printable US-ASCII without space, at most `max` characters, or `-` (NILVALUE).
fn header_field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if f.is_empty() {
        "-".into()
    } else {
        f
    }
}

/// One RFC 5424 message (without transport framing).
pub fn format(
    e: &AlertEvent,
    cfg: &SyslogConfig,
    hostname: &str,
    pid: u32,
    now_unix_ns: i64,
    origin: &[(String, String)],
) -> String {
    let pri = u16::from(cfg.facility.min(23)) * 8 + u16::from(severity(e.severity));
    format!(
        "<{pri}>1 {ts} {host} {app} {pid} {msgid} [origin software=\"burstwatch\" swVersion=\"{ver}\"] {msg}",
        ts = rfc3339(now_unix_ns),
        host = header_field(hostname, 255),
        app = header_field(&cfg.app_name, 48),
        msgid = header_field(e.kind, 32),
        ver = env!("CARGO_PKG_VERSION"),
        msg = with_origin(&e.json_line, origin),
    )
}

/// The machine's host name (`-` when unknown).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// An open connection or socket.
enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Unix(UnixDatagram),
}

/// The running sink.
pub(crate) struct Syslog {
    cfg: SyslogConfig,
    origin: Vec<(String, String)>,
    hostname: String,
    conn: Option<Conn>,
}

impl Syslog {
    /// Build the sink (it connects at its first message).
    pub(crate) fn new(cfg: &SyslogConfig, origin: &[(String, String)]) -> Result<Self, SinkError> {
        Ok(Self {
            cfg: cfg.clone(),
            origin: origin.to_vec(),
            hostname: host_name(),
            conn: None,
        })
    }

    async fn connect(&self) -> std::io::Result<Conn> {
        let timeout = self.cfg.retry.timeout;
        let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
        match &self.cfg.transport {
            Transport::Udp(addr) => {
                let target = tokio::time::timeout(timeout, tokio::net::lookup_host(addr.as_str()))
                    .await
                    .map_err(|_| timed_out())??
                    .next()
                    .ok_or_else(|| std::io::Error::other("the name has no address"))?;
                let local: std::net::SocketAddr = if target.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let sock = UdpSocket::bind(local).await?;
                sock.connect(target).await?;
                Ok(Conn::Udp(sock))
            }
            Transport::Tcp(addr) => {
                let s = tokio::time::timeout(timeout, TcpStream::connect(addr.as_str()))
                    .await
                    .map_err(|_| timed_out())??;
                s.set_nodelay(true)?;
                Ok(Conn::Tcp(s))
            }
            Transport::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                Ok(Conn::Unix(s))
            }
        }
    }

    /// Send one message on the open connection.
    async fn send_once(&mut self, msg: &str) -> std::io::Result<()> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let timeout = self.cfg.retry.timeout;
        let sent = match self.conn.as_mut() {
            None => return Err(std::io::Error::other("not connected")),
            Some(Conn::Udp(s)) => s.send(msg.as_bytes()).await.map(drop),
            Some(Conn::Unix(s)) => s.send(msg.as_bytes()).await.map(drop),
            Some(Conn::Tcp(s)) => {
                let framed = format!("{} {msg}", msg.len());
                tokio::time::timeout(timeout, s.write_all(framed.as_bytes()))
                    .await
                    .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut)))
            }
        };
        if sent.is_err() {
            // Connect again next time (a TCP peer that closed, a re-created /dev/log).
            self.conn = None;
        }
        sent
    }

    /// Deliver one alert, retrying with backoff.
    async fn deliver(&mut self, e: &AlertEvent, counters: &SinkCounters) {
        let msg = format(
            e,
            &self.cfg,
            &self.hostname,
            std::process::id(),
            unix_now_ns(),
            &self.origin,
        );
        let mut backoff = self.cfg.retry.backoff_initial;
        let mut attempt = 0u32;
        loop {
            match self.send_once(&msg).await {
                Ok(()) => {
                    SinkCounters::add(&counters.sent, 1);
                    break;
                }
                Err(err) if attempt >= self.cfg.retry.max_retries => {
                    tracing::warn!(sink = "syslog", address = %self.cfg.transport.label(), error = %err, attempts = attempt + 1, "syslog unreachable; alert given up");
                    SinkCounters::add(&counters.failed, 1);
                    break;
                }
                Err(err) => {
                    tracing::debug!(sink = "syslog", error = %err, ?backoff, "syslog send failed; retrying");
                    SinkCounters::add(&counters.retries, 1);
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.cfg.retry.backoff_max);
                }
            }
        }
        counters.done(1);
    }

    /// The sink task.
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<Msg>, counters: Arc<SinkCounters>) {
        while let Some(m) = rx.recv().await {
            match m {
                Msg::Alert(e) => self.deliver(&e, &counters).await,
                Msg::Flush(done) => {
                    if let Some(Conn::Tcp(s)) = self.conn.as_mut() {
                        let _ = tokio::time::timeout(Duration::from_secs(1), s.flush()).await;
                    }
                    let _ = done.send(());
                }
            }
        }
        if let Some(Conn::Tcp(mut s)) = self.conn.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), s.shutdown()).await;
        }
    }
}

/// Wall clock in ns since the Unix epoch (0 if the clock is before it).
fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn messages_follow_rfc_5424() {
        let e = AlertEvent {
            json_line: "{\"id\":\"a1\",\"kind\":\"burst\"}".into(),
            kind: "burst",
            severity: "high",
            ..AlertEvent::default()
        };
        let cfg = SyslogConfig {
            facility: 16,
            app_name: "bw".into(),
            ..SyslogConfig::default()
        };
        let origin = [("sensor".to_string(), "edge-1".to_string())];
        let m = format(&e, &cfg, "host a", 42, 1_709_251_199_250_000_000, &origin);
        assert_eq!(
            m,
            format!(
                "<131>1 2024-02-29T23:59:59.250Z hosta bw 42 burst [origin software=\"burstwatch\" \
                 swVersion=\"{}\"] {{\"id\":\"a1\",\"kind\":\"burst\",\"sensor\":\"edge-1\"}}",
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(header_field("", 5), "-");
        assert_eq!(severity("critical"), 2);
    }
}
