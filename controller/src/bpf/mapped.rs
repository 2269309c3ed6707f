//! A BPF_F_MMAPABLE array map mapped into this process, read and written
//! as atomic 64-bit words: what the BPF programs see, with no syscall per
//! access (the kernel has no mmap for other map types).

use std::{
    os::fd::{AsRawFd, BorrowedFd},
    ptr::NonNull,
    sync::atomic::AtomicU64,
};

pub struct MappedWords {
    ptr: NonNull<AtomicU64>,
    words: usize,
    len: usize,
}

// SAFETY: the mapping is only accessed through AtomicU64.
unsafe impl Send for MappedWords {}
// SAFETY: as above.
unsafe impl Sync for MappedWords {}

impl MappedWords {
    /// Maps the first `bytes` of the array map `fd` (rounded up to pages).
    pub fn map(fd: BorrowedFd<'_>, bytes: usize) -> std::io::Result<Self> {
        Self::map_with(fd, bytes, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Like `map`, for reading only (a read-only map fd allows no more).
    pub fn map_read_only(fd: BorrowedFd<'_>, bytes: usize) -> std::io::Result<Self> {
        Self::map_with(fd, bytes, libc::PROT_READ)
    }

    fn map_with(fd: BorrowedFd<'_>, bytes: usize, protection: i32) -> std::io::Result<Self> {
        let len = bytes.next_multiple_of(page_size()).max(page_size());
        // SAFETY: a new shared mapping chosen by the kernel; no existing
        // memory is affected, and `fd` is a live map fd.
        let addr = unsafe { libc::mmap(std::ptr::null_mut(), len, protection, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = NonNull::new(addr.cast()).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, words: bytes / 8, len })
    }

    /// Word `index`, or None past the map's values.
    pub fn word(&self, index: usize) -> Option<&AtomicU64> {
        // SAFETY: in bounds of the live, page-aligned mapping; a map
        // value's words are 8-byte aligned.
        (index < self.words).then(|| unsafe { &*self.ptr.as_ptr().add(index) })
    }

    pub fn words(&self) -> usize {
        self.words
    }
}

impl Drop for MappedWords {
    fn drop(&mut self) {
        // SAFETY: our own mapping; the references `word` handed out borrow self.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}
