//! `kvm:kvm_msi_set_irq`, `kvm:kvm_set_irq`, `kvm:kvm_vcpu_wakeup`: counted per VM.

use aya_ebpf::{EbpfContext, programs::TracePointContext};
use xevtchn_common::trace::VmCounters;

use super::maps::{traced, vm_counters};

#[inline(always)]
fn bump(ctx: &TracePointContext, field: fn(&mut VmCounters) -> &mut u64) -> Result<(), i64> {
    if traced(ctx).is_some()
        && let Some(c) = vm_counters(ctx.tgid())
    {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        *field(unsafe { &mut *c }) += 1;
    }
    Ok(())
}

fn msi(ctx: &TracePointContext) -> Result<(), i64> {
    bump(ctx, |c| &mut c.msi_set_irq)
}

fn set_irq(ctx: &TracePointContext) -> Result<(), i64> {
    bump(ctx, |c| &mut c.set_irq)
}

fn wakeup(ctx: &TracePointContext) -> Result<(), i64> {
    bump(ctx, |c| &mut c.vcpu_wakeups)
}

passing_tracepoint!(trace_kvm_msi_set_irq, msi);
passing_tracepoint!(trace_kvm_set_irq, set_irq);
passing_tracepoint!(trace_kvm_vcpu_wakeup, wakeup);
