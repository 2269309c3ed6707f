//! What every object's crate root includes: the classic-tracepoint macro,
//! the return value of tracepoint programs, the panic handler and the
//! license the kernel's helpers require.

/// A classic-tracepoint program that returns PASS, unlike aya's
/// `#[tracepoint]` (whose generated entry point always returns 0, which
/// hides the event from perf while the program is attached).
#[allow(unused_macros)]
macro_rules! passing_tracepoint {
    ($name:ident, $handler:path) => {
        #[unsafe(no_mangle)]
        #[unsafe(link_section = "tracepoint")]
        pub fn $name(ctx: *mut ::core::ffi::c_void) -> u32 {
            let _ = $handler(&::aya_ebpf::programs::TracePointContext::new(ctx));
            crate::common::PASS
        }
    };
}

/// What every tracepoint program returns. For a classic tracepoint, 0 would
/// drop the event for every other consumer (perf_trace_run_bpf_submit):
/// `perf stat -e kvm:kvm_mmio` would then count nothing while xevtchn runs.
#[allow(dead_code)]
pub const PASS: u32 = 1;

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
