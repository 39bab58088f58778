//! Flow export of simulated traffic: a router's flow meter (or sFlow sampler) in front of the
//! packets, its datagrams (NetFlow v5, NetFlow v9, IPFIX or sFlow v5) written as a capture on
//! the collector, so the same labelled scenarios can be scored from flow export.
//!
//! [`Exporter`] takes every simulated packet (time, 5-tuple, IP length, frame) and writes the
//! datagrams a router would have sent: records of the flows that hit the active or idle timeout
//! each second of packet time, templates (v9/IPFIX) in the first datagram and then every
//! 10 s, the sampling rate in options data (v9/IPFIX) or the v5 header, one flow sample per
//! sampled packet for sFlow.

pub mod encode;
pub mod meter;
pub mod pcap;

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddrV4};

use encode::{Header, PacketSample, Record};
pub use meter::{FlowKey, Meter};
use pcap::DatagramPcap;

/// An export protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// NetFlow v5.
    Netflow5,
    /// NetFlow v9 (RFC 3954).
    Netflow9,
    /// IPFIX (RFC 7011).
    Ipfix,
    /// sFlow v5.
    Sflow,
}

impl Format {
    /// The collector port such exports usually go to.
    pub fn port(self) -> u16 {
        match self {
            Format::Netflow5 | Format::Netflow9 => 2055,
            Format::Ipfix => 4739,
            Format::Sflow => 6343,
        }
    }
}

/// How the simulated router exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportConfig {
    /// Protocol.
    pub format: Format,
    /// 1-in-N random packet sampling (1: every packet).
    pub sampling: u32,
    /// Active timeout, seconds.
    pub active_s: u32,
    /// Idle timeout, seconds.
    pub idle_s: u32,
    /// Seed of the sampler.
    pub seed: u64,
    /// The exporter's address.
    pub exporter: SocketAddrV4,
    /// The collector's address.
    pub collector: SocketAddrV4,
}

impl ExportConfig {
    /// Defaults for `format`: unsampled, 60 s active and 15 s idle timeouts, from
    /// 192.0.2.250:50000 to 192.0.2.251 on the format's usual port.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            sampling: 1,
            active_s: 60,
            idle_s: 15,
            seed: 1,
            exporter: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 250), 50000),
            collector: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 251), format.port()),
        }
    }
}

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Datagrams written.
    pub datagrams: u64,
    /// Flow records (NetFlow/IPFIX) or packet samples (sFlow) sent.
    pub records: u64,
    /// IP bytes those records count (sampled, not multiplied by the rate).
    pub bytes: u64,
    /// Bytes of the capture written.
    pub file_bytes: u64,
}

/// Records per v9/IPFIX datagram (keeps datagrams under 1,500 bytes with templates).
const RECORDS_PER_DATAGRAM: usize = 16;
/// Packet samples per sFlow datagram.
const SAMPLES_PER_DATAGRAM: usize = 7;
/// Templates are sent again after this long.
const TEMPLATE_EVERY_NS: i64 = 10_000_000_000;

/// A simulated router exporting the packets it is shown.
pub struct Exporter<W: Write> {
    cfg: ExportConfig,
    meter: Meter,
    out: DatagramPcap<W>,
    records: Vec<Record>,
    samples: Vec<PacketSample>,
    boot_ns: Option<i64>,
    last_template_ns: Option<i64>,
    last_flush_s: i64,
    pool: u32,
    buf: Vec<u8>,
    sum: ExportSummary,
    /// Also handed every datagram (e.g. to send it to a collector).
    tee: Option<Tee>,
}

/// What [`Exporter::tee`] is given: each datagram's export time (ns) and payload.
pub type Tee = Box<dyn FnMut(i64, &[u8]) -> io::Result<()>>;

impl<W: Write> Exporter<W> {
    /// An exporter writing its datagrams as a pcap to `out`.
    pub fn new(cfg: ExportConfig, out: W) -> io::Result<Self> {
        Ok(Self {
            meter: Meter::new(cfg.active_s, cfg.idle_s, cfg.sampling, cfg.seed),
            out: DatagramPcap::new(out, cfg.exporter, cfg.collector)?,
            cfg,
            records: Vec::new(),
            samples: Vec::new(),
            boot_ns: None,
            last_template_ns: None,
            last_flush_s: i64::MIN,
            pool: 0,
            buf: Vec::with_capacity(2048),
            sum: ExportSummary::default(),
            tee: None,
        })
    }

    /// Hand every datagram to `f` as well, after it is written to the capture.
    pub fn tee(&mut self, f: Tee) {
        self.tee = Some(f);
    }

