//! `kvm:kvm_eoi`: the guest finished an interrupt (inject -> EOI).

use aya_ebpf::{EbpfContext, programs::TracePointContext};
use xevtchn_common::trace::IrqKey;

use super::maps::{LAST_INJECTION, injection_slot, irq_counters, now, record, traced};

passing_tracepoint!(trace_kvm_eoi, try_eoi);

fn try_eoi(ctx: &TracePointContext) -> Result<(), i64> {
    if traced(ctx).is_none() {
        return Ok(());
    }
    // SAFETY: offsets from /sys/kernel/tracing/events/kvm/kvm_eoi/format.
    let apicid: u32 = unsafe { ctx.read_at(8)? };
    // SAFETY: as above.
    let vector: i32 = unsafe { ctx.read_at(12)? };
    let key = IrqKey { tgid: ctx.tgid(), apicid, vector: vector as u32, _pad: 0 };
    let slot = LAST_INJECTION.get_ptr_mut(injection_slot(apicid, key.vector));
    // SAFETY: a shared slot, read once; a stamp of another VM joins nothing.
    let injected = slot.and_then(|p| unsafe { ((*p).ns != 0 && (*p).id == key.tgid).then(|| (*p).ns) });
    if let Some(c) = irq_counters(&key) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        let c = unsafe { &mut *c };
        c.eois += 1;
        if let Some(injected) = injected {
            record(&mut c.inject_to_eoi, now().saturating_sub(injected));
        }
    }
    if let (Some(_), Some(p)) = (injected, slot) {
        // SAFETY: as above; the injection is joined, so it is consumed.
        unsafe { (*p).ns = 0 };
    }
    Ok(())
}
