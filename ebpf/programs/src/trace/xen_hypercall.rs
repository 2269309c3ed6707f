//! `kvm:kvm_xen_hypercall` (hosts with CONFIG_KVM_XEN, e.g. QEMU's Xen
//! emulation): counted per VM, and with --events the raw record goes to
//! the controller, which decodes it (minding the a4/a5 bug of older kernels).

use aya_ebpf::programs::TracePointContext;
use xevtchn_common::trace::{EVENT_XEN_HYPERCALL, TraceEvent, XEN_HYPERCALL_RECORD};

use super::maps::{cpu, current, emit, now, traced, vm_counters};

passing_tracepoint!(trace_kvm_xen_hypercall, try_hypercall);

fn try_hypercall(ctx: &TracePointContext) -> Result<(), i64> {
    let (tgid, tid) = current();
    let Some(config) = traced(tgid) else { return Ok(()) };
    if let Some(c) = vm_counters(tgid) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        unsafe { (*c).xen_hypercalls += 1 };
    }
    if config.events == 0 {
        return Ok(());
    }
    let mut event = TraceEvent {
        kind: EVENT_XEN_HYPERCALL,
        tgid,
        tid,
        apicid: 0,
        vector: 0,
        via_userspace: 1,
        port: 0,
        cpu: cpu(),
        send_ns: now(),
        inject_ns: 0,
        record: [0; XEN_HYPERCALL_RECORD],
    };
    // SAFETY: reads the record's first 72 bytes (its fields, per the format file).
    event.record = unsafe { ctx.read_at::<[u8; XEN_HYPERCALL_RECORD]>(0)? };
    emit(&event);
    Ok(())
}