    /// Show the router one packet: its time, 5-tuple, IP length and whole frame.
    pub fn packet(
        &mut self,
        ts_ns: i64,
        key: FlowKey,
        ip_len: u32,
        frame: &[u8],
    ) -> io::Result<()> {
        // The router booted an hour before the first packet.
        self.boot_ns.get_or_insert(ts_ns - 3_600_000_000_000);
        let second = ts_ns.div_euclid(1_000_000_000);
        if second > self.last_flush_s {
            self.last_flush_s = second;
            self.meter.sweep(ts_ns);
            self.flush(ts_ns)?;
        }
        self.pool = self.pool.wrapping_add(1);
        if !self.meter.sample() {
            return Ok(());
        }
        if self.cfg.format == Format::Sflow {
            let n = frame.len().min(encode::SFLOW_HEADER_BYTES);
            self.samples.push(PacketSample {
                header: frame[..n].to_vec(),
                frame_len: u32::try_from(frame.len()).unwrap_or(u32::MAX),
                pool: self.pool,
            });
            self.sum.bytes += u64::from(ip_len);
            if self.samples.len() >= SAMPLES_PER_DATAGRAM {
                self.flush(ts_ns)?;
            }
        } else {
            self.meter.packet(ts_ns, key, ip_len);
        }
        Ok(())
    }

    /// End of input at `end_ns`: every flow is exported; the capture is flushed.
    pub fn finish(mut self, end_ns: i64) -> io::Result<ExportSummary> {
        self.meter.finish();
        self.flush(end_ns)?;
        self.sum.file_bytes = self.out.bytes;
        self.out.into_inner()?;
        Ok(self.sum)
    }

    fn header(&self, ts_ns: i64, sequence: u32) -> Header {
        Header {
            export_ns: ts_ns,
            boot_ns: self.boot_ns.unwrap_or(ts_ns),
            sequence,
            domain: 1,
            sampling: self.cfg.sampling,
        }
    }

    /// Send what is pending: whole datagrams, and the rest too (once a second and at the end).
    fn flush(&mut self, ts_ns: i64) -> io::Result<()> {
        if self.cfg.format == Format::Sflow {
            for chunk in std::mem::take(&mut self.samples).chunks(SAMPLES_PER_DATAGRAM) {
                let h = self.header(ts_ns, seq(self.sum.datagrams));
                encode::sflow(&h, self.cfg.exporter.ip().octets(), chunk, &mut self.buf);
                self.sum.records += chunk.len() as u64;
                self.send(ts_ns)?;
            }
            return Ok(());
        }
        let drained: Vec<Record> = self.meter.drain().collect();
        self.records.extend(drained);
        let per = match self.cfg.format {
            Format::Netflow5 => encode::V5_MAX_RECORDS,
            _ => RECORDS_PER_DATAGRAM,
        };
        let mut pending = std::mem::take(&mut self.records);
        if self.cfg.format == Format::Netflow5 {
            // v5 carries IPv4 only.
            pending.retain(|r| r.src.is_ipv4() && r.dst.is_ipv4());
        }
        for chunk in pending.chunks(per) {
            let templates = self
                .last_template_ns
                .is_none_or(|t| ts_ns - t >= TEMPLATE_EVERY_NS);
            match self.cfg.format {
                Format::Netflow5 => {
                    let h = self.header(ts_ns, seq(self.sum.records));
                    encode::netflow5(&h, chunk, &mut self.buf);
                }
                Format::Netflow9 => {
                    let h = self.header(ts_ns, seq(self.sum.datagrams));
                    encode::netflow9(&h, chunk, templates, &mut self.buf);
                }
                _ => {
                    let h = self.header(ts_ns, seq(self.sum.records));
                    encode::ipfix(&h, chunk, templates, &mut self.buf);
                }
            }
            if templates && self.cfg.format != Format::Netflow5 {
                self.last_template_ns = Some(ts_ns);
            }
            self.sum.records += chunk.len() as u64;
            self.sum.bytes += chunk.iter().map(|r| r.bytes).sum::<u64>();
            self.send(ts_ns)?;
        }
        Ok(())
    }

    fn send(&mut self, ts_ns: i64) -> io::Result<()> {
        self.out.write(ts_ns, &self.buf)?;
        if let Some(tee) = self.tee.as_mut() {
            tee(ts_ns, &self.buf)?;
        }
        self.sum.datagrams += 1;
        Ok(())
    }
}

/// A sequence number: the count wraps at 32 bits on the wire.
fn seq(n: u64) -> u32 {
    (n & 0xffff_ffff) as u32
}
