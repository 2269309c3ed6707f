//! `kvm:kvm_mmio`: every MMIO event counts; a doorbell write is a send,
//! pending in its vCPU thread until the injection it causes. `pio` does the
//! same for port I/O and its doorbells.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use xevtchn_common::{
    doorbell::{DOORBELL_STRIDE, KVM_TRACE_MMIO_WRITE},
    trace::TraceConfig,
};

use super::maps::{
    PendingSend, TRACE_PORT_SENDS, TRACE_PORTS_USED, cpu, current, mark_used, now, pending_send, timed, traced,
    vm_counters,
};

/// Raw: TP_PROTO(int type, int len, u64 gpa, void *val).
#[raw_tracepoint(tracepoint = "kvm_mmio")]
pub fn trace_kvm_mmio(ctx: RawTracePointContext) -> i32 {
    let _ = try_mmio(&ctx);
    0
}

fn try_mmio(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (tgid, tid) = current();
    let Some(config) = traced(tgid) else { return Ok(()) };
    let kind = ctx.arg::<u64>(0) as u32;
    let gpa = ctx.arg::<u64>(2);
    // Port 0's doorbell is the VMM's canary, never a send (Xen reserves port 0).
    let send =
        kind == KVM_TRACE_MMIO_WRITE && gpa >= config.doorbell_base + DOORBELL_STRIDE && gpa < config.doorbell_end;
    if let Some(c) = vm_counters(tgid) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        unsafe { (*c).mmio += 1 };
    }
    let port = ((gpa.wrapping_sub(config.doorbell_base)) / DOORBELL_STRIDE) as u32;
    doorbell_access(config, tgid, tid, send, port);
    Ok(())
}

/// An access of a vCPU thread that may be a doorbell write (`send`, on
/// `port`): the VM's and the port's send counts, and the send pending in
/// the thread until its injection. Port I/O doorbells (`pio`) come here too.
#[inline(always)]
pub(super) fn doorbell_access(config: &TraceConfig, tgid: u32, tid: u32, send: bool, port: u32) {
    if send && let Some(c) = vm_counters(tgid) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        unsafe { (*c).sends += 1 };
    }
    if send && let Some(count) = TRACE_PORT_SENDS.get_ptr_mut(port) {
        // SAFETY: a per-CPU slot of this CPU; preemption is off in tracepoints.
        unsafe { *count += 1 };
        mark_used(&TRACE_PORTS_USED, port);
    }
    let Some(pending) = pending_send(tid) else { return };
    if send {
        let seq = pending.seq.wrapping_add(1);
        let ns = if timed(config, seq) { now() } else { 0 };
        let cpu = if config.events != 0 { cpu() } else { 0 };
        *pending = PendingSend { tid, via_userspace: 0, port, cpu, ns, seq };
    } else if pending.tid == tid {
        // The thread moved on without an injection (the send coalesced in
        // userspace): no later injection may join it.
        pending.tid = 0;
    }
}
