//! `kvm:kvm_msi_set_irq`, `kvm:kvm_set_irq`, `kvm:kvm_vcpu_wakeup`:
//! counted per VM.
//! The hot ones are raw tracepoints (no perf-event submission per event).

use aya_ebpf::{
    macros::raw_tracepoint,
    programs::{RawTracePointContext, TracePointContext},
};
use xevtchn_common::trace::VmCounters;

use super::maps::{current, traced, vm_counters};

#[inline(always)]
fn bump(field: fn(&mut VmCounters) -> &mut u64) -> Result<(), i64> {
    let (tgid, _) = current();
    if traced(tgid).is_some()
        && let Some(c) = vm_counters(tgid)
    {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        *field(unsafe { &mut *c }) += 1;
    }
    Ok(())
}

/// Raw (every in-kernel injection passes here): TP_PROTO(__u64 address, __u64 data).
#[raw_tracepoint(tracepoint = "kvm_msi_set_irq")]
pub fn trace_kvm_msi_set_irq(_ctx: RawTracePointContext) -> i32 {
    let _ = bump(|c| &mut c.msi_set_irq);
    0
}

fn set_irq(_ctx: &TracePointContext) -> Result<(), i64> {
    bump(|c| &mut c.set_irq)
}

/// Raw: TP_PROTO(__u64 ns, bool waited, bool valid).
#[raw_tracepoint(tracepoint = "kvm_vcpu_wakeup")]
pub fn trace_kvm_vcpu_wakeup(_ctx: RawTracePointContext) -> i32 {
    let _ = bump(|c| &mut c.vcpu_wakeups);
    0
}

passing_tracepoint!(trace_kvm_set_irq, set_irq);
