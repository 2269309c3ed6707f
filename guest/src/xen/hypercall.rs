//! Calling through the hypercall page the hypervisor filled in.

use core::arch::asm;

use xevtchn_common::xen::hypercall::HYPERCALL_STUB_SIZE;

#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);

/// Filled by the hypervisor when its address is written to the
/// hypercall-page MSR (see setup::hypervisor).
pub static mut HYPERCALL_PAGE: Page = Page([0; 4096]);

pub fn page_address() -> u64 {
    core::ptr::addr_of!(HYPERCALL_PAGE) as u64
}

/// Hypercall `nr` with up to five arguments; returns rax (negative Xen errno
/// on failure). Callable at CPL0 and CPL3 (the stubs use MMIO).
#[inline(always)]
pub fn call(nr: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let entry = page_address() + u64::from(nr) * u64::from(HYPERCALL_STUB_SIZE);
    let ret: i64;
    // SAFETY: the stub is the hypervisor's code for `nr`; it only reads the
    // argument registers and the memory they point to, and follows the C
    // ABI's clobbers (it touches rax, rdi, rsi at most).
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) entry,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            lateout("rax") ret,
            clobber_abi("C"),
        );
    }
    ret
}

/// A hypercall whose second argument points at `arg` (the common shape).
#[inline(always)]
pub fn call_with<T>(nr: u32, cmd: u64, arg: &mut T) -> i64 {
    call(nr, cmd, arg as *mut T as u64, 0, 0, 0)
}
