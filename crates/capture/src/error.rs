//! Error types: every problem names the file, the byte offset and the reason.

use std::path::PathBuf;

/// A problem reading one capture file.
///
/// Displays as `PATH: offset N: REASON`, e.g.
/// `dir/x.pcap: offset 1234: record length 4294967295 exceeds the 262144-byte limit`.
#[derive(Debug, thiserror::Error)]
#[error("{}: offset {offset}: {reason}", path.display())]
pub struct ReadError {
    /// The file's path, as it was given to the reader.
    pub path: PathBuf,
    /// Byte offset in the (decompressed) file where the bad structure starts.
    pub offset: u64,
    /// What is wrong.
    pub reason: ReadErrorKind,
}

impl ReadError {
    /// Builds an error for `path` at `offset`.
    pub fn new(path: impl Into<PathBuf>, offset: u64, reason: ReadErrorKind) -> ReadError {
        ReadError {
            path: path.into(),
            offset,
            reason,
        }
    }
}

/// The reason a capture file could not be read (further).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadErrorKind {
    /// The operating system reported an error (open, read, directory listing...).
    #[error("I/O error: {0}")]
    Io(std::io::Error),
    /// The file is empty: not even a capture header.
    #[error("empty file (no capture header)")]
    Empty,
    /// The first bytes are not a pcap, pcapng or gzip magic number.
    #[error("not a pcap or pcapng capture (unknown magic number)")]
    NotACapture,
    /// The file header is invalid (version, reserved fields, section header block...).
    #[error("bad file header: {0}")]
    BadHeader(String),
    /// A record claims more captured bytes than any sane capture holds.
    #[error("record length {len} exceeds the {limit}-byte limit")]
    RecordTooLong {
        /// The captured length claimed by the record (or the block length, for pcapng).
        len: u32,
        /// The limit it exceeds.
        limit: u32,
    },
    /// The file ends in the middle of a record or block.
    #[error("truncated record: needs {needed} bytes, only {have} left in the file")]
    Truncated {
        /// Bytes the record needs, counted from its start (header included).
        needed: u64,
        /// Bytes the file still had from the record's start.
        have: u64,
    },
    /// A pcapng block is malformed (length, interface id, options...).
    #[error("bad pcapng block: {0}")]
    BadBlock(String),
    /// The gzip stream is corrupt or cut short.
    #[error("gzip: {0}")]
    Gzip(String),
}

/// A BPF filter expression that libpcap refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid filter {expr:?}: {message}")]
pub struct FilterError {
    /// The expression as given.
    pub expr: String,
    /// libpcap's error message.
    pub message: String,
}
