//! The built-in Xen HVM guest: a PVH kernel whose vCPU 0 starts the
//! others (INIT/SIPI); every vCPU reaches `_start` in 64-bit long mode
//! (rdi = vCPU index) on a private stack (arch::pvh_entry).
//!
//! Set-up runs at CPL0 (which this host kind emulates, slowly); every
//! workload's hot loop runs at CPL3, natively. See `workloads` for what each
//! workload does and checks.
#![no_std]
#![no_main]

mod arch;
mod errors;
mod events;
mod faults;
mod ioapic;
mod mmio;
mod report;
mod smoke;
mod sync;
mod workloads;
mod xen;

use core::sync::atomic::{AtomicU32, Ordering};

use xevtchn_common::{
    guest_abi::{Params, error::EXIT_ERROR, workload},
    layout::{CONTROL_EXIT, PARAMS, STACK_SIZE, STACKS_TOP},
};

use arch::{apic, descriptors, interrupts::TIMER_VECTOR};

/// The VMM's parameters (read-only for the guest).
pub fn params() -> Params {
    // SAFETY: the VMM wrote a Params at PARAMS before starting any vCPU.
    unsafe { core::ptr::read_volatile(PARAMS as *const Params) }
}

/// Set once vCPU 0 has found Xen and placed shared_info.
static DOMAIN_READY: AtomicU32 = AtomicU32::new(0);

#[unsafe(no_mangle)]
#[unsafe(link_section = ".text._start")]
pub extern "C" fn _start(vcpu: u64) -> ! {
    let params = params();
    if params.workload == workload::SMOKE {
        if vcpu == 0 {
            exit(smoke::run(params.count));
        }
        park();
    }
    let vcpu = vcpu as u32;
    events::BARE.store(params.bare, Ordering::Relaxed);
    descriptors::install(vcpu as usize, STACKS_TOP - u64::from(vcpu) * STACK_SIZE);
    apic::enable();
    apic::start_periodic_timer(TIMER_VECTOR, sync::TICK_MS);
    if vcpu == 0 {
        // They boot while this one sets the domain up, then wait for it.
        arch::smp::start_other_vcpus();
        if let Err(code) = xen::setup::domain(&params) {
            fail(vcpu, code);
        }
        DOMAIN_READY.store(1, Ordering::Release);
    } else {
        sync::wait_until(vcpu, u64::MAX, || DOMAIN_READY.load(Ordering::Acquire) != 0);
    }
    if let Err(code) = xen::setup::vcpu(vcpu, &params) {
        fail(vcpu, code);
    }
    sync::barrier(vcpu, params.vcpus);
    // The fuzz workload's fuzzing vCPUs stay at CPL0, where kernels make
    // their hypercalls, and where MSR accesses reach the hypervisor.
    if params.workload == workload::FUZZ && vcpu >= 2 {
        user_main(u64::from(vcpu))
    }
    arch::user::enter(vcpu as usize, user_main)
}

/// Each vCPU's life at CPL3 (CPL0 for the fuzzing ones): the workload, its
/// report, then vCPU 0 ends the VM.
extern "C" fn user_main(vcpu: u64) -> ! {
    let vcpu = vcpu as u32;
    let params = params();
    if let Err(code) = workloads::run(vcpu, &params) {
        errors::record(vcpu, code);
    }
    report::publish(vcpu);
    sync::barrier(vcpu, params.vcpus);
    if vcpu == 0 {
        let first = (0..params.vcpus)
            .map(|v| report::counters(v).first_error.load(Ordering::Relaxed) as u32)
            .find(|&code| code != 0);
        exit(first.map_or(0, |code| EXIT_ERROR | code));
    }
    loop {
        sync::wait_until(vcpu, u64::MAX, || false);
    }
}

/// Set-up failed at CPL0: report and end the VM.
fn fail(vcpu: u32, code: u32) -> ! {
    errors::record(vcpu, code);
    report::publish(vcpu);
    exit(EXIT_ERROR | code)
}

/// Ends the VM with `status` (0 = success). Works at CPL0 and CPL3.
fn exit(status: u32) -> ! {
    mmio::write_u32(CONTROL_EXIT, status);
    idle()
}

/// Nothing to do on this vCPU, at CPL0: halt with interrupts off, for good.
fn park() -> ! {
    arch::cpu::cli();
    loop {
        // SAFETY: hlt with IF=0 waits until the VMM stops the vCPU.
        unsafe { core::arch::asm!("hlt", options(nomem, nostack)) };
    }
}

/// Nothing left to do on this vCPU, at any privilege level.
fn idle() -> ! {
    loop {
        // A vCPU that exited may be at CPL3, where hlt faults: spin politely.
        arch::cpu::pause();
    }
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    exit(EXIT_ERROR | 0xffff)
}
