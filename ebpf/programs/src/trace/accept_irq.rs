//! `kvm:kvm_apic_accept_irq`: an injection. Joined to the send pending in
//! this thread (send -> inject), stamped for its EOI (inject -> EOI).

use aya_ebpf::{EbpfContext, programs::TracePointContext};
use xevtchn_common::trace::{EVENT_SEND, IrqKey, TraceEvent, XEN_HYPERCALL_RECORD};

use super::maps::{
    LAST_INJECTION, PENDING_SEND, Stamp, emit, injection_slot, irq_counters, now, record, traced, vm_counters,
};

passing_tracepoint!(trace_kvm_apic_accept_irq, try_accept);

fn try_accept(ctx: &TracePointContext) -> Result<(), i64> {
    let Some(config) = traced(ctx) else { return Ok(()) };
    // SAFETY: offsets from /sys/kernel/tracing/events/kvm/kvm_apic_accept_irq/format.
    let apicid: u32 = unsafe { ctx.read_at(8)? };
    // SAFETY: as above.
    let vector: u8 = unsafe { ctx.read_at(16)? };
    let key = IrqKey { tgid: ctx.tgid(), apicid, vector: u32::from(vector), _pad: 0 };
    let t = now();
    let tid = ctx.pid();
    let pending = PENDING_SEND.get_ptr_mut(0);
    // SAFETY: this CPU's slot; preemption is off in tracepoints.
    let sent = pending.and_then(|p| unsafe { (*p).ns != 0 && (*p).id == tid }.then(|| unsafe { *p }));
    if let Some(c) = irq_counters(&key) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        let c = unsafe { &mut *c };
        c.injections += 1;
        if let Some(sent) = sent {
            record(&mut c.send_to_inject, t.saturating_sub(sent.ns));
        }
    }
    if let (Some(sent), true) = (sent, config.events != 0) {
        emit(&TraceEvent {
            kind: EVENT_SEND,
            tgid: key.tgid,
            tid,
            apicid,
            vector: key.vector,
            via_userspace: sent.flags,
            send_ns: sent.ns,
            inject_ns: t,
            record: [0; XEN_HYPERCALL_RECORD],
        });
    }
    if let (Some(_), Some(p)) = (sent, pending) {
        // SAFETY: as above; the send is joined, so it is consumed.
        unsafe { (*p).ns = 0 };
        if let Some(v) = vm_counters(key.tgid) {
            // SAFETY: as above.
            unsafe { (*v).joined_sends += 1 };
        }
    }
    if let Some(slot) = LAST_INJECTION.get_ptr_mut(injection_slot(apicid, key.vector)) {
        // SAFETY: a shared slot; a torn stamp at worst mis-times one sample.
        unsafe { *slot = Stamp { id: key.tgid, flags: 0, ns: t } };
    }
    Ok(())
}
