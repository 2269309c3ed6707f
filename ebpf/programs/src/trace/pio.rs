//! `kvm:kvm_pio`: every port I/O event counts; a write to a port-I/O
//! doorbell (what CPL0 guests ring, see xevtchn_common::doorbell) is a
//! send, like an MMIO doorbell write.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use xevtchn_common::doorbell::{KVM_TRACE_PIO_OUT, PIO_DOORBELL_BASE, PIO_DOORBELL_END, PIO_DOORBELL_STRIDE};

use super::{
    maps::{current, traced, vm_counters},
    mmio::doorbell_access,
};

/// Raw: TP_PROTO(unsigned int rw, unsigned int port, unsigned int size,
/// unsigned int count, const void *data).
#[raw_tracepoint(tracepoint = "kvm_pio")]
pub fn trace_kvm_pio(ctx: RawTracePointContext) -> i32 {
    let _ = try_pio(&ctx);
    0
}

fn try_pio(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (tgid, tid) = current();
    let Some(config) = traced(tgid) else { return Ok(()) };
    if let Some(c) = vm_counters(tgid) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        unsafe { (*c).pio += 1 };
    }
    let rw = ctx.arg::<u64>(0) as u32;
    let io_port = ctx.arg::<u64>(1) as u32;
    // Port 0's doorbell is the VMM's canary, never a send.
    let first = PIO_DOORBELL_BASE as u32 + PIO_DOORBELL_STRIDE as u32;
    let send = rw == KVM_TRACE_PIO_OUT && (first..PIO_DOORBELL_END).contains(&io_port);
    let port = io_port.wrapping_sub(PIO_DOORBELL_BASE as u32) / PIO_DOORBELL_STRIDE as u32;
    doorbell_access(config, tgid, tid, send, port);
    Ok(())
}
