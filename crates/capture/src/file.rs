//! [`CaptureFile`]: one pcap or pcapng file, plain or gzip-compressed.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use crate::buffer::Buffer;
use crate::pcap::{Magic, PcapReader};
use crate::pcapng::{PcapNgReader, SHB};
use crate::{LinkType, Packet, ReadError, ReadErrorKind};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A fault found by a format walker: where and what (the file adds its path).
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) offset: u64,
    pub(crate) reason: ReadErrorKind,
}

impl Fault {
    pub(crate) fn new(offset: u64, reason: ReadErrorKind) -> Fault {
        Fault { offset, reason }
    }

    pub(crate) fn io(offset: u64, e: io::Error) -> Fault {
        Fault {
            offset,
            reason: ReadErrorKind::Io(e),
        }
    }

    /// Fill `buf` with at least `n` bytes from the cursor (the item at `offset` that needs
    /// them); an I/O error, or fewer bytes before the end of the input, is a fault there.
    pub(crate) fn fill(buf: &mut Buffer, offset: u64, n: usize) -> Result<(), Fault> {
        let have = buf.fill(n).map_err(|e| Fault::io(offset, e))?;
        if have < n {
            return Err(Fault::new(
                offset,
                ReadErrorKind::Truncated {
                    needed: n as u64,
                    have: have as u64,
                },
            ));
        }
        Ok(())
    }
}

/// A packet located in a reader's window: valid until that reader moves again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketRef {
    pub(crate) ts_ns: i64,
    pub(crate) link_type: LinkType,
    /// Index of the first captured byte in the buffer's window.
    pub(crate) start: usize,
    pub(crate) len: u32,
    pub(crate) wire_len: u32,
    pub(crate) interface: u32,
}

/// The container format of a capture file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Classic libpcap format (including the Kuznetzov "modified" variant).
    Pcap {
        /// Nanosecond timestamps (magic a1b23c4d) rather than microseconds.
        nanos: bool,
        /// Big-endian file.
        big_endian: bool,
    },
    /// pcapng (each section has its own byte order).
    PcapNg,
}

enum Walker {
    Pcap(PcapReader),
    PcapNg(PcapNgReader),
}

/// Counts the bytes read from the underlying file (compressed bytes, for gzip).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// One capture file: classic pcap or pcapng, plain or gzip-compressed (recognised by its magic
/// bytes, not by its name).
///
/// Input goes through a bounded buffer; packets are handed out in place, never copied one by
/// one.
pub struct CaptureFile {
    path: PathBuf,
    buf: Buffer,
    walker: Walker,
    gzip: bool,
    /// Bytes read from the file, for streamed input.
    read_count: Option<Arc<AtomicU64>>,
    failed: bool,
    /// A regular file opened by path: it can be parked and reopened ([`CaptureFile::park`]).
    reopenable: bool,
    /// Parked: the file is closed and the next record starts at this stream offset.
    parked_at: Option<u64>,
}

impl std::fmt::Debug for CaptureFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureFile")
            .field("path", &self.path)
            .field("format", &self.format())
            .field("gzip", &self.gzip)
            .field("offset", &self.buf.offset())
            .finish()
    }
}

