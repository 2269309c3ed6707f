//! `kvm:kvm_eoi`: the guest finished an interrupt (inject -> EOI).

use aya_ebpf::programs::TracePointContext;
use xevtchn_common::trace::IrqKey;

use super::maps::{LAST_INJECTION, LAST_JOINED, current, injection_slot, irq_counters, now, record, traced};

passing_tracepoint!(trace_kvm_eoi, try_eoi);

fn try_eoi(ctx: &TracePointContext) -> Result<(), i64> {
    let (tgid, _) = current();
    if traced(tgid).is_none() {
        return Ok(());
    }
    // SAFETY: offsets from /sys/kernel/tracing/events/kvm/kvm_eoi/format.
    let apicid: u32 = unsafe { ctx.read_at(8)? };
    // SAFETY: as above.
    let vector: i32 = unsafe { ctx.read_at(12)? };
    let key = IrqKey { tgid, apicid, vector: vector as u32, _pad: 0 };
    let index = injection_slot(apicid, key.vector);
    // The timed injection this EOI completes, once: a stamp of another VM,
    // or one this slot's EOIs already joined, joins nothing. (Plain branches: the
    // verifier rejected what Option combinators compiled to here.)
    let mut injected: u64 = 0;
    if let (Some(stamp), Some(joined)) = (LAST_INJECTION.get(index), LAST_JOINED.get_ptr_mut(index)) {
        let ns = stamp.ns;
        // SAFETY: `joined` is written only here, by the EOIing side.
        if ns != 0 && stamp.tgid == tgid && unsafe { *joined } != ns {
            injected = ns;
            // SAFETY: as above.
            unsafe { *joined = ns };
        }
    }
    if let Some(c) = irq_counters(&key) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        let c = unsafe { &mut *c };
        c.eois += 1;
        if injected != 0 {
            record(&mut c.inject_to_eoi, now().saturating_sub(injected));
        }
    }
    Ok(())
}
