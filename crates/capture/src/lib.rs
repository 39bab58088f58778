//! # burstwatch-capture
//!
//! Packet sources. Every source yields the same thing: a capture timestamp, the captured bytes,
//! the on-wire length and the link type ([`Packet`]). Files are read by a pure-Rust reader for
//! classic pcap and pcapng, plain or gzip-compressed; an [`Archive`] merges many files into one
//! stream in timestamp order. [`BpfFilter`] applies a libpcap filter expression to packets from
//! any source.
//!
//! This is the only crate that talks to the operating system about packets (files, libpcap,
//! AF_PACKET rings: [`tpacket`]).
//! It never panics on file contents: damage is reported as a [`ReadError`] that names the file,
//! the byte offset and the reason, after every packet before the fault has been delivered.
//!
//! Files are read through one bounded buffer and packets are handed out in place, never copied one by one; gzip streams are recognised
//! by their magic bytes, not their name. No length field from a file is trusted beyond fixed limits: a record may carry at
//! most [`MAX_RECORD`] captured bytes, a pcapng block at most 16 MiB.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use burstwatch_capture::{Archive, BpfFilter, CaptureFile};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One file.
//! let mut file = CaptureFile::open(Path::new("trace.pcapng.gz"))?;
//! let mut bytes = 0u64;
//! while let Some(pkt) = file.next_packet()? {
//!     bytes += u64::from(pkt.wire_len);
//! }
//!
//! // A rotated archive as one time-ordered stream, filtered.
//! let mut filter = BpfFilter::new("tcp port 80")?;
//! let mut archive = Archive::open(&[PathBuf::from("archive/")]);
//! while let Some(event) = archive.next_event() {
//!     match event {
//!         Ok(pkt) if filter.matches(&pkt) => println!("{} {}", pkt.ts_ns, pkt.data.len()),
//!         Ok(_) => {}
//!         Err(e) => eprintln!("{e}"), // e.g. "archive/b.pcap: offset 1234: truncated record: ..."
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod archive;
mod buffer;
mod endian;
mod error;
mod file;
mod filter;
mod iface;
mod index;
mod listing;
mod live;
mod pcap;
mod pcapng;
pub mod privilege;
pub mod tpacket;

pub use archive::Archive;
pub use burstwatch_wire::LinkType;
pub use error::{FilterError, ReadError, ReadErrorKind};
pub use file::{CaptureFile, Format};
pub use filter::BpfFilter;
pub use iface::{interface_exists, interface_link_type};
pub use index::FileIndex;
pub use listing::{
    file_id, is_stream, sniff, stdin_id, FileId, InputList, SkipReason, CAPTURE_EXTENSIONS, STDIN,
};
pub use live::{LiveBackend, LiveCapture, LiveConfig, LiveError, LiveStats};
pub use tpacket::Fanout;

/// Most captured bytes accepted in one record (larger records are reported as
/// [`ReadErrorKind::RecordTooLong`]; nothing is allocated for them).
pub const MAX_RECORD: u32 = 262_144;

/// One captured packet, borrowed from its reader until the reader's next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Capture time in nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Link type of the interface the packet was captured on.
    pub link_type: LinkType,
    /// The captured bytes (at most [`MAX_RECORD`]).
    pub data: &'a [u8],
    /// Length of the packet on the wire (may exceed `data.len()` when the snaplen cut it).
    pub wire_len: u32,
    /// pcapng interface id within its section; 0 for classic pcap.
    pub interface: u32,
}

#[cfg(test)]
mod tests;
