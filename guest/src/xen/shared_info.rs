//! The shared_info page, where the guest placed it.

use core::sync::atomic::{AtomicU64, Ordering};

use xevtchn_common::{layout::SHARED_INFO_GPA, two_level::AtomicPage};

/// Set once by `place` (vCPU 0, before any other vCPU gets past set-up).
static ADDRESS: AtomicU64 = AtomicU64::new(SHARED_INFO_GPA);

/// Records where shared_info is (0: the default, outside RAM); returns the GPA.
pub fn place(gpa: u64) -> u64 {
    let gpa = if gpa == 0 { SHARED_INFO_GPA } else { gpa };
    ADDRESS.store(gpa, Ordering::Release);
    gpa
}

/// The page's 512 words, for the 2-level helpers of `two_level::guest`.
#[inline(always)]
pub fn page() -> &'static AtomicPage {
    let gpa = ADDRESS.load(Ordering::Relaxed);
    // SAFETY: setup::domain placed shared_info at this identity-mapped
    // address before anything calls this; the page is only ever accessed
    // atomically, by us and by the hypervisor.
    unsafe { &*(gpa as *const AtomicPage) }
}
