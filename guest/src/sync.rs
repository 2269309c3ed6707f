//! Waiting at CPL3 without spinning, and barriers between vCPUs.
//!
//! At CPL0 (set-up) a wait sleeps in `hlt` until an interrupt: an upcall,
//! or the 10 ms APIC timer tick that bounds every wait. At CPL3 it spins
//! (see `interrupts::wait_while_equal`).

use core::sync::atomic::{
    AtomicU64,
    Ordering::{AcqRel, Acquire, Release},
};

use crate::{
    arch::{apic, cpu::rdtsc, descriptors::MAX_VCPUS, interrupts::wait_while_equal},
    events::WAKE,
};

/// Tick period: bounds how late a timed-out or barrier wait notices.
pub const TICK_MS: u64 = 10;

/// The timer tick's handler: only wakes waiters.
pub extern "C" fn tick(_: u64, _entry_tsc: u64) {
    let vcpu = crate::arch::cpu::current_vcpu() as usize;
    WAKE[vcpu % MAX_VCPUS].fetch_add(1, Release);
    apic::eoi();
}

/// Sleeps until `done()` holds; false if `deadline` (TSC) passed first.
pub fn wait_until(vcpu: u32, deadline: u64, mut done: impl FnMut() -> bool) -> bool {
    let wake = &WAKE[vcpu as usize % MAX_VCPUS];
    loop {
        let seen = wake.load(Acquire);
        if done() {
            return true;
        }
        if rdtsc() >= deadline {
            return false;
        }
        wait_while_equal(wake, seen);
    }
}

static ARRIVED: AtomicU64 = AtomicU64::new(0);
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Waits until all `vcpus` vCPUs arrived.
pub fn barrier(vcpu: u32, vcpus: u32) {
    let generation = GENERATION.load(Acquire);
    if ARRIVED.fetch_add(1, AcqRel) + 1 == u64::from(vcpus) {
        ARRIVED.store(0, Release);
        GENERATION.fetch_add(1, Release);
    } else {
        wait_until(vcpu, u64::MAX, || GENERATION.load(Acquire) != generation);
    }
}
