//! AF_PACKET capture through a `TPACKET_V3` receive ring (Linux).
//!
//! [`PacketRing`] owns one packet socket bound to one interface and the ring memory-mapped from
//! it: the kernel fills fixed-size blocks with packets and hands a block over when it is full or
//! its timeout expires; the reader walks it in place (`block.rs`) and gives it back. Kernel
//! drops come from `PACKET_STATISTICS` (reset by every read, so accumulated here). One ring per
//! socket: several rings on one interface join a `PACKET_FANOUT` group ([`Fanout`]), each read
//! by its own thread; [`steer`] builds the program that keeps each subscriber on one ring.
//!
//! The socket filter (libpcap's compiler, see `filter.rs`) runs in the kernel before a
//! packet takes ring space; its return value also cuts each packet to the snap length. It sees
//! frames as the kernel holds them, that is without an 802.1Q tag the driver took off; the
//! reader puts such tags back before handing the frame on.

pub(crate) mod block;
mod mapping;
mod ring;
mod socket;
pub mod steer;

pub use ring::{Fanout, PacketRing, RingConfig, RingError, RingPacket, RingStats};
