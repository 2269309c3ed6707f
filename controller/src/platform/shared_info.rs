//! The shared_info page: host-owned memory the guest maps with
//! XENMEM_add_to_physmap, as Xen's own page is hypervisor memory rather than
//! guest RAM. The userspace backend owns an anonymous page; the BPF backend
//! a page of a BPF_F_MMAPABLE map. Either way it is registered with KVM as
//! its own memslot at the GFN the guest chose (the built-in guest chooses a
//! GFN outside RAM; a GFN inside RAM would shadow that RAM page).

use std::{ptr::NonNull, sync::atomic::AtomicU64};

use xevtchn_common::two_level::{AtomicPage, EventWords};

pub const PAGE_SIZE: usize = 4096;

/// A 4096-byte, page-aligned mapping shared with the guest, unmapped on drop.
pub struct SharedInfoPage {
    ptr: NonNull<AtomicPage>,
}

// SAFETY: the page is only accessed through atomics (AtomicPage).
unsafe impl Send for SharedInfoPage {}
// SAFETY: as above.
unsafe impl Sync for SharedInfoPage {}

impl SharedInfoPage {
    /// A fresh zeroed anonymous page.
    pub fn anonymous() -> std::io::Result<Self> {
        Self::map(libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1)
    }

    fn map(flags: i32, fd: std::os::fd::RawFd) -> std::io::Result<Self> {
        // SAFETY: a new mapping chosen by the kernel; no existing memory is
        // affected. `fd` is -1 (anonymous) or a live map fd.
        let addr =
            unsafe { libc::mmap(std::ptr::null_mut(), PAGE_SIZE, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr = NonNull::new(addr.cast()).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(Self { ptr })
    }

    /// Maps the first page of `fd` shared: a BPF_F_MMAPABLE array map,
    /// whose page the BPF program then shares with the guest and us.
    pub fn map_shared(fd: std::os::fd::RawFd) -> std::io::Result<Self> {
        Self::map(libc::MAP_SHARED, fd)
    }

    /// The host address, for KVM_SET_USER_MEMORY_REGION.
    pub fn host_address(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    pub fn words(&self) -> &AtomicPage {
        // SAFETY: the mapping is live and page-sized for as long as self.
        unsafe { self.ptr.as_ref() }
    }

    /// Byte `offset` of the page, atomically.
    pub fn byte(&self, offset: usize) -> u8 {
        let word = self.words().load(offset / 8);
        (word >> ((offset % 8) * 8)) as u8
    }

    /// Clears the whole page (EVTCHNOP_reset does not; a new domain does).
    pub fn clear(&self) {
        for w in 0..PAGE_SIZE / 8 {
            self.words().swap(w, 0);
        }
    }
}

impl Drop for SharedInfoPage {
    fn drop(&mut self) {
        // SAFETY: we created this mapping and nothing refers to it any
        // more (the platform, and with it the memslot's user, is gone).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), PAGE_SIZE) };
    }
}

const _: () = assert!(std::mem::size_of::<AtomicPage>() == PAGE_SIZE);
const _: () = assert!(std::mem::align_of::<AtomicU64>() == 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_page_is_zeroed_and_atomic() {
        let page = SharedInfoPage::anonymous().unwrap();
        assert_eq!(page.words().load(0), 0);
        page.words().fetch_or(0, 1);
        assert_eq!(page.byte(0), 1);
        assert_eq!(page.host_address() % PAGE_SIZE as u64, 0);
        page.clear();
        assert_eq!(page.byte(0), 0);
    }
}
