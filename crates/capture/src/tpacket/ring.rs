//! [`PacketRing`]: one packet socket with its memory-mapped `TPACKET_V3` ring, how it is opened,
//! and the walk over the blocks the kernel hands over.
//!
//! The system calls are in `socket.rs` and the mapping in `mapping.rs`; the unsafe part here is
//! the view of a block while it belongs to user space. Everything read from a block goes through
//! the checked walker of [`super::block`].

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;

use burstwatch_wire::LinkType;

use super::block::{self, BadBlock};
use super::mapping::Mapping;
use super::socket::{self, bind, hatype, join_fanout, set_opt};

/// `ETH_P_ALL` in network byte order, as `sll_protocol` wants it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();
/// Frame size given to the kernel: a `TPACKET_V3` ring packs packets of any size into its
/// blocks, but the request must still divide each block into frames of this size.
const FRAME_SIZE: u32 = 2048;

/// How to open a ring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingConfig {
    /// Interface name.
    pub interface: String,
    /// Bytes per block (a multiple of the page size).
    pub block_bytes: u32,
    /// Blocks in the ring.
    pub blocks: u32,
    /// The kernel hands a block over after this many milliseconds even if it is not full.
    pub block_timeout_ms: u32,
    /// Bytes kept per packet.
    pub snaplen: u32,
    /// Put the interface in promiscuous mode (for as long as the socket is open).
    pub promiscuous: bool,
    /// libpcap filter expression run in the kernel; empty for none.
    pub filter: String,
    /// Join a fanout group, sharing the interface's packets with the other rings in it.
    pub fanout: Option<Fanout>,
}

/// A `PACKET_FANOUT` group: the kernel hands each packet to one ring of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fanout {
    /// Group id (one per interface and process; every ring of the group passes the same).
    pub group: u16,
    /// Home prefixes for [`super::steer`]'s program (`PACKET_FANOUT_CBPF`): each subscriber's
    /// traffic, both directions, stays on one ring. `None`: the kernel's symmetric flow hash
    /// (`PACKET_FANOUT_HASH`), which keeps each connection, not each subscriber, on one ring.
    pub steer: Option<Vec<super::steer::HomePrefix>>,
}

/// Counters of a ring, monotonic over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Packets handed to the reader.
    pub delivered: u64,
    /// Packets that passed the filter, as the kernel counts them (`tp_packets`, drops included).
    pub kernel_packets: u64,
    /// Packets the kernel dropped because no block was free (`tp_drops`).
    pub kernel_drops: u64,
    /// Times the ring filled up and the kernel froze its queue (`tp_freeze_q_cnt`).
    pub freezes: u64,
    /// Blocks the kernel marked `TP_STATUS_LOSING` (drops happened before they were handed over).
    pub losing_blocks: u64,
    /// Packets lost because their block could not be walked (an offset outside the block).
    pub unreadable: u64,
    /// Frames this host sent on a loopback interface, skipped (they come back as received).
    pub outgoing_skipped: u64,
}

/// A ring could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// A system call failed.
    #[error("{0}: {1}")]
    Os(&'static str, #[source] io::Error),
    /// The settings or the interface do not allow a ring.
    #[error("{0}")]
    Invalid(String),
}

/// Where the reader is in the current block (which belongs to user space while this exists).
#[derive(Debug, Clone, Copy)]
struct Walk {
    off: usize,
    left: u32,
}

/// One packet read from the ring, borrowed until the next call.
#[derive(Debug, Clone, Copy)]
pub struct RingPacket<'a> {
    /// Captured bytes (with the VLAN tag put back if the kernel took it off).
    pub data: &'a [u8],
    /// Length on the wire.
    pub wire_len: u32,
    /// Kernel timestamp, ns since the epoch.
    pub ts_ns: i64,
}

/// One AF_PACKET socket bound to one interface with its `TPACKET_V3` receive ring.
pub struct PacketRing {
    // Field order: the mapping goes before the socket is closed.
    map: Mapping,
    fd: OwnedFd,
    link_type: LinkType,
    ethernet: bool,
    loopback: bool,
    cur: usize,
    walk: Option<Walk>,
    vlan_buf: Vec<u8>,
    stats: RingStats,
    last_bad: Option<BadBlock>,
}

