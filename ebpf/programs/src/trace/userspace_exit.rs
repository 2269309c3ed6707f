//! `kvm:kvm_userspace_exit`: exits to the VMM; a pending send in the
//! exiting thread took the userspace path.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

use super::maps::{current, pending_send, traced, vm_counters};

/// KVM_EXIT_IO and KVM_EXIT_MMIO (include/uapi/linux/kvm.h): how a
/// doorbell (port I/O or MMIO) that no ioeventfd took exits.
const KVM_EXIT_IO: u32 = 2;
const KVM_EXIT_MMIO: u32 = 6;

/// Raw: TP_PROTO(__u32 reason, int errno).
#[raw_tracepoint(tracepoint = "kvm_userspace_exit")]
pub fn trace_kvm_userspace_exit(ctx: RawTracePointContext) -> i32 {
    let _ = try_exit(&ctx);
    0
}

fn try_exit(ctx: &RawTracePointContext) -> Result<(), i64> {
    let (tgid, tid) = current();
    if traced(tgid).is_none() {
        return Ok(());
    }
    let reason = ctx.arg::<u64>(0) as u32;
    let mut send_exited = false;
    if (reason == KVM_EXIT_MMIO || reason == KVM_EXIT_IO)
        && let Some(pending) = pending_send(tid)
        && pending.tid == tid
        && pending.via_userspace == 0
    {
        pending.via_userspace = 1;
        send_exited = true;
    }
    if let Some(c) = vm_counters(tgid) {
        // SAFETY: a per-CPU value of this CPU; preemption is off in tracepoints.
        unsafe {
            (*c).userspace_exits += 1;
            if send_exited {
                (*c).sends_to_userspace += 1;
            }
        }
    }
    Ok(())
}
