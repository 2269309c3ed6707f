//! The shared_info page: host-owned memory the guest maps with
//! XENMEM_add_to_physmap, as Xen's own page is hypervisor memory rather than
//! guest RAM. The userspace backend owns an anonymous page; the BPF backend
//! a page of a BPF_F_MMAPABLE map. Either way it is registered with KVM as
//! its own memslot at the GFN the guest chose (the built-in guest chooses a
//! GFN outside RAM; a GFN inside RAM would shadow that RAM page).

use std::{
    ptr::NonNull,
    sync::{
        Mutex,
        atomic::{AtomicPtr, AtomicU64, Ordering},
    },
};

use xevtchn_common::two_level::{
    AtomicPage, EventWords, MAX_VCPUS, SHARED_INFO_VCPUS, UPCALL_MASKED, VCPU_INFO_WORDS, vcpu_info_word, vcpu_of_word,
};

use crate::vmm::memory::GuestRam;

pub const PAGE_SIZE: usize = 4096;

/// A 4096-byte, page-aligned mapping shared with the guest, unmapped on
/// drop. As event words (`EventWords`) it also holds the vcpu_infos that
/// live outside it: those the guest registered in its RAM
/// (VCPUOP_register_vcpu_info), and until then Xen's dummy for vCPUs from
/// 32 on. Every 2-level step the VMM takes lands where the guest looks.
pub struct SharedInfoPage {
    ptr: NonNull<AtomicPage>,
    /// Per vCPU: its vcpu_info in guest RAM, or null while in this page
    /// (below 32) or not registered (from 32 on).
    moved: [AtomicPtr<AtomicU64>; MAX_VCPUS as usize],
    /// Xen's `dummy_vcpu_info` (common/domain.c `vcpu_info_reset`): the
    /// vcpu_info of every vCPU from 32 on until it registers one. The guest
    /// never sees it; registering marks everything pending instead.
    dummy: [AtomicU64; VCPU_INFO_WORDS],
    /// Keeps the RAM the moved vcpu_infos live in mapped.
    ram: Mutex<Option<GuestRam>>,
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
        Ok(Self {
            ptr,
            moved: [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_VCPUS as usize],
            dummy: [const { AtomicU64::new(0) }; VCPU_INFO_WORDS],
            ram: Mutex::new(None),
        })
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

    /// The event words: this page, and the vcpu_infos moved out of it.
    pub fn words(&self) -> &Self {
        self
    }

    fn page(&self) -> &AtomicPage {
        // SAFETY: the mapping is live and page-sized for as long as self.
        unsafe { self.ptr.as_ref() }
    }

    /// `vcpu`'s vcpu_info now lives at `gpa` of `ram`, and every later
    /// access goes there. As in Xen's map_vcpu_info, a vcpu_info in this
    /// page is copied there; the dummy is not: the new one is zeroed with
    /// `evtchn_upcall_mask` set. False if `gpa` does not hold a whole,
    /// 8-byte aligned vcpu_info in `ram`, or `vcpu` is out of range.
    pub fn move_vcpu_info(&self, vcpu: u32, ram: &GuestRam, gpa: u64) -> bool {
        use vm_memory::{GuestAddress, GuestMemoryBackend};
        let Some(slot) = self.moved.get(vcpu as usize) else { return false };
        let len = VCPU_INFO_WORDS * 8;
        let Ok(host) = ram.get_slice(GuestAddress(gpa), len) else { return false };
        let host = host.ptr_guard_mut().as_ptr().cast::<AtomicU64>();
        if !host.is_aligned() {
            return false;
        }
        *self.ram.lock().unwrap_or_else(|p| p.into_inner()) = Some(ram.clone());
        let base = vcpu_info_word(vcpu);
        let from_page = vcpu < SHARED_INFO_VCPUS;
        for w in 0..VCPU_INFO_WORDS {
            let value = match (from_page, w) {
                (true, _) => self.load(base + w),
                (false, 0) => UPCALL_MASKED,
                (false, _) => 0,
            };
            // SAFETY: `host` covers `len` bytes of guest RAM (get_slice
            // checked), 8-byte aligned, which `self.ram` keeps mapped.
            unsafe { &*host.add(w) }.store(value, Ordering::SeqCst);
        }
        slot.store(host, Ordering::SeqCst);
        true
    }

    /// Whether the guest moved `vcpu`'s vcpu_info out of this page (the
    /// in-kernel path, which sees only this page, cannot serve it then).
    pub fn vcpu_info_moved(&self, vcpu: u32) -> bool {
        self.moved.get(vcpu as usize).is_some_and(|p| !p.load(Ordering::Acquire).is_null())
    }

