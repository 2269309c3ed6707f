//! The shared_info page, where the guest placed it.

use xevtchn_common::{layout::SHARED_INFO_GPA, two_level::AtomicPage};

/// The page's 512 words, for the 2-level helpers of `two_level::guest`.
#[inline(always)]
pub fn page() -> &'static AtomicPage {
    // SAFETY: setup::hypervisor placed shared_info at SHARED_INFO_GPA
    // (identity-mapped) before anything calls this; the page is only ever
    // accessed atomically, by us and by the hypervisor.
    unsafe { &*(SHARED_INFO_GPA as *const AtomicPage) }
}
