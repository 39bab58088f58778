//! `simulate --export FORMAT`: the simulated packets shown to a simulated router, whose export
//! datagrams (NetFlow v5/v9, IPFIX, sFlow v5) become the output capture instead of the packets.
//!
//! The simulator writes its pcap into [`ExportTap`], which cuts the stream into records,
//! decodes each frame with the wire decoder and hands it to `burstwatch_sim::export::Exporter`.

use std::io::{self, Write};

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