impl std::fmt::Debug for PacketRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketRing")
            .field("fd", &self.fd)
            .field("link_type", &self.link_type)
            .field("blocks", &self.map.blocks)
            .field("block_bytes", &self.map.block_bytes)
            .field("stats", &self.stats)
            .finish()
    }
}

impl PacketRing {
    /// Open a socket on `cfg.interface`, attach the filter, set up and map the ring, then start
    /// receiving. Needs CAP_NET_RAW.
    pub fn open(cfg: &RingConfig) -> Result<PacketRing, RingError> {
        // SAFETY: sysconf has no memory effects.
        #[allow(unsafe_code)]
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let block_bytes = cfg.block_bytes as usize;
        if block_bytes < page || block_bytes % page != 0 || cfg.block_bytes < FRAME_SIZE {
            return Err(RingError::Invalid(format!(
                "ring block of {} bytes: must be a multiple of the page size ({page})",
                cfg.block_bytes
            )));
        }
        let blocks = cfg.blocks as usize;
        let len = block_bytes
            .checked_mul(blocks)
            .filter(|_| blocks > 0)
            .ok_or_else(|| RingError::Invalid(format!("ring of {blocks} blocks")))?;
        let frame_nr = (cfg.block_bytes / FRAME_SIZE)
            .checked_mul(cfg.blocks)
            .ok_or_else(|| RingError::Invalid(format!("ring of {blocks} blocks: too large")))?;

        let ifindex = socket::ifindex(&cfg.interface)?;

        // Protocol 0: the socket receives nothing until the final bind, so no packet reaches it
        // before the filter and the ring are in place.
        let fd = socket::packet_socket()?;
        bind(&fd, ifindex, 0)?;
        let hatype = hatype(&fd)?;
        let (link_type, ethernet, loopback) = match hatype {
            libc::ARPHRD_ETHER => (LinkType::ETHERNET, true, false),
            libc::ARPHRD_LOOPBACK => (LinkType::ETHERNET, true, true),
            libc::ARPHRD_NONE => (LinkType::RAW_12, false, false),
            other => {
                return Err(RingError::Invalid(format!(
                    "hardware type {other} is not supported by the afpacket backend; use backend = \"pcap\""
                )))
            }
        };

        let program = crate::filter::kernel_program(&cfg.filter, link_type, cfg.snaplen)
            .map_err(|e| RingError::Invalid(e.to_string()))?;
        let fprog = libc::sock_fprog {
            len: u16::try_from(program.len())
                .map_err(|_| RingError::Invalid("filter program too long".into()))?,
            filter: program.as_ptr().cast_mut(),
        };
        set_opt(
            &fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            "SO_ATTACH_FILTER",
            &fprog,
        )?;
        set_opt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            "PACKET_VERSION",
            &(libc::tpacket_versions::TPACKET_V3 as libc::c_int),
        )?;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_bytes,
            tp_block_nr: cfg.blocks,
            tp_frame_size: FRAME_SIZE,
            tp_frame_nr: frame_nr,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_opt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            "PACKET_RX_RING",
            &req,
        )?;
        let map = Mapping::new(&fd, len, block_bytes, blocks)?;
        if cfg.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            set_opt(
                &fd,
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                "PACKET_ADD_MEMBERSHIP",
                &mreq,
            )?;
        }
        bind(&fd, ifindex, ETH_P_ALL_BE)?;
        if let Some(f) = &cfg.fanout {
            join_fanout(&fd, f)?;
        }
        Ok(PacketRing {
            map,
            fd,
            link_type,
            ethernet,
            loopback,
            cur: 0,
            walk: None,
            vlan_buf: Vec::with_capacity(cfg.snaplen as usize + 4),
            stats: RingStats::default(),
            last_bad: None,
        })
    }

    /// Link type of the frames.
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// The next packet, waiting up to `timeout_ms` for the kernel to hand over a block;
    /// `Ok(None)` when none came.
    pub fn next_packet(&mut self, timeout_ms: i32) -> Result<Option<RingPacket<'_>>, RingError> {
        let Some(frame) = self.next_frame(timeout_ms)? else {
            return Ok(None);
        };
        // SAFETY: `next_frame` returned a packet of block `cur`, which stays in user space until
        // the next call (`release`), and this view is tied to the borrow of `self`.
        #[allow(unsafe_code)]
        let blk = unsafe { self.map.block(self.cur) };
        let data = blk.get(frame.data.clone()).unwrap_or_default();
        Ok(Some(match frame.vlan {
            Some(tag) if self.ethernet => {
                block::restore_vlan(data, tag, &mut self.vlan_buf);
                RingPacket {
                    data: &self.vlan_buf,
                    wire_len: frame.wire_len.saturating_add(4),
                    ts_ns: frame.ts_ns,
                }
            }
            _ => RingPacket {
                data,
                wire_len: frame.wire_len,
                ts_ns: frame.ts_ns,
            },
        }))
    }

    /// The next packet's place in block `cur`, handing finished blocks back on the way.
    fn next_frame(&mut self, timeout_ms: i32) -> Result<Option<block::Frame>, RingError> {
        let mut polled = false;
        loop {
            let Some(walk) = self.walk else {
                let status = self.map.status(self.cur).load(Ordering::Acquire);
                if status & block::TP_STATUS_USER != 0 {
                    if status & block::TP_STATUS_LOSING != 0 {
                        self.stats.losing_blocks += 1;
                    }
                    // SAFETY: the block's status says it belongs to user space (acquire load
                    // above); it is handed back only in `release`, after this view is gone.
                    #[allow(unsafe_code)]
                    let blk = unsafe { self.map.block(self.cur) };
                    self.walk = Some(match block::block_header(blk) {
                        Ok(h) => Walk {
                            off: h.first,
                            left: h.num_pkts,
                        },
                        Err(e) => {
                            self.last_bad = Some(e);
                            Walk { off: 0, left: 0 }
                        }
                    });
                    continue;
                }
                if polled {
                    return Ok(None);
                }
                socket::wait(&self.fd, timeout_ms)?;
                polled = true;
                continue;
            };
            if walk.left == 0 {
                self.release();
                continue;
            }
            // SAFETY: `walk` exists only while block `cur` belongs to user space (see above).
            #[allow(unsafe_code)]
            let blk = unsafe { self.map.block(self.cur) };
            let frame = match block::frame_at(blk, walk.off, walk.left > 1) {
                Ok(f) => f,
                Err(e) => {
                    // The rest of the block cannot be found: count it as lost.
                    self.stats.unreadable += u64::from(walk.left);
                    self.last_bad = Some(e);
                    self.walk = Some(Walk { off: 0, left: 0 });
                    continue;
                }
            };
            self.walk = Some(Walk {
                off: frame.next.unwrap_or(0),
                left: walk.left - 1,
            });
            if self.loopback && frame.pkttype == Some(block::PACKET_OUTGOING) {
                self.stats.outgoing_skipped += 1;
                continue;
            }
            self.stats.delivered += 1;
            return Ok(Some(frame));
        }
    }

    /// Hand the current block back to the kernel and move to the next.
    fn release(&mut self) {
        self.walk = None;
        self.map
            .status(self.cur)
            .store(block::TP_STATUS_KERNEL, Ordering::Release);
        self.cur = (self.cur + 1) % self.map.blocks;
    }

    /// Counters so far; reads (and so resets) the kernel's `PACKET_STATISTICS`, adding them up.
    pub fn stats(&mut self) -> RingStats {
        if let Some(s) = socket::statistics(&self.fd) {
            self.stats.kernel_packets += u64::from(s.tp_packets);
            self.stats.kernel_drops += u64::from(s.tp_drops);
            self.stats.freezes += u64::from(s.tp_freeze_q_cnt);
        }
        self.stats
    }

    /// The last malformed block seen, as text (for a log line).
    pub fn last_bad_block(&self) -> Option<String> {
        self.last_bad.map(|b| format!("{b:?}"))
    }
}
