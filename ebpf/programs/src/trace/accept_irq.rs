//! `kvm:kvm_apic_accept_irq`: an injection. Joined to the send pending in
//! this thread (send -> inject), stamped for its EOI (inject -> EOI).

use aya_ebpf::{EbpfContext, macros::raw_tracepoint, programs::RawTracePointContext};
use xevtchn_common::trace::{EVENT_SEND, IrqKey, TraceEvent, XEN_HYPERCALL_RECORD};

use super::maps::{LAST_INJECTION, PENDING_SEND, Stamp, emit, injection_slot, irq_counters, now, record, traced};

/// Raw: TP_PROTO(__u32 apicid, __u16 dm, __u16 tm, __u8 vec) (arch/x86/kvm/trace.h).
#[raw_tracepoint(tracepoint = "kvm_apic_accept_irq")]
pub fn trace_kvm_apic_accept_irq(ctx: RawTracePointContext) -> i32 {
    let _ = try_accept(&ctx);
    0
}

fn try_accept(ctx: &RawTracePointContext) -> Result<(), i64> {
    let Some(config) = traced(ctx) else { return Ok(()) };
    let apicid = ctx.arg::<u64>(0) as u32;
    let vector = ctx.arg::<u64>(3) as u8;
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
    }
    if let Some(slot) = LAST_INJECTION.get_ptr_mut(injection_slot(apicid, key.vector)) {
        // SAFETY: a shared slot; a torn stamp at worst mis-times one sample.
        unsafe { *slot = Stamp { id: key.tgid, flags: 0, ns: t } };
    }
    Ok(())
}