    /// Word `word` of the event words, wherever it lives.
    fn word(&self, word: usize) -> Option<&AtomicU64> {
        let Some(vcpu) = vcpu_of_word(word) else { return self.page().words.get(word) };
        let in_info = word - vcpu_info_word(vcpu);
        let moved = self.moved[vcpu as usize].load(Ordering::Acquire);
        if !moved.is_null() {
            // SAFETY: set by move_vcpu_info to a live, aligned vcpu_info of
            // VCPU_INFO_WORDS words in RAM that `self.ram` keeps mapped.
            return Some(unsafe { &*moved.add(in_info) });
        }
        if vcpu < SHARED_INFO_VCPUS { self.page().words.get(word) } else { self.dummy.get(in_info) }
    }

    /// Byte `offset` of the page, atomically.
    pub fn byte(&self, offset: usize) -> u8 {
        let word = self.page().load(offset / 8);
        (word >> ((offset % 8) * 8)) as u8
    }

    /// Clears the whole page (EVTCHNOP_reset does not; a new domain does).
    pub fn clear(&self) {
        for w in 0..PAGE_SIZE / 8 {
            self.page().swap(w, 0);
        }
    }
}

impl EventWords for SharedInfoPage {
    fn load(&self, word: usize) -> u64 {
        self.word(word).map_or(0, |w| w.load(Ordering::SeqCst))
    }
    fn fetch_or(&self, word: usize, bits: u64) -> u64 {
        self.word(word).map_or(0, |w| w.fetch_or(bits, Ordering::SeqCst))
    }
    fn fetch_and(&self, word: usize, bits: u64) -> u64 {
        self.word(word).map_or(0, |w| w.fetch_and(bits, Ordering::SeqCst))
    }
    fn swap(&self, word: usize, value: u64) -> u64 {
        self.word(word).map_or(0, |w| w.swap(value, Ordering::SeqCst))
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
    fn a_moved_vcpu_info_takes_its_words_along() {
        use xevtchn_common::two_level::{pending_sel_word, set_pending, upcall_pending};
        let page = SharedInfoPage::anonymous().unwrap();
        let ram = crate::vmm::memory::anonymous_ram(1 << 20).unwrap();
        page.words().fetch_or(pending_sel_word(1), 0b100);
        assert!(!page.move_vcpu_info(1, &ram, 0x5004), "misaligned");
        assert!(!page.move_vcpu_info(1, &ram, (1 << 20) - 32), "beyond RAM");
        assert!(page.move_vcpu_info(1, &ram, 0x5040));
        assert!(page.vcpu_info_moved(1) && !page.vcpu_info_moved(0));
        use vm_memory::{Bytes, GuestAddress};
        assert_eq!(ram.read_obj::<u64>(GuestAddress(0x5048)).unwrap(), 0b100, "the selector came along");
        set_pending(page.words(), 70, 1);
        assert!(upcall_pending(page.words(), 1));
        assert_eq!(ram.read_obj::<u8>(GuestAddress(0x5040)).unwrap(), 1, "upcall_pending set in RAM");
        assert_eq!(page.byte(64), 0, "not in the page");
    }

    #[test]
    fn a_vcpu_above_31_has_the_dummy_until_it_registers() {
        use vm_memory::{Bytes, GuestAddress};
        use xevtchn_common::two_level::{pending_sel_word, set_pending, upcall_pending, upcall_word};
        let page = SharedInfoPage::anonymous().unwrap();
        let ram = crate::vmm::memory::anonymous_ram(1 << 20).unwrap();
        // Before: the event is pending in the page; its announcement goes to
        // the dummy, which no guest sees.
        set_pending(page.words(), 70, 33);
        assert!(upcall_pending(page.words(), 33));
        assert_eq!((0..4096).map(|b| page.byte(b).count_ones()).sum::<u32>(), 1, "only port 70's bit is in the page");
        assert!(page.move_vcpu_info(33, &ram, 0x6000));
        assert!(page.vcpu_info_moved(33));
        // Registered: zeroed with evtchn_upcall_mask set, as Xen does.
        assert_eq!(ram.read_obj::<u64>(GuestAddress(0x6000)).unwrap(), UPCALL_MASKED);
        assert_eq!(ram.read_obj::<u64>(GuestAddress(0x6008)).unwrap(), 0);
        page.words().fetch_and(upcall_word(33), 0);
        xevtchn_common::two_level::clear_pending(page.words(), 70);
        set_pending(page.words(), 70, 33);
        assert_eq!(ram.read_obj::<u8>(GuestAddress(0x6000)).unwrap(), 1, "upcall pending in RAM");
        assert_eq!(ram.read_obj::<u64>(GuestAddress(0x6008)).unwrap(), 1 << 1, "selector in RAM");
        assert_eq!(page.words().load(pending_sel_word(33)), 1 << 1);
        // vCPU 34 still has the dummy; beyond MAX_VCPUS there is nothing.
        assert!(!page.vcpu_info_moved(34));
        assert!(!page.move_vcpu_info(MAX_VCPUS, &ram, 0x7000));
    }

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
