//! `kvm:kvm_userspace_exit`: exits to the VMM; a pending send in the
//! exiting thread took the userspace path.

use aya_ebpf::{EbpfContext, macros::raw_tracepoint, programs::RawTracePointContext};

use super::maps::{PENDING_SEND, traced, vm_counters};

/// KVM_EXIT_MMIO (include/uapi/linux/kvm.h).
const KVM_EXIT_MMIO: u32 = 6;

/// Raw: TP_PROTO(__u32 reason, int errno).
#[raw_tracepoint(tracepoint = "kvm_userspace_exit")]
pub fn trace_kvm_userspace_exit(ctx: RawTracePointContext) -> i32 {
    let _ = try_exit(&ctx);
    0
}

fn try_exit(ctx: &RawTracePointContext) -> Result<(), i64> {
    if traced(ctx).is_none() {
        return Ok(());
    }
    let reason = ctx.arg::<u64>(0) as u32;
    let slot = PENDING_SEND.get_ptr_mut(0);
    // SAFETY: this CPU's slot; preemption is off in tracepoints.
    let pending = slot.is_some_and(|s| unsafe { (*s).ns != 0 && (*s).id == ctx.pid() });
    if pending
        && reason == KVM_EXIT_MMIO
        && let Some(s) = slot
    {
        // SAFETY: as above.
        unsafe { (*s).flags = 1 };
    }
    if let Some(c) = vm_counters(ctx.tgid()) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        unsafe {
            (*c).userspace_exits += 1;
            if pending && reason == KVM_EXIT_MMIO {
                (*c).sends_to_userspace += 1;
            }
        }
    }
    Ok(())
}
