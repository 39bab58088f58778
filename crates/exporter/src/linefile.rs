//! [`LineFile`]: JSON lines appended to a file (or written to standard output) that holds
//! through write faults and counts what it loses.
//!
//! Lines collect in a buffer that is written out when it holds [`FLUSH_AT`] bytes or when the
//! owner is idle. A failed open or write (no space left, an I/O error, a path that became a
//! directory before a reopen) marks the output *failing*:
//!
//! * the unwritten rest stays in the buffer, and a line cut by a short write goes on where it
//!   stopped once writing works again, so the file never holds a torn line;
//! * new lines wait in the buffer up to [`BACKLOG`] bytes; lines beyond that are dropped and
//!   counted ([`LineFile::dropped`]);
//! * the first error of each kind is logged once per failure, not once per line;
//! * the owner retries every [`RETRY`] ([`LineFile::retry_due`]); the first write that goes
//!   through writes the backlog, logs the recovery with the number of lines dropped, and
//!   clears [`LineFile::failing`].
//!
//! Blocking I/O: the flow-record thread calls it directly, the alert sinks from tokio's
//! blocking pool.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bytes buffered before they are written.
pub const FLUSH_AT: usize = 64 << 10;
/// Bytes of lines held while the output fails; lines beyond are dropped and counted.
pub const BACKLOG: usize = 1 << 20;
/// Time between attempts to write to a failing output.
pub const RETRY: Duration = Duration::from_secs(1);

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// A file, opened for appending (created if missing), re-opened by name on
    /// [`LineFile::reopen`].
    File(PathBuf),
    /// Standard output.
    Stdout,
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dest::File(p) => write!(f, "{}", p.display()),
            Dest::Stdout => f.write_str("standard output"),
        }
    }
}

/// Open `path` for appending, creating it if needed.
pub fn open_append(path: &Path) -> io::Result<std::fs::File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// An error, by kind, for "log the first of each kind".
type ErrKey = (io::ErrorKind, Option<i32>);

/// A JSON-lines output that survives write faults; see the module docs.
pub struct LineFile {
    /// The output's name in logs and metrics (`flows`, `alerts_file`, ...).
    name: &'static str,
    dest: Dest,
    out: Option<Box<dyn Write + Send>>,
    buf: Vec<u8>,
    /// The buffer starts inside a line whose beginning is already written.
    torn: bool,
    failing: bool,
    /// Errors logged during the current failure.
    logged: Vec<ErrKey>,
    retry_at: Option<Instant>,
    written: u64,
    dropped: u64,
    /// `dropped` when the current failure began.
    dropped_before: u64,
}

