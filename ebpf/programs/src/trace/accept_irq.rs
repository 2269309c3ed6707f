//! `kvm:kvm_apic_accept_irq`: an injection. Joined to the send pending in
//! this thread (send -> inject); timed ones are stamped for their EOI
//! (inject -> EOI).

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use xevtchn_common::trace::{EVENT_SEND, IrqKey, TraceEvent, XEN_HYPERCALL_RECORD};

use super::maps::{
    InjectionStamp, LAST_INJECTION, current, emit, injection_slot, irq_counters, now, pending_send, record, timed,
    traced, vm_counters,
};

/// Raw: TP_PROTO(__u32 apicid, __u16 dm, __u16 tm, __u8 vec) (arch/x86/kvm/trace.h).
#[raw_tracepoint(tracepoint = "kvm_apic_accept_irq")]
pub fn trace_kvm_apic_accept_irq(ctx: RawTracePointContext) -> i32 {
    let _ = try_accept(&ctx);
    0
}

fn try_accept(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (tgid, tid) = current();
    let Some(config) = traced(tgid) else { return Ok(()) };
    let apicid = ctx.arg::<u64>(0) as u32;
    let vector = ctx.arg::<u64>(3) as u32 & 0xff;
    let key = IrqKey { tgid, apicid, vector, _pad: 0 };
    // The send this injection answers, consumed: (sent at, via userspace,
    // port, CPU).
    let mut sent: Option<(u64, u32, u32, u32)> = None;
    if let Some(pending) = pending_send(tid)
        && pending.tid == tid
    {
        pending.tid = 0;
        sent = Some((pending.ns, pending.via_userspace, pending.port, pending.cpu));
    }
    if let Some((_, 1, _, _)) = sent
        && let Some(vm) = vm_counters(tgid)
    {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        unsafe { (*vm).userspace_sends_injected += 1 };
    }
    let sent_ns = sent.map_or(0, |(ns, ..)| ns);
    let Some(c) = irq_counters(&key) else { return Ok(()) };
    // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
    let c = unsafe { &mut *c };
    c.injections += 1;
    // Time it if its send was timed, or as one of this key's injections.
    if sent_ns == 0 && !timed(config, c.injections) {
        return Ok(());
    }
    let t = now();
    if sent_ns != 0 {
        record(&mut c.send_to_inject, t.saturating_sub(sent_ns));
    }
    if let (Some((ns, via_userspace, port, cpu)), true) = (sent, config.events != 0) {
        emit(&TraceEvent {
            kind: EVENT_SEND,
            tgid,
            tid,
            apicid,
            vector,
            via_userspace,
            port,
            cpu,
            send_ns: ns,
            inject_ns: t,
            record: [0; XEN_HYPERCALL_RECORD],
        });
    }
    if let Some(slot) = LAST_INJECTION.get_ptr_mut(injection_slot(apicid, vector)) {
        // SAFETY: a shared slot; a torn stamp at worst mis-times one sample.
        unsafe { *slot = InjectionStamp { tgid, _pad: 0, ns: t } };
    }
    Ok(())
}
