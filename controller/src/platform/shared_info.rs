//! The shared_info page: host-owned memory the guest maps with
//! XENMEM_add_to_physmap, as Xen's own page is hypervisor memory rather than
//! guest RAM. The userspace backend owns an anonymous page; the BPF backend
//! a page of a BPF_F_MMAPABLE map. Either way it is registered with KVM as
//! its own memslot at the GFN the guest chose.

use std::{ptr::NonNull, sync::atomic::AtomicU64};

use xevtchn_common::two_level::{AtomicPage, EventWords};

pub const PAGE_SIZE: usize = 4096;

/// A 4096-byte, page-aligned mapping shared with the guest.
pub struct SharedInfoPage {
    ptr: NonNull<AtomicPage>,
    /// Unmapped on drop when the page owns its mapping.
    owned: bool,
}

// SAFETY: the page is only accessed through atomics (AtomicPage).
unsafe impl Send for SharedInfoPage {}
// SAFETY: as above.
unsafe impl Sync for SharedInfoPage {}

impl SharedInfoPage {
    /// A fresh zeroed anonymous page.
    pub fn anonymous() -> std::io::Result<Self> {
        // SAFETY: a new private anonymous mapping; no existing memory is affected.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(addr.cast()).ok_or_else(|| std::io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, owned: true })
    }

    /// Wraps a mapping someone else owns (a BPF map's page).
    ///
    /// # Safety
    /// `addr` must be a page-aligned, readable and writable mapping of at
    /// least PAGE_SIZE bytes that outlives the returned value.
    pub unsafe fn borrowed(addr: NonNull<u8>) -> Self {
        Self {
            ptr: addr.cast(),
            owned: false,
        }
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
        if self.owned {
            // SAFETY: we created this mapping in `anonymous` and nothing
            // refers to it any more (KVM's memslot is gone with the VM fd).
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), PAGE_SIZE) };
        }
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
