//! `kvm:kvm_mmio`: every MMIO event counts; a doorbell write is a send,
//! stamped per vCPU thread until the injection it causes.

use aya_ebpf::{EbpfContext, macros::raw_tracepoint, programs::RawTracePointContext};
use xevtchn_common::wire::KVM_TRACE_MMIO_WRITE;

use super::maps::{PENDING_SEND, Stamp, TRACE_PORT_SENDS, now, traced, vm_counters};

const DOORBELL_STRIDE: u64 = xevtchn_common::layout::DOORBELL_STRIDE;

/// Raw: TP_PROTO(int type, int len, u64 gpa, void *val).
#[raw_tracepoint(tracepoint = "kvm_mmio")]
pub fn trace_kvm_mmio(ctx: RawTracePointContext) -> i32 {
    let _ = try_mmio(&ctx);
    0
}

fn try_mmio(ctx: &RawTracePointContext) -> Result<(), i64> {
    let Some(config) = traced(ctx) else { return Ok(()) };
    let kind = ctx.arg::<u64>(0) as u32;
    let gpa = ctx.arg::<u64>(2);
    let send = kind == KVM_TRACE_MMIO_WRITE && gpa >= config.doorbell_base && gpa < config.doorbell_end;
    if let Some(c) = vm_counters(ctx.tgid()) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        unsafe {
            (*c).mmio += 1;
            if send {
                (*c).sends += 1;
            }
        }
    }
    if send && let Some(count) = TRACE_PORT_SENDS.get_ptr_mut(((gpa - config.doorbell_base) / DOORBELL_STRIDE) as u32) {
        // SAFETY: a per-CPU slot of this CPU; preemption is off in tracepoints.
        unsafe { *count += 1 };
    }
    if send && let Some(slot) = PENDING_SEND.get_ptr_mut(0) {
        // SAFETY: this CPU's slot; preemption is off in tracepoints.
        unsafe { *slot = Stamp { id: ctx.pid(), flags: 0, ns: now() } };
    }
    Ok(())
}
