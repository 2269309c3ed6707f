//! xevtchn's BPF programs. Each hook has its own module; entry points stay
//! thin and the logic lives in `xevtchn-common`.
#![no_std]
#![no_main]
// BPF atomics (fetch_or, fetch_and, xchg) without compare-and-swap.
#![feature(core_intrinsics)]
#![allow(internal_features)]

mod atomics;
mod doorbell;
mod mmio_count;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic; this is never called.
    loop {}
}

/// The kernel requires a GPL-compatible license for the helpers used here.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
