//! Live capture from a network interface: libpcap (BPF filter, kernel buffer, drop counters)
//! or an AF_PACKET `TPACKET_V3` ring ([`crate::tpacket`]: the same BPF filter in the kernel,
//! kernel timestamps, drops from `PACKET_STATISTICS`).
//!
//! Both are polled without blocking forever: [`LiveCapture::next_packet`] returns `Ok(None)`
//! when nothing arrived within about `poll_ms`, so the caller can check for shutdown, publish
//! counters and move idle time forward.

use std::time::Duration;

use crate::tpacket::{Fanout, PacketRing, RingConfig};
use crate::{LinkType, Packet};

/// Which library reads the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveBackend {
    /// libpcap.
    Pcap,
    /// AF_PACKET with a memory-mapped `TPACKET_V3` ring.
    AfPacket,
}

/// How to open an interface.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Interface name.
    pub interface: String,
    /// Library.
    pub backend: LiveBackend,
    /// Bytes kept per packet.
    pub snaplen: u32,
    /// Kernel buffer in bytes (pcap backend).
    pub buffer_bytes: u32,
    /// Bytes per ring block (afpacket backend; a multiple of the page size).
    pub ring_block_bytes: u32,
    /// Blocks in the ring (afpacket backend).
    pub ring_blocks: u32,
    /// A block is handed over after this long even if not full (afpacket backend).
    pub ring_block_timeout_ms: u32,
    /// Promiscuous mode.
    pub promiscuous: bool,
    /// Deliver packets at once (pcap backend; the ring hands blocks over after
    /// `ring_block_timeout_ms`).
    pub immediate: bool,
    /// libpcap filter expression, run in the kernel; empty for none.
    pub filter: String,
    /// Longest wait inside one [`LiveCapture::next_packet`] call.
    pub poll_ms: u32,
    /// Share the interface with the other captures of this fanout group (afpacket backend).
    pub fanout: Option<Fanout>,
}

/// Packets seen and lost, as the capture library reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets handed to the application.
    pub received: u64,
    /// Dropped by the kernel for lack of buffer space (libpcap `ps_drop`, AF_PACKET
    /// `tp_drops`), plus packets of ring blocks that could not be walked (`unreadable`).
    pub dropped: u64,
    /// Dropped by the interface or driver (libpcap `ps_ifdrop`; AF_PACKET: 0).
    pub if_dropped: u64,
    /// Whether the backend reports drops at all.
    pub drops_known: bool,
    /// AF_PACKET: packets lost in ring blocks whose offsets lay outside the block (included in
    /// `dropped`).
    pub unreadable: u64,
    /// AF_PACKET: times the ring was full (`tp_freeze_q_cnt`).
    pub ring_full: u64,
    /// AF_PACKET: packets the kernel put in the ring that were not read yet (at close: never).
    pub unread: u64,
}

/// A live capture could not be opened or read.
#[derive(Debug, thiserror::Error)]
#[error("{interface}: {message}")]
pub struct LiveError {
    /// Interface name.
    pub interface: String,
    /// What went wrong.
    pub message: String,
}

enum Inner {
    Pcap(pcap::Capture<pcap::Active>),
    AfPacket(Box<PacketRing>),
}

/// An open live capture.
pub struct LiveCapture {
    name: String,
    inner: Inner,
    link_type: LinkType,
    poll_ms: u32,
    received: u64,
    /// libpcap's counters are 32-bit and wrap; these extend them.
    last_raw: (u32, u32, u32),
    wide: (u64, u64, u64),
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("interface", &self.name)
            .field("link_type", &self.link_type)
            .finish()
    }
}

