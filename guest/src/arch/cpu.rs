//! Single instructions, wrapped.

use core::arch::asm;

/// Reads the time-stamp counter (allowed at CPL3: CR4.TSD is clear).
#[inline(always)]
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the TSC into edx:eax.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// `cpuid` of `leaf` (subleaf 0): (eax, ebx, ecx, edx).
pub fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, 0);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// Writes a model-specific register. CPL0 only.
pub fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the callers write architectural x2APIC MSRs or the Xen
    // hypercall-page MSR the hypervisor advertised; both are side-effect
    // free for memory safety.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack));
    }
}

/// Reads a model-specific register. CPL0 only.
pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: reading an MSR the CPU has (the callers read x2APIC MSRs).
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

#[inline(always)]
pub fn cli() {
    // SAFETY: masks interrupts on this vCPU; no memory is touched.
    unsafe { asm!("cli", options(nomem, nostack)) };
}

#[inline(always)]
pub fn pause() {
    core::hint::spin_loop();
}

/// The current privilege level.
#[inline(always)]
pub fn cpl() -> u16 {
    let cs: u16;
    // SAFETY: reads the CS selector.
    unsafe { asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack)) };
    cs & 3
}

/// The vCPU running this code at CPL0: kernel stacks are laid out by vCPU
/// index (layout.rs), so the stack pointer says which one.
#[inline(always)]
pub fn current_vcpu() -> u32 {
    use xevtchn_common::layout::{STACK_SIZE, STACKS_TOP};
    let rsp: u64;
    // SAFETY: reads the stack pointer.
    unsafe { asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack)) };
    ((STACKS_TOP - 1 - rsp) / STACK_SIZE) as u32
}
