//! `simulate --export FORMAT`: the simulated packets shown to a simulated router, whose export
//! datagrams (NetFlow v5/v9, IPFIX, sFlow v5) become the output capture instead of the packets.
//!
//! The simulator writes its pcap into [`ExportTap`], which cuts the stream into records,
//! decodes each frame with the wire decoder and hands it to `burstwatch_sim::export::Exporter`.

use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

use burstwatch_sim::export::{ExportConfig, ExportSummary, Exporter, FlowKey, Format};
use burstwatch_wire::{decode, Decoded, LinkType, PacketMeta};

/// Export protocol of `simulate --export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// IPFIX (RFC 7011) to port 4739.
    Ipfix,
    /// NetFlow v9 (RFC 3954) to port 2055.
    Netflow9,
    /// NetFlow v5 to port 2055 (IPv4 flows only).
    Netflow5,
    /// sFlow v5 to port 6343 (sampled packet headers).
    Sflow,
}

impl ExportFormat {
    fn format(self) -> Format {
        match self {
            ExportFormat::Ipfix => Format::Ipfix,
            ExportFormat::Netflow9 => Format::Netflow9,
            ExportFormat::Netflow5 => Format::Netflow5,
            ExportFormat::Sflow => Format::Sflow,
        }
    }
}

/// A writer that takes a classic pcap stream (little-endian, µs, Ethernet: what the simulator
/// writes) and exports its packets.
pub struct ExportTap<W: Write> {
    exporter: Option<Exporter<W>>,
    pending: Vec<u8>,
    header_seen: bool,
    meta: PacketMeta,
    last_ns: i64,
}

impl<W: Write> ExportTap<W> {
    /// A tap exporting as `format` to the capture `out`.
    pub fn new(
        format: ExportFormat,
        sampling: u32,
        active_s: u32,
        idle_s: u32,
        seed: u64,
        out: W,
    ) -> io::Result<Self> {
        let mut cfg = ExportConfig::new(format.format());
        cfg.sampling = sampling;
        cfg.active_s = active_s;
        cfg.idle_s = idle_s;
        cfg.seed = seed;
        Ok(Self {
            exporter: Some(Exporter::new(cfg, out)?),
            pending: Vec::with_capacity(1 << 16),
            header_seen: false,
            meta: PacketMeta::default(),
            last_ns: 0,
        })
    }

    /// Hand every datagram to `f` as well (see [`Exporter::tee`]).
    pub fn tee(&mut self, f: burstwatch_sim::export::Tee) {
        if let Some(e) = self.exporter.as_mut() {
            e.tee(f);
        }
    }

    /// Export what is left and flush: the summary of what was written.
    pub fn finish(mut self) -> io::Result<ExportSummary> {
        match self.exporter.take() {
            Some(e) => e.finish(self.last_ns),
            None => Ok(ExportSummary::default()),
        }
    }

    fn records(&mut self) -> io::Result<usize> {
        let mut at = 0;
        if !self.header_seen {
            if self.pending.len() < 24 {
                return Ok(0);
            }
            self.header_seen = true;
            at = 24;
        }
        let Some(exporter) = self.exporter.as_mut() else {
            return Ok(at);
        };
        while let Some(hdr) = self.pending.get(at..at + 16) {
            let word = |i: usize| u32::from_le_bytes([hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]]);
            let (secs, usecs, caplen) = (word(0), word(4), word(8) as usize);
            let Some(frame) = self.pending.get(at + 16..at + 16 + caplen) else {
                break;
            };
            let ts = i64::from(secs) * 1_000_000_000 + i64::from(usecs) * 1000;
            self.last_ns = ts;
            if let Ok(Decoded::Ip) = decode(LinkType::ETHERNET, frame, &mut self.meta) {
                let m = &self.meta;
                let key = FlowKey {
                    src: m.src,
                    dst: m.dst,
                    proto: m.proto,
                    sport: m.sport,
                    dport: m.dport,
                };
                exporter.packet(ts, key, m.ip_len, frame)?;
            }
            at += 16 + caplen;
        }
        Ok(at)
    }
}

impl<W: Write> Write for ExportTap<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        let used = self.records()?;
        self.pending.drain(..used);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What [`udp_sender`] could not send: a router keeps exporting when its collector is down
/// (the kernel reports a closed port on a later send), so failures are counted, not fatal.
#[derive(Debug, Default)]
pub struct SendFailures {
    /// Datagrams not sent.
    pub count: std::sync::atomic::AtomicU64,
    /// The first error, as text.
    pub first: std::sync::Mutex<Option<String>>,
}

/// Sends each datagram to a collector over UDP, paced by its export time: `speed` seconds of
/// export time per second (0: as fast as it comes). Datagrams that cannot be sent are counted
/// in the returned [`SendFailures`].
pub fn udp_sender(
    to: SocketAddr,
    speed: f64,
) -> io::Result<(burstwatch_sim::export::Tee, std::sync::Arc<SendFailures>)> {
    let bind: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(to)?;
    let failures = std::sync::Arc::new(SendFailures::default());
    let seen = std::sync::Arc::clone(&failures);
    let mut start: Option<(i64, Instant)> = None;
    let tee: burstwatch_sim::export::Tee = Box::new(move |ts_ns, payload| {
        let (t0, wall0) = *start.get_or_insert((ts_ns, Instant::now()));
        if speed > 0.0 {
            let due = Duration::from_secs_f64(((ts_ns - t0).max(0) as f64 / 1e9) / speed);
            let elapsed = wall0.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
        if let Err(e) = socket.send(payload) {
            seen.count
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Ok(mut first) = seen.first.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }
        Ok(())
    });
    Ok((tee, failures))
}

/// `udp://HOST:PORT` as a socket address.
pub fn parse_udp_url(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("udp://")
        .ok_or_else(|| anyhow::anyhow!("--send {url:?}: expected udp://HOST:PORT"))?;
    rest.to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("--send {url:?}: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("--send {url:?}: no address"))
}
