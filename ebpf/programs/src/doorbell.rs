//! `kvm:kvm_mmio`: a doorbell write of the VMM's guest is EVTCHNOP_send on
//! a fast port, done here, in the sending vCPU's thread, before KVM's I/O
//! bus write. The 2-level algorithm (xevtchn_common::two_level) runs with
//! BPF atomics on the shared_info page, which lives in `SHARED_INFO`, a
//! BPF_F_MMAPABLE map the controller maps into the guest. KVM's ioeventfd
//! on the doorbell then signals the target vCPU's eventfd, whose irqfd
//! injects the upcall: no userspace on the path.

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_F_MMAPABLE,
    macros::{map, raw_tracepoint},
    maps::{Array, PerCpuArray},
    programs::RawTracePointContext,
};
use aya_log_ebpf::warn;
use xevtchn_common::{
    two_level::{OUTCOME_COUNT, raise_on_vcpu, set_pending},
    wire::{DoorbellConfig, KVM_TRACE_MMIO_WRITE, PortEntry, SharedInfoWords, doorbell_stat},
};

use crate::atomics::MapWords;

#[map]
static DOORBELL_CONFIG: Array<DoorbellConfig> = Array::with_max_entries(1, 0);

/// Per port: served in the kernel or not, target vCPU, port set pending.
#[map]
static DOORBELL_PORTS: Array<PortEntry> = Array::with_max_entries(4096, 0);

/// The shared_info page (mapped into the guest by the controller).
#[map]
static SHARED_INFO: Array<SharedInfoWords> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// Outcomes and counters (wire::doorbell_stat), per CPU.
#[map]
static DOORBELL_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(doorbell_stat::COUNT, 0);

/// Fast sends per target vCPU and outcome: index vcpu * OUTCOME_COUNT +
/// outcome. `xevtchn trace` reads it, finding the program by name.
#[map]
static DOORBELL_VCPU_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(32 * OUTCOME_COUNT as u32, 0);

const DOORBELL_STRIDE: u64 = xevtchn_common::layout::DOORBELL_STRIDE;

/// A raw tracepoint: no perf-event submission on this hot path, and no
/// effect on what perf sees of kvm_mmio. Arguments: TP_PROTO(int type,
/// int len, u64 gpa, void *val) (include/trace/events/kvm.h).
#[raw_tracepoint(tracepoint = "kvm_mmio")]
pub fn kvm_mmio_doorbell(ctx: RawTracePointContext) -> i32 {
    let _ = try_doorbell(&ctx);
    0
}

#[inline(always)]
fn count(map: &PerCpuArray<u64>, index: u32) {
    if let Some(counter) = map.get_ptr_mut(index) {
        // SAFETY: a per-CPU slot; tracepoint programs run with preemption
        // disabled, so nothing else writes it meanwhile.
        unsafe { *counter += 1 };
    }
}

fn try_doorbell(ctx: &RawTracePointContext) -> Result<(), i64> {
    let Some(config) = DOORBELL_CONFIG.get(0) else {
        return Ok(());
    };
    if config.enabled == 0 || ctx.tgid() != config.tgid {
        return Ok(());
    }
    let kind = ctx.arg::<u64>(0) as u32;
    let gpa = ctx.arg::<u64>(2);
    if kind != KVM_TRACE_MMIO_WRITE || gpa < config.doorbell_base {
        return Ok(());
    }
    let offset = gpa - config.doorbell_base;
    if offset >= u64::from(config.fast_ports) * DOORBELL_STRIDE {
        return Ok(());
    }
    if offset % DOORBELL_STRIDE != 0 {
        count(&DOORBELL_STATS, doorbell_stat::MISALIGNED);
        // Off the hot path: a guest writing between doorbells is worth a word.
        warn!(ctx, "write at gpa {:x} falls between doorbells", gpa);
        return Ok(());
    }
    let port = (offset / DOORBELL_STRIDE) as u32;
    let entry = match DOORBELL_PORTS.get(port) {
        // Port 0 is reserved: a 0 here is a read torn by an update.
        Some(entry) if entry.fast == 1 && entry.deliver != 0 => *entry,
        _ => {
            count(&DOORBELL_STATS, doorbell_stat::NOT_FAST);
            return Ok(());
        }
    };
    let Some(page) = SHARED_INFO.get_ptr_mut(0) else {
        return Ok(());
    };
    let words = MapWords(page);
    let outcome = set_pending(&words, entry.deliver, entry.vcpu) as u32;
    // The controller may have moved the port (EVTCHNOP_bind_vcpu) since the
    // entry was read: announce the event on the new vCPU as well. The old
    // ioeventfd is gone by the time the entry changes, so the write then
    // either exits to userspace (which raises) or signals the new vCPU.
    if let Some(now) = DOORBELL_PORTS.get(port)
        && now.fast == 1
        && now.deliver != 0
        && (now.vcpu != entry.vcpu || now.deliver != entry.deliver)
    {
        let _ = raise_on_vcpu(&words, now.deliver, now.vcpu);
    }
    count(&DOORBELL_STATS, outcome);
    count(&DOORBELL_STATS, doorbell_stat::FAST_SENDS);
    if entry.vcpu < 32 {
        count(&DOORBELL_VCPU_STATS, entry.vcpu * OUTCOME_COUNT as u32 + outcome);
    }
    Ok(())
}
