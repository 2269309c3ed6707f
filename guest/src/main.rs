//! The built-in Xen HVM guest, entered by the VMM in 64-bit long mode.
//!
//! The VMM starts every vCPU at `_start` with `rdi` = workload number,
//! `rsi` = workload argument, `rdx` = vCPU index and a private stack.
#![no_std]
#![no_main]

mod mmio;
mod smoke;

use xevtchn_common::{layout::CONTROL_EXIT, workload};

#[unsafe(no_mangle)]
#[unsafe(link_section = ".text._start")]
pub extern "C" fn _start(workload: u64, arg: u64, vcpu: u64) -> ! {
    let status = match (workload, vcpu) {
        (workload::SMOKE, 0) => smoke::run(arg),
        (workload::SMOKE, _) => idle(),
        _ => 0xbad0_0000 | workload,
    };
    exit(status)
}

/// A vCPU with nothing to do halts until the VM stops.
fn idle() -> ! {
    loop {
        // SAFETY: hlt waits for an interrupt; no state is touched.
        unsafe { core::arch::asm!("hlt") };
    }
}

/// Ends the VM with `status` (0 = success).
fn exit(status: u64) -> ! {
    mmio::write_u32(CONTROL_EXIT, status as u32);
    idle()
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    exit(0xdead)
}