impl LiveCapture {
    /// Open the interface. Needs CAP_NET_RAW (and CAP_NET_ADMIN for promiscuous mode on some
    /// systems).
    pub fn open(cfg: &LiveConfig) -> Result<LiveCapture, LiveError> {
        let err = |message: String| LiveError {
            interface: cfg.interface.clone(),
            message,
        };
        let poll = Duration::from_millis(u64::from(cfg.poll_ms.max(1)));
        let (inner, link_type) =
            match cfg.backend {
                LiveBackend::Pcap if cfg.fanout.is_some() => return Err(err(
                    "fanout (several capture threads on one interface) needs the afpacket backend"
                        .into(),
                )),
                LiveBackend::Pcap => {
                    let snaplen =
                        i32::try_from(cfg.snaplen.clamp(64, crate::MAX_RECORD)).unwrap_or(256);
                    let buffer = i32::try_from(cfg.buffer_bytes).unwrap_or(i32::MAX);
                    let inactive = pcap::Capture::from_device(cfg.interface.as_str())
                        .map_err(|e| err(e.to_string()))?
                        .snaplen(snaplen)
                        .buffer_size(buffer)
                        .promisc(cfg.promiscuous)
                        .immediate_mode(cfg.immediate)
                        .timeout(i32::try_from(poll.as_millis()).unwrap_or(100))
                        .precision(pcap::Precision::Nano);
                    let mut cap = inactive.open().map_err(|e| err(e.to_string()))?;
                    if !cfg.filter.is_empty() {
                        cap.filter(&cfg.filter, true)
                            .map_err(|e| err(format!("filter {:?}: {e}", cfg.filter)))?;
                    }
                    // Idle interfaces can keep a blocking read waiting forever: poll instead.
                    let cap = cap.setnonblock().map_err(|e| err(e.to_string()))?;
                    let lt = LinkType(cap.get_datalink().0 as u32);
                    (Inner::Pcap(cap), lt)
                }
                LiveBackend::AfPacket => {
                    let ring = PacketRing::open(&RingConfig {
                        interface: cfg.interface.clone(),
                        block_bytes: cfg.ring_block_bytes,
                        blocks: cfg.ring_blocks,
                        block_timeout_ms: cfg.ring_block_timeout_ms,
                        snaplen: cfg.snaplen.clamp(64, crate::MAX_RECORD),
                        promiscuous: cfg.promiscuous,
                        filter: cfg.filter.clone(),
                        fanout: cfg.fanout.clone(),
                    })
                    .map_err(|e| err(e.to_string()))?;
                    let lt = ring.link_type();
                    (Inner::AfPacket(Box::new(ring)), lt)
                }
            };
        Ok(LiveCapture {
            name: cfg.interface.clone(),
            inner,
            link_type,
            poll_ms: cfg.poll_ms.max(1),
            received: 0,
            last_raw: (0, 0, 0),
            wide: (0, 0, 0),
        })
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.name
    }

    /// The next packet, or `Ok(None)` when none was waiting (after a pause of at most the poll
    /// interval, so a caller looping on it does not spin).
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, LiveError> {
        let link_type = self.link_type;
        match &mut self.inner {
            Inner::Pcap(cap) => match cap.next_packet() {
                Ok(p) => {
                    self.received += 1;
                    let ts = &p.header.ts;
                    // Nanosecond precision was requested: tv_usec holds nanoseconds.
                    #[allow(clippy::useless_conversion)]
                    // time_t/suseconds_t widths vary by platform
                    let ts_ns = i64::from(ts.tv_sec)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(i64::from(ts.tv_usec));
                    Ok(Some(Packet {
                        ts_ns,
                        link_type,
                        data: p.data,
                        wire_len: p.header.len,
                        interface: 0,
                    }))
                }
                Err(pcap::Error::TimeoutExpired) | Err(pcap::Error::NoMorePackets) => {
                    // Non-blocking and empty: wait a little (packets queue in the kernel buffer).
                    std::thread::sleep(Duration::from_millis(1));
                    Ok(None)
                }
                Err(e) => Err(LiveError {
                    interface: self.name.clone(),
                    message: e.to_string(),
                }),
            },
            Inner::AfPacket(ring) => {
                let timeout = i32::try_from(self.poll_ms).unwrap_or(100);
                match ring.next_packet(timeout) {
                    Ok(Some(p)) => {
                        self.received += 1;
                        Ok(Some(Packet {
                            ts_ns: p.ts_ns,
                            link_type,
                            data: p.data,
                            wire_len: p.wire_len,
                            interface: 0,
                        }))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(LiveError {
                        interface: self.name.clone(),
                        message: e.to_string(),
                    }),
                }
            }
        }
    }

    /// Counters so far (monotonic: libpcap's 32-bit counters are widened across wraps).
    pub fn stats(&mut self) -> LiveStats {
        match &mut self.inner {
            Inner::Pcap(cap) => {
                if let Ok(s) = cap.stats() {
                    let raw = (s.received, s.dropped, s.if_dropped);
                    let step = |old: u32, new: u32| u64::from(new.wrapping_sub(old));
                    self.wide.0 += step(self.last_raw.0, raw.0);
                    self.wide.1 += step(self.last_raw.1, raw.1);
                    self.wide.2 += step(self.last_raw.2, raw.2);
                    self.last_raw = raw;
                }
                LiveStats {
                    received: self.received,
                    dropped: self.wide.1,
                    if_dropped: self.wide.2,
                    drops_known: true,
                    ..LiveStats::default()
                }
            }
            Inner::AfPacket(ring) => {
                let s = ring.stats();
                LiveStats {
                    received: self.received,
                    dropped: s.kernel_drops + s.unreadable,
                    if_dropped: 0,
                    drops_known: true,
                    unreadable: s.unreadable,
                    ring_full: s.freezes,
                    unread: s.kernel_packets.saturating_sub(
                        s.kernel_drops + s.delivered + s.outgoing_skipped + s.unreadable,
                    ),
                }
            }
        }
    }
}
