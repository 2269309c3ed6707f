//! `kvm:kvm_apic_accept_irq`: an injection. Joined to the send pending in
//! this thread (send -> inject), stamped for its EOI (inject -> EOI).

use aya_ebpf::{EbpfContext, programs::TracePointContext};
use xevtchn_common::trace::IrqKey;

use super::maps::{LAST_INJECTION, PENDING_SENDS, irq_counters, now, record, traced, vm_counters};

passing_tracepoint!(trace_kvm_apic_accept_irq, try_accept);

fn try_accept(ctx: &TracePointContext) -> Result<(), i64> {
    if traced(ctx).is_none() {
        return Ok(());
    }
    // SAFETY: offsets from /sys/kernel/tracing/events/kvm/kvm_apic_accept_irq/format.
    let apicid: u32 = unsafe { ctx.read_at(8)? };
    // SAFETY: as above.
    let vector: u8 = unsafe { ctx.read_at(16)? };
    let key = IrqKey { tgid: ctx.tgid(), apicid, vector: u32::from(vector), _pad: 0 };
    let t = now();
    let tid = ctx.pid();
    // SAFETY: a lookup by value; the pointer is not kept.
    let sent = unsafe { PENDING_SENDS.get(&tid) }.copied();
    if let Some(c) = irq_counters(&key) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        let c = unsafe { &mut *c };
        c.injections += 1;
        if let Some(sent) = sent {
            record(&mut c.send_to_inject, t.saturating_sub(sent));
        }
    }
    if sent.is_some() {
        let _ = PENDING_SENDS.remove(&tid);
        if let Some(v) = vm_counters(key.tgid) {
            // SAFETY: as above.
            unsafe { (*v).joined_sends += 1 };
        }
    }
    LAST_INJECTION.insert(&key, &t, 0)?;
    Ok(())
}