impl fmt::Debug for LineFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LineFile")
            .field("name", &self.name)
            .field("dest", &self.dest)
            .field("buffered", &self.buf.len())
            .field("failing", &self.failing)
            .field("written", &self.written)
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl LineFile {
    /// An output named `name` (for logs and metrics) to `dest`, not opened yet: the first
    /// [`LineFile::write_out`] opens it (and a failure to open is a failure like any other).
    pub fn new(name: &'static str, dest: Dest) -> Self {
        Self {
            name,
            dest,
            out: None,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            torn: false,
            failing: false,
            logged: Vec::new(),
            retry_at: None,
            written: 0,
            dropped: 0,
            dropped_before: 0,
        }
    }

    /// [`LineFile::new`], opened now: `Err` if the file cannot be opened.
    pub fn open(name: &'static str, dest: Dest) -> io::Result<Self> {
        let mut f = Self::new(name, dest);
        f.out = Some(f.open_dest()?);
        Ok(f)
    }

    /// Where it writes.
    pub fn dest(&self) -> &Dest {
        &self.dest
    }

    /// Whether the output cannot write now.
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// Lines written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Lines dropped so far (backlog full, or still unwritten at [`LineFile::close`]).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether the buffer is full enough to be written (never while failing: that waits for
    /// [`LineFile::retry_due`]).
    pub fn wants_write(&self) -> bool {
        !self.failing && self.buf.len() >= FLUSH_AT
    }

    /// Whether a failing output should be tried again now.
    pub fn retry_due(&self, now: Instant) -> bool {
        self.failing && self.retry_at.is_none_or(|t| now >= t)
    }

    /// Queue one line (a newline is added if it has none). Returns `false` if the line was
    /// dropped: the output is failing and its backlog is full.
    pub fn push(&mut self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if self.failing && self.buf.len() + line.len() + 1 > BACKLOG {
            self.dropped += 1;
            return false;
        }
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        true
    }

    /// Write everything buffered (opening the destination first if needed). Returns whether
    /// the output works; on failure the rest stays buffered and the output is failing.
    pub fn write_out(&mut self) -> bool {
        let mut out = match self.out.take() {
            Some(o) => o,
            None => match self.open_dest() {
                Ok(o) => o,
                Err(e) => {
                    self.fail("open", &e);
                    return false;
                }
            },
        };
        while !self.buf.is_empty() {
            match out.write(&self.buf) {
                Ok(0) => {
                    self.out = Some(out);
                    self.fail("write", &io::Error::from(io::ErrorKind::WriteZero));
                    return false;
                }
                Ok(n) => {
                    let done = &self.buf[..n];
                    self.written += done.iter().filter(|&&b| b == b'\n').count() as u64;
                    self.torn = done.last() != Some(&b'\n');
                    self.buf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.out = Some(out);
                    self.fail("write", &e);
                    return false;
                }
            }
        }
        let flushed = out.flush();
        self.out = Some(out);
        if let Err(e) = flushed {
            self.fail("write", &e);
            return false;
        }
        self.recover();
        true
    }

    /// Close the destination; the next write opens it again by name (after logrotate moved
    /// it, or after a fault). What is buffered is written to the old file first if it can
    /// be; the tail of a line cut there is dropped, not written into the new file.
    pub fn reopen(&mut self) {
        if self.out.is_some() && !self.buf.is_empty() {
            self.write_out();
        }
        if self.torn {
            let end = self
                .buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            self.buf.drain(..end);
            if end > 0 {
                self.dropped += 1;
            }
            self.torn = false;
        }
        self.out = None;
    }

    /// Last attempt to write what is buffered; lines still unwritten are dropped, counted
    /// and logged. Returns the number dropped now.
    pub fn close(&mut self) -> u64 {
        if !self.buf.is_empty() {
            self.write_out();
        }
        let left = self.buf.iter().filter(|&&b| b == b'\n').count() as u64;
        if left > 0 {
            self.dropped += left;
            tracing::error!(output = self.name, path = %self.dest, lines = left,
                "output closed with lines it could not write; dropped");
        }
        self.buf.clear();
        self.out = None;
        left
    }

    fn open_dest(&self) -> io::Result<Box<dyn Write + Send>> {
        Ok(match &self.dest {
            Dest::File(p) => Box::new(open_append(p)?),
            Dest::Stdout => Box::new(io::stdout()),
        })
    }

    fn fail(&mut self, what: &str, e: &io::Error) {
        if !self.failing {
            self.failing = true;
            self.dropped_before = self.dropped;
        }
        self.retry_at = Some(Instant::now() + RETRY);
        let key = (e.kind(), e.raw_os_error());
        if !self.logged.contains(&key) {
            self.logged.push(key);
            tracing::error!(output = self.name, path = %self.dest, error = %e,
                "output failing: cannot {what}; lines are held up to {} KiB, then dropped \
                 and counted; retrying every {} s", BACKLOG >> 10, RETRY.as_secs());
        }
    }

    fn recover(&mut self) {
        if self.failing {
            self.failing = false;
            self.logged.clear();
            self.retry_at = None;
            tracing::warn!(output = self.name, path = %self.dest,
                dropped = self.dropped - self.dropped_before, "output writing again");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

    use super::*;

    fn line(i: usize) -> Vec<u8> {
        format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(200)).into_bytes()
    }

    #[test]
    fn a_full_device_holds_a_backlog_then_drops_and_counts() {
        let mut f = LineFile::new("flows", Dest::File("/dev/full".into()));
        let mut kept = 0;
        for i in 0..10_000 {
            kept += usize::from(f.push(&line(i)));
            if f.wants_write() {
                f.write_out();
            }
        }
        assert!(f.failing());
        assert_eq!(f.written(), 0);
        assert_eq!(f.dropped() as usize, 10_000 - kept);
        assert!(kept * 200 > BACKLOG / 2, "the backlog held lines: {kept}");
        assert!(f.retry_due(Instant::now() + RETRY));
        assert!(!f.retry_due(Instant::now()));
        assert_eq!(f.close() as usize, kept);
        assert_eq!(f.dropped(), 10_000);
    }

    #[test]
    fn a_directory_fails_and_recovers_without_losing_the_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flows.jsonl");
        std::fs::create_dir(&path).unwrap();
        let mut f = LineFile::new("flows", Dest::File(path.clone()));
        f.push(b"{\"a\":1}\n");
        assert!(!f.write_out());
        assert!(f.failing());
        f.push(b"{\"a\":2}");
        std::fs::remove_dir(&path).unwrap();
        assert!(f.write_out());
        assert!(!f.failing());
        assert_eq!((f.written(), f.dropped()), (2, 0));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
    }

    /// Accepts `room` bytes, then fails with ENOSPC until given more room.
    struct Tight(std::sync::Arc<std::sync::Mutex<(Vec<u8>, usize)>>);

    impl Write for Tight {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut g = self.0.lock().unwrap();
            let (data, room) = &mut *g;
            if *room == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(*room);
            data.extend_from_slice(&buf[..n]);
            *room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_short_write_is_completed_later_and_never_torn() {
        let disk = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), 10)));
        let mut f = LineFile::new("t", Dest::Stdout);
        f.out = Some(Box::new(Tight(std::sync::Arc::clone(&disk))));
        f.push(b"first line");
        f.push(b"second");
        assert!(!f.write_out());
        assert!(f.torn);
        assert_eq!(f.written(), 0);
        disk.lock().unwrap().1 = 1000;
        assert!(f.write_out());
        assert_eq!(f.written(), 2);
        assert_eq!(disk.lock().unwrap().0, b"first line\nsecond\n");
    }

    #[test]
    fn reopen_drops_the_tail_of_a_torn_line_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let disk = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), 4)));
        let mut f = LineFile::new("t", Dest::File(path.clone()));
        f.out = Some(Box::new(Tight(std::sync::Arc::clone(&disk))));
        f.push(b"abcdefgh");
        f.push(b"next");
        assert!(!f.write_out());
        f.reopen();
        assert_eq!(f.dropped(), 1);
        assert!(f.write_out());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "next\n");
        assert_eq!(f.written(), 1);
    }
}
