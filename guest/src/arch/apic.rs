//! The local APIC in x2APIC mode: enable and EOI, both through MSRs.

use super::cpu::{rdmsr, wrmsr};

const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const X2APIC_TPR: u32 = 0x808;
const X2APIC_EOI: u32 = 0x80b;
const X2APIC_SVR: u32 = 0x80f;
const X2APIC_LVT_LINT0: u32 = 0x835;
const LVT_MASKED: u64 = 1 << 16;
const X2APIC_LVT_TIMER: u32 = 0x832;
const X2APIC_TIMER_INITIAL: u32 = 0x838;
const X2APIC_TIMER_DIVIDE: u32 = 0x83e;
const LVT_TIMER_PERIODIC: u64 = 1 << 17;
const DIVIDE_BY_1: u64 = 0xb;
/// KVM's emulated APIC timer counts at 1 GHz (APIC_BUS_CYCLE_NS = 1).
const TIMER_TICKS_PER_MS: u64 = 1_000_000;
/// Spurious vector 0xff, APIC software-enabled.
const SVR_ENABLE: u64 = 0x1ff;

/// Switches this vCPU's local APIC to x2APIC mode and enables it.
pub fn enable() {
    let base = rdmsr(IA32_APIC_BASE);
    wrmsr(IA32_APIC_BASE, base | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
    wrmsr(X2APIC_SVR, SVR_ENABLE);
    wrmsr(X2APIC_TPR, 0);
    // KVM resets the BSP's LINT0 to ExtINT: an uninitialised 8259 would
    // then deliver GSIs below 16 (the callback GSI) as bogus vectors.
    wrmsr(X2APIC_LVT_LINT0, LVT_MASKED);
}

/// Ends the interrupt in service (the per-vCPU upcall vector is edge, EOI'd).
#[inline(always)]
pub fn eoi() {
    wrmsr(X2APIC_EOI, 0);
}

/// Starts a periodic timer interrupt on `vector` every `period_ms`.
pub fn start_periodic_timer(vector: u8, period_ms: u64) {
    wrmsr(X2APIC_TIMER_DIVIDE, DIVIDE_BY_1);
    wrmsr(X2APIC_LVT_TIMER, u64::from(vector) | LVT_TIMER_PERIODIC);
    wrmsr(X2APIC_TIMER_INITIAL, period_ms * TIMER_TICKS_PER_MS);
}
