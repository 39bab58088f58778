//! One byte-window abstraction for every input: a bounded buffer filled from a [`Read`]
//! (files, gzip streams, pipes, FIFOs).
//!
//! Readers walk the window with a cursor. Bytes handed out (a packet's data) stay valid until
//! the next call to [`Buffer::fill`] or [`Buffer::skip`], which may move the window.

use std::io::{self, Read};

/// Normal size of a streaming buffer; it grows past this only for a single larger item.
const CHUNK: usize = 256 << 10;
/// First allocation of a streaming buffer (small, so that peeking at many files is cheap).
const FIRST_CHUNK: usize = 64 << 10;

/// Asks the CPU to start loading the two cache lines at `at` in `window` (a hint: no effect on
/// results, and no fault for a position past the end).
///
/// The record after the current one is read only after the current packet has gone through
/// the whole engine; by then its header and the packet headers behind it are in cache instead
/// of being one memory miss each (the kernel's copy into the buffer does not leave them there).
#[inline(always)]
pub(crate) fn prefetch(window: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = window.as_ptr().wrapping_add(at).cast::<i8>();
        // SAFETY: PREFETCHT0 only hints the cache: it reads nothing into the program, never
        // faults, whatever the address; SSE, which it needs, is part of every x86_64 CPU.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (window, at);
}

/// A window over the input with a read cursor.
pub(crate) struct Buffer {
    src: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// End of valid data in `buf`.
    end: usize,
    eof: bool,
    /// Cursor: index into the window.
    pos: usize,
    /// Absolute stream offset of window index 0.
    base: u64,
}

impl Buffer {
    /// A bounded buffer filled from `src`.
    pub(crate) fn stream(src: Box<dyn Read + Send>) -> Buffer {
        Buffer::stream_at(src, 0)
    }

    /// A bounded buffer filled from `src`, whose first byte is at stream offset `base`.
    pub(crate) fn stream_at(src: Box<dyn Read + Send>, base: u64) -> Buffer {
        Buffer {
            src,
            buf: Vec::new(),
            end: 0,
            eof: false,
            pos: 0,
            base,
        }
    }

    /// Absolute offset of the cursor.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The current window; index it with positions derived from [`Buffer::pos`].
    #[inline]
    pub(crate) fn window(&self) -> &[u8] {
        &self.buf[..self.end]
    }

    /// The cursor, as an index into [`Buffer::window`].
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes available from the cursor without refilling.
    #[inline]
    pub(crate) fn available(&self) -> usize {
        self.window().len() - self.pos
    }

    /// Makes at least `n` bytes available from the cursor, unless the input ends first.
    /// Returns the number of bytes available (`>= n`, or everything left at the end).
    /// `n` must already be bounded by the caller's limits: the buffer grows to hold it.
    #[inline]
    pub(crate) fn fill(&mut self, n: usize) -> io::Result<usize> {
        let avail = self.available();
        if avail >= n {
            return Ok(avail);
        }
        self.refill(n)
    }

    #[cold]
    fn refill(&mut self, n: usize) -> io::Result<usize> {
        let Buffer {
            src, buf, end, eof, ..
        } = self;
        if *eof {
            return Ok(*end - self.pos);
        }
        // A buffer the input filled completely is worth growing to the normal chunk size; the
        // first one is small so that peeking at many small files stays cheap.
        let was_full = *end == buf.len();
        // Move the unread tail to the front.
        if self.pos > 0 {
            buf.copy_within(self.pos..*end, 0);
            *end -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let want = if buf.is_empty() {
            FIRST_CHUNK
        } else if was_full {
            CHUNK.max(buf.len())
        } else {
            buf.len()
        };
        // A single larger item gets exactly what it needs.
        let want = want.max(n);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        while *end < n {
            match src.read(&mut buf[*end..]) {
                Ok(0) => {
                    *eof = true;
                    break;
                }
                Ok(k) => *end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(*end)
    }

    /// Moves the cursor forward by `n` bytes, which must be available.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.available());
        self.pos += n.min(self.available());
    }

    /// [`Buffer::consume`] for a caller that has just seen `n` bytes in [`Buffer::window`]
    /// from the cursor (no second look at the window).
    #[inline]
    pub(crate) fn consume_seen(&mut self, n: usize) {
        debug_assert!(n <= self.available());
        self.pos += n;
    }

    /// Skips `n` bytes, reading through the input if they are not in the window. Returns the
    /// number of bytes skipped (fewer than `n` only at the end of the input).
    pub(crate) fn skip(&mut self, n: u64) -> io::Result<u64> {
        let avail = self.available() as u64;
        if n <= avail {
            // n <= avail, which is a usize.
            self.pos += n as usize;
            return Ok(n);
        }
        let Buffer { src, end, eof, .. } = self;
        // Drop the window and stream past the rest.
        self.base += *end as u64;
        self.pos = 0;
        *end = 0;
        let rest = n - avail;
        let skipped = io::copy(&mut (&mut *src).take(rest), &mut io::sink())?;
        self.base += skipped;
        if skipped < rest {
            *eof = true;
        }
        Ok(avail + skipped)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: failures should panic
    use super::*;

    #[test]
    fn stream_fill_consume_skip() {
        let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let mut b = Buffer::stream(Box::new(io::Cursor::new(data.clone())));
        assert!(b.fill(10).unwrap() >= 10);
        b.consume(10);
        assert_eq!(b.offset(), 10);
        assert!(b.fill(200_000).unwrap() >= 200_000);
        assert_eq!(b.window()[b.pos()], data[10]);
        assert_eq!(b.skip(250_000).unwrap(), 250_000);
        assert_eq!(b.offset(), 250_010);
        // Enough is in the window: fill reads nothing more and says what is there. The refill
        // for 200,000 bytes dropped the 10 consumed ones and read one chunk from offset 10.
        let window_end = 10 + CHUNK.min(300_000 - 10);
        assert_eq!(b.fill(4).unwrap(), window_end - 250_010);
        assert_eq!(b.window()[b.pos()], data[250_010]);
        assert_eq!(b.skip(100_000).unwrap(), 300_000 - 250_010);
        assert_eq!(b.fill(1).unwrap(), 0);
    }
}