/// Opens a streaming buffer over `file`, decompressing if it starts with the gzip magic.
fn stream<R: Read + Send + 'static>(src: R, count: &Arc<AtomicU64>) -> io::Result<(Buffer, bool)> {
    let mut counted = Counting {
        inner: src,
        count: Arc::clone(count),
    };
    let mut prefix = [0u8; 2];
    let mut got = 0;
    while got < prefix.len() {
        match counted.read(&mut prefix[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let src = io::Cursor::new(prefix[..got].to_vec()).chain(counted);
    if prefix[..got] == GZIP_MAGIC {
        Ok((Buffer::stream(Box::new(MultiGzDecoder::new(src))), true))
    } else {
        Ok((Buffer::stream(Box::new(src)), false))
    }
}

impl CaptureFile {
    /// Opens `path` and reads its file header (the first section header, for pcapng).
    ///
    /// The file is read through a bounded buffer (256 KiB, growing only for a single larger
    /// record or block), which is safe against files truncated or rewritten while read.
    pub fn open(path: &Path) -> Result<CaptureFile, ReadError> {
        let file = File::open(path).map_err(|e| ReadError::new(path, 0, ReadErrorKind::Io(e)))?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let mut f = CaptureFile::from_reader(path, file)?;
        f.reopenable = regular;
        Ok(f)
    }

    /// Reads standard input as a capture stream, front to back (named `-` in errors).
    pub fn stdin() -> Result<CaptureFile, ReadError> {
        CaptureFile::from_reader(Path::new(crate::STDIN), io::stdin())
    }

    /// Whether [`CaptureFile::park`] can release this file: a regular file opened by path
    /// (not a stream).
    pub(crate) fn is_reopenable(&self) -> bool {
        self.reopenable
    }

    /// Releases the file descriptor and the buffer (which invalidates the last packet),
    /// keeping what the format walker knows (link types, byte order, time resolution) and where
    /// the next record starts. The next [`CaptureFile::advance`] reopens the file there.
    /// Nothing happens to a file that cannot be reopened.
    pub(crate) fn park(&mut self) {
        if self.reopenable && self.parked_at.is_none() && !self.failed {
            self.parked_at = Some(self.buf.offset());
            self.buf = Buffer::stream(Box::new(io::empty()));
        }
    }

    /// Reopens a parked file at stream offset `offset`, the record boundary where it stopped.
    #[cold]
    fn resume(&mut self, offset: u64) -> Result<(), ReadError> {
        use std::io::Seek as _;
        let err = |o, e| ReadError::new(&self.path, o, ReadErrorKind::Io(e));
        let mut file = File::open(&self.path).map_err(|e| err(offset, e))?;
        let src: Box<dyn Read + Send> = match &self.read_count {
            Some(count) if self.gzip => {
                // Gzip cannot seek: decompress again up to the offset, without counting twice.
                let before = count.load(Ordering::Relaxed);
                let counted = Counting {
                    inner: file,
                    count: Arc::clone(count),
                };
                let mut z = MultiGzDecoder::new(counted);
                let skipped =
                    io::copy(&mut (&mut z).take(offset), &mut io::sink()).map_err(|e| {
                        ReadError::new(&self.path, offset, ReadErrorKind::Gzip(e.to_string()))
                    })?;
                count.store(before, Ordering::Relaxed);
                if skipped < offset {
                    return Err(err(offset, io::ErrorKind::UnexpectedEof.into()));
                }
                Box::new(z)
            }
            _ => {
                file.seek(io::SeekFrom::Start(offset))
                    .map_err(|e| err(offset, e))?;
                Box::new(file)
            }
        };
        self.buf = Buffer::stream_at(src, offset);
        Ok(())
    }

    /// Opens a byte range of a plain classic pcap file: its file header, then the records
    /// from byte `start` to byte `end` (exclusive; `u64::MAX` for the end of the file). Both
    /// must be record boundaries, as a [`crate::FileIndex`] of the file gives them. Offsets in
    /// errors count from the header followed by the range, not from the file's start.
    pub fn open_range(path: &Path, start: u64, end: u64) -> Result<CaptureFile, ReadError> {
        use std::io::Seek as _;
        let err = |offset, reason| ReadError::new(path, offset, reason);
        let mut file = File::open(path).map_err(|e| err(0, ReadErrorKind::Io(e)))?;
        let mut header = [0u8; crate::pcap::HEADER_LEN];
        file.read_exact(&mut header)
            .map_err(|e| err(0, ReadErrorKind::Io(e)))?;
        if Magic::detect([header[0], header[1], header[2], header[3]]).is_none() {
            return Err(err(
                0,
                ReadErrorKind::BadHeader("a byte range needs a classic pcap file".into()),
            ));
        }
        let start = start.max(header.len() as u64);
        file.seek(io::SeekFrom::Start(start))
            .map_err(|e| err(start, ReadErrorKind::Io(e)))?;
        let body = file.take(end.saturating_sub(start));
        CaptureFile::from_reader(path, io::Cursor::new(header).chain(body))
    }

    /// Whether a [`crate::FileIndex`] of this file can later serve
    /// [`CaptureFile::open_range`]: a plain classic pcap file.
    pub fn is_indexable(&self) -> bool {
        !self.gzip && matches!(self.walker, Walker::Pcap(_))
    }

    /// Byte offset in the (decompressed) stream of the next record to be read.
    #[inline]
    pub(crate) fn stream_offset(&self) -> u64 {
        self.parked_at.unwrap_or_else(|| self.buf.offset())
    }

    /// Reads a capture from any byte stream (stdin, a socket...), plain or gzip-compressed,
    /// through a bounded buffer. `name` is used in errors.
    pub fn from_reader<R: Read + Send + 'static>(
        name: &Path,
        reader: R,
    ) -> Result<CaptureFile, ReadError> {
        let count = Arc::new(AtomicU64::new(0));
        let (buf, gzip) =
            stream(reader, &count).map_err(|e| ReadError::new(name, 0, ReadErrorKind::Io(e)))?;
        CaptureFile::start(name, buf, gzip, Some(count))
    }

    /// Recognises the format and reads the file header.
    fn start(
        path: &Path,
        mut buf: Buffer,
        gzip: bool,
        read_count: Option<Arc<AtomicU64>>,
    ) -> Result<CaptureFile, ReadError> {
        let err = |offset, reason| ReadError::new(path, offset, reason);
        let gz_err = |f: Fault| match f.reason {
            ReadErrorKind::Io(e) if gzip => err(f.offset, ReadErrorKind::Gzip(e.to_string())),
            r => err(f.offset, r),
        };
        let have = buf.fill(4).map_err(|e| gz_err(Fault::io(0, e)))?;
        if have == 0 {
            return Err(err(0, ReadErrorKind::Empty));
        }
        if have < 4 {
            return Err(err(
                0,
                ReadErrorKind::Truncated {
                    needed: 4,
                    have: have as u64,
                },
            ));
        }
        let w = buf.window();
        let p = buf.pos();
        let magic = [w[p], w[p + 1], w[p + 2], w[p + 3]];
        let walker = if let Some(m) = Magic::detect(magic) {
            Walker::Pcap(PcapReader::open(&mut buf, m).map_err(gz_err)?)
        } else if u32::from_le_bytes(magic) == SHB {
            Walker::PcapNg(PcapNgReader::open(&mut buf).map_err(gz_err)?)
        } else {
            return Err(err(0, ReadErrorKind::NotACapture));
        };
        Ok(CaptureFile {
            path: path.to_path_buf(),
            buf,
            walker,
            gzip,
            read_count,
            failed: false,
            reopenable: false,
            parked_at: None,
        })
    }

    /// Reads the next packet. The packet borrows the reader's buffer until the next call.
    ///
    /// Returns `Ok(None)` at the end of the file. After an error, every further call returns
    /// `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, ReadError> {
        Ok(self.advance()?.map(|r| self.packet(&r)))
    }

    /// Moves to the next packet without borrowing it (see [`CaptureFile::packet`]).
    #[inline]
    pub(crate) fn advance(&mut self) -> Result<Option<PacketRef>, ReadError> {
        if self.failed {
            return Ok(None);
        }
        if let Some(at) = self.parked_at.take() {
            if let Err(e) = self.resume(at) {
                self.failed = true;
                return Err(e);
            }
        }
        let r = match &mut self.walker {
            Walker::Pcap(w) => w.next(&mut self.buf),
            Walker::PcapNg(w) => w.next(&mut self.buf),
        };
        r.map_err(|f| {
            self.failed = true;
            let reason = match f.reason {
                ReadErrorKind::Io(e) if self.gzip => ReadErrorKind::Gzip(e.to_string()),
                r => r,
            };
            ReadError::new(&self.path, f.offset, reason)
        })
    }

    /// The packet `r` returned by the latest [`CaptureFile::advance`].
    #[inline]
    pub(crate) fn packet(&self, r: &PacketRef) -> Packet<'_> {
        let w = self.buf.window();
        let data = w.get(r.start..r.start + r.len as usize).unwrap_or_default();
        Packet {
            ts_ns: r.ts_ns,
            link_type: r.link_type,
            data,
            wire_len: r.wire_len,
            interface: r.interface,
        }
    }

    /// The path, as given to [`CaptureFile::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of the file read so far (compressed bytes for gzip), for progress reports.
    pub fn bytes_consumed(&self) -> u64 {
        match &self.read_count {
            Some(c) if self.gzip => c.load(Ordering::Relaxed),
            _ => self.stream_offset(),
        }
    }

    /// The container format (of the decompressed stream, for gzip).
    pub fn format(&self) -> Format {
        match &self.walker {
            Walker::Pcap(w) => {
                let m = w.magic();
                Format::Pcap {
                    nanos: m.nanos,
                    big_endian: m.big_endian,
                }
            }
            Walker::PcapNg(_) => Format::PcapNg,
        }
    }

    /// Whether the file is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// For pcapng: whether the current section is big-endian. For pcap: the file's byte order.
    pub fn big_endian(&self) -> bool {
        match &self.walker {
            Walker::Pcap(w) => w.magic().big_endian,
            Walker::PcapNg(w) => w.big_endian(),
        }
    }
}
