//! Starting the other vCPUs as on hardware: the INIT-SIPI sequence of the
//! Intel SDM (vol. 3, 8.4.4) through the x2APIC's ICR, to every other vCPU
//! at once. The SIPI starts each in real mode at `AP_TRAMPOLINE`, where
//! this copies `pvh_entry`'s trampoline; each then calls `_start` with its
//! index.

use xevtchn_common::layout::AP_TRAMPOLINE;

use super::cpu::wrmsr;

const X2APIC_ICR: u32 = 0x830;
const ICR_INIT: u64 = 5 << 8;
const ICR_STARTUP: u64 = 6 << 8;
const ICR_ASSERT: u64 = 1 << 14;
const ICR_ALL_BUT_SELF: u64 = 3 << 18;

unsafe extern "C" {
    static ap_trampoline: u8;
    static ap_trampoline_end: u8;
}

/// Starts every vCPU but this one. Call once, on vCPU 0, with its x2APIC
/// enabled.
pub fn start_other_vcpus() {
    let start = &raw const ap_trampoline;
    let len = (&raw const ap_trampoline_end).addr() - start.addr();
    // SAFETY: the trampoline's bytes are in the image; AP_TRAMPOLINE is a
    // page of identity-mapped RAM below 1 MiB that nothing else uses.
    unsafe { core::ptr::copy_nonoverlapping(start, AP_TRAMPOLINE as *mut u8, len) };
    wrmsr(X2APIC_ICR, ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT);
    wrmsr(X2APIC_ICR, ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | (AP_TRAMPOLINE >> 12));
}
