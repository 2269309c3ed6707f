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

/// An array map this process may only read (a BPF_F_RDONLY fd, which the
/// kernel does not let one map): its values are copied out with one
/// BPF_MAP_LOOKUP_BATCH.
pub struct ReadOnlyArray {
    fd: std::os::fd::OwnedFd,
    value_size: usize,
    entries: u32,
}

impl ReadOnlyArray {
    pub fn new(fd: std::os::fd::OwnedFd, value_size: usize, entries: u32) -> Self {
        Self { fd, value_size, entries }
    }

    /// Every value, in index order (`entries * value_size` bytes).
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        let mut keys = vec![0u32; self.entries as usize];
        let mut values = vec![0u8; self.entries as usize * self.value_size];
        let mut out_batch = 0u32;
        // union bpf_attr, the `batch` member (include/uapi/linux/bpf.h):
        // in_batch, out_batch, keys, values (pointers), count, map_fd,
        // elem_flags, flags.
        #[repr(C)]
        struct Batch {
            in_batch: u64,
            out_batch: u64,
            keys: u64,
            values: u64,
            count: u32,
            map_fd: u32,
            elem_flags: u64,
            flags: u64,
        }
        let mut attr = Batch {
            in_batch: 0,
            out_batch: std::ptr::addr_of_mut!(out_batch) as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: self.entries,
            map_fd: self.fd.as_raw_fd() as u32,
            elem_flags: 0,
            flags: 0,
        };
        const BPF_MAP_LOOKUP_BATCH: i64 = 24;
        // SAFETY: bpf(2) reads `attr` and writes at most `count` keys and
        // values into the buffers it points at, which are that large.
        let ret = unsafe {
            libc::syscall(libc::SYS_bpf, BPF_MAP_LOOKUP_BATCH, std::ptr::addr_of_mut!(attr), size_of::<Batch>() as u32)
        };
        // ENOENT: the batch reached the map's end (here, all of it).
        let error = std::io::Error::last_os_error();
        if ret < 0 && error.raw_os_error() != Some(libc::ENOENT) {
            return Err(error);
        }
        values.truncate(attr.count as usize * self.value_size);
        Ok(values)
    }
}
