//! The ring memory shared with the kernel: mapped once, unmapped on drop, read as block status
//! words (atomics) and, while a block belongs to user space, as bytes.

use std::ffi::c_void;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use super::block;
use super::socket::os;
use super::RingError;

/// The ring memory, unmapped on drop.
pub(super) struct Mapping {
    base: NonNull<u8>,
    len: usize,
    pub(super) block_bytes: usize,
    pub(super) blocks: usize,
}

// SAFETY: the mapping is owned by this value alone (no other handle to it exists in the
// process); moving it to another thread moves that ownership. Access to the shared memory is
// ordered by the block status protocol, not by which thread holds the value.
#[allow(unsafe_code)]
unsafe impl Send for Mapping {}

impl Mapping {
    /// Map the ring the kernel allocated for `fd` (`PACKET_RX_RING`): `blocks` blocks of
    /// `block_bytes`, `len` bytes in all.
    pub(super) fn new(
        fd: &OwnedFd,
        len: usize,
        block_bytes: usize,
        blocks: usize,
    ) -> Result<Mapping, RingError> {
        // SAFETY: maps the ring the kernel just allocated for this socket, `len` bytes from
        // offset 0 as packet rings require; the result is checked before use.
        #[allow(unsafe_code)]
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(os("mmap"));
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(|| os("mmap"))?;
        Ok(Mapping {
            base,
            len,
            block_bytes,
            blocks,
        })
    }

    /// The status word of block `i` (`i < blocks`), shared with the kernel.
    pub(super) fn status(&self, i: usize) -> &AtomicU32 {
        let at = (i % self.blocks) * self.block_bytes + block::BLOCK_STATUS;
        // SAFETY: `at + 4 <= len` (block offset plus 8 inside a block of at least a page); the
        // address is 4-aligned (the mapping and every block start on a page boundary); the
        // mapping lives as long as `self`. The word is only accessed atomically, except through
        // a `block` view, which exists only between an acquire load that saw TP_STATUS_USER and
        // the release store that hands the block back, while the kernel does not touch it.
        #[allow(unsafe_code)]
        unsafe {
            AtomicU32::from_ptr(self.base.as_ptr().add(at).cast::<u32>())
        }
    }

    /// The bytes of block `i`.
    ///
    /// # Safety
    /// Block `i` must belong to user space: its status was seen with `TP_STATUS_USER` (acquire)
    /// and has not been handed back since. The view must be gone before it is handed back.
    #[allow(unsafe_code)]
    pub(super) unsafe fn block(&self, i: usize) -> &[u8] {
        let at = (i % self.blocks) * self.block_bytes;
        // SAFETY: `at + block_bytes <= len`; the kernel does not write a block it handed over
        // until its status is set back to TP_STATUS_KERNEL (caller's contract), so the bytes
        // stay unchanged while the slice lives.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(at), self.block_bytes) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping made in `Mapping::new`, unmapped once;
        // no view of it outlives `self`.
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(self.base.as_ptr().cast::<c_void>(), self.len);
        }
    }
}
