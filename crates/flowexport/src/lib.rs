//! # burstwatch-flowexport
//!
//! Flow export from routers as input to the burstwatch engine: NetFlow v5 and v9 (RFC 3954),
//! IPFIX (RFC 7011, with RFC 5103 biflows) and sFlow v5, the protocol detected per datagram.
//! Parsing is done by `netflow_parser` (templates scoped per exporter and observation domain /
//! source id, data sets that come before their template held, bounded, and replayed) and
//! `sflow-parser`; sFlow's sampled packet headers go through the same wire decoder as captured
//! frames.
//!
//! ```text
//!  (arrival, exporter, datagram) ──push──▶ ┌───────────┐ ──pop──▶ Bin (second, 5-tuple,
//!                                          │ Collector │          estimated bytes/packets,
//!                        end of input ───▶ └───────────┘          samples, sampling rate)
//!                                                           └──engine_input──▶ (ts, PacketMeta)
//! ```
//!
//! * Flow records are pro-rated over their own start–end span into one-second bins, never put
//!   at the export instant; sFlow samples are binned at their arrival second.
//! * Counts are multiplied by the sampling rate, taken in this order: the per-exporter
//!   configuration, the record, options data of the exporter's domain, the v5 header
//!   (`& 0x3FFF`), the configured default. A rate of 0 is counted and skipped.
//! * Bins wait [`Config::hold_s`] behind the newest arrival (records come up to an active
//!   timeout late), then leave in time order, sorted within a second.
//! * sFlow counter samples: each agent's generic interface counters, latest per ifIndex
//!   ([`Collector::interfaces`]), for interface metrics.
//! * Templates can be kept across a restart: a [`TemplateStash`] given to
//!   [`Collector::with_templates`] receives every template learned and answers the parser's
//!   misses; the daemon saves and loads it.
//! * IPFIX data records are read by the layout of their template once the parser has decoded
//!   a record of it field for field: a message of such data sets alone skips the parser's
//!   typed field lists (the larger part of the collector's cost); anything else goes through
//!   the parser (see the `layout` module).
//! * Every table is bounded (template sources and templates per source, held data sets, learned
//!   options, bin entries, exporters with counters) and what goes over is counted.
//!
//! The engine is fed one synthetic packet per bin ([`engine_input`]): the bin's estimated
//! bytes as its IP length. Flow records the engine writes from such input therefore count
//! bins, not packets, as their packets.
#![forbid(unsafe_code)]

mod bins;
mod clock;
mod collector;
mod config;
mod counters;
mod interfaces;
mod layout;
mod record;
mod sflow;
mod templates;
mod udp;

pub use bins::{Bin, BinStats, Key, Volume};
pub use collector::Collector;
pub use config::Config;
pub use counters::ExporterStats;
pub use interfaces::{IfCounters, Interface, MAX_INTERFACES};
pub use templates::{SavedTemplate, TemplateStash, MAX_TEMPLATES, MAX_TEMPLATE_BYTES};
pub use udp::{udp_datagram, Datagram};

use burstwatch_wire::PacketMeta;

/// Nanoseconds per second.
pub const NS_PER_SEC: i64 = 1_000_000_000;

/// The UDP ports flow export is usually sent to: NetFlow 2055, 9995, 9996; IPFIX 4739;
/// sFlow 6343.
pub const DEFAULT_PORTS: [u16; 5] = [2055, 4739, 6343, 9995, 9996];

/// The protocol of one export datagram, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// NetFlow v5 (version 5 in the first 16 bits).
    NetflowV5,
    /// NetFlow v9 (version 9).
    NetflowV9,
    /// IPFIX (version 10).
    Ipfix,
    /// sFlow v5 (version 5 in the first 32 bits).
    Sflow,
    /// None of them.
    Unknown,
}

impl Kind {
    /// The protocol of `datagram`.
    pub fn detect(datagram: &[u8]) -> Kind {
        match datagram {
            [0, 0, 0, 5, ..] => Kind::Sflow,
            [0, 5, ..] => Kind::NetflowV5,
            [0, 9, ..] => Kind::NetflowV9,
            [0, 10, ..] => Kind::Ipfix,
            _ => Kind::Unknown,
        }
    }

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NetflowV5 => "netflow5",
            Kind::NetflowV9 => "netflow9",
            Kind::Ipfix => "ipfix",
            Kind::Sflow => "sflow",
            Kind::Unknown => "unknown",
        }
    }
}

/// A setting the collector cannot work with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A sampling rate of 0 in the settings.
    #[error("a sampling rate of 0 (1 means unsampled)")]
    ZeroRate,
    /// The parser refused its settings.
    #[error("flow-export parser settings: {0}")]
    Parser(String),
}

/// Call `f` with the synthetic packets that stand for `bin` in the engine: one at the start of
/// the bin's second carrying its estimated bytes as IP length (several if they exceed 32 bits).
/// The payload length is the bytes less an estimate of the headers (IP and TCP/UDP) of the
/// estimated packets.
pub fn engine_input(bin: &Bin, meta: &mut PacketMeta, mut f: impl FnMut(i64, &PacketMeta)) {
    let k = &bin.key;
    let ts = bin.second.saturating_mul(NS_PER_SEC);
    let ip_hdr: u64 = if k.src.is_ipv4() { 20 } else { 40 };
    let l4_hdr: u64 = match k.proto {
        6 => 20,
        17 => 8,
        _ => 0,
    };
    let mut bytes = bin.volume.bytes;
    let mut payload = bytes.saturating_sub(bin.volume.packets.saturating_mul(ip_hdr + l4_hdr));
    meta.clear();
    meta.src = k.src;
    meta.dst = k.dst;
    meta.proto = k.proto;
    meta.sport = k.sport;
    meta.dport = k.dport;
    meta.sampling = bin.volume.rate;
    loop {
        let part = u32::try_from(bytes).unwrap_or(u32::MAX);
        let part_payload = u32::try_from(payload.min(u64::from(part))).unwrap_or(part);
        meta.ip_len = part;
        meta.payload_len = part_payload;
        f(ts, meta);
        bytes -= u64::from(part);
        payload -= u64::from(part_payload);
        if bytes == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod tests;
