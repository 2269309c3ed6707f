//! `kvm:kvm_mmio`: a doorbell write of the VMM's guest is EVTCHNOP_send on
//! a served port, done here, in the sending vCPU's thread, before KVM's I/O
//! bus write. The 2-level algorithm (xevtchn_common::two_level) runs with
//! BPF atomics on the shared_info page, which lives in `SHARED_INFO`, a
//! BPF_F_MMAPABLE map the controller maps into the guest. KVM's ioeventfd
//! on the doorbell then signals the port's eventfd, whose irqfd injects
//! the upcall: no userspace on the path. The contract (what a doorbell
//! is, the map layouts) is `xevtchn_common::doorbell`.

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_F_MMAPABLE,
    helpers::{bpf_get_smp_processor_id, bpf_probe_read_kernel},
    macros::{map, raw_tracepoint},
    maps::Array,
    programs::RawTracePointContext,
};
use aya_log_ebpf::debug;
use xevtchn_common::{
    doorbell::{
        CANARY_PORT, CpuActivity, DOORBELL_STRIDE, DOORBELL_WIDTH, DoorbellConfig, KVM_TRACE_MMIO_WRITE, PortEntry,
        stat,
    },
    two_level::{NR_PORTS, set_pending},
    wire::SharedInfoWords,
};

use crate::atomics::{MapWords, add, load};

#[map]
static DOORBELL_CONFIG: Array<DoorbellConfig> = Array::with_max_entries(1, 0);

/// Per port: served in the kernel or not, delivery port, target vCPU. The
/// controller maps it and stores entries atomically.
#[map]
static DOORBELL_PORTS: Array<PortEntry> = Array::with_max_entries(NR_PORTS, BPF_F_MMAPABLE);

/// The shared_info page (mapped into the guest by the controller).
#[map]
static SHARED_INFO: Array<SharedInfoWords> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// Counters (`doorbell::stat`); the controller sizes it to the VM's vCPUs
/// and maps it, as does `xevtchn trace`.
#[map]
static DOORBELL_STATS: Array<u64> = Array::with_max_entries(stat::entries(1), BPF_F_MMAPABLE);

/// Per CPU: programs entered and left (`doorbell::CpuActivity`); the
/// controller sizes it to the host's possible CPUs and maps it.
#[map]
static DOORBELL_ACTIVE: Array<CpuActivity> = Array::with_max_entries(1, BPF_F_MMAPABLE);

/// A raw tracepoint: no perf-event submission on this hot path, and no
/// effect on what perf sees of kvm_mmio. Arguments: TP_PROTO(int type,
/// int len, u64 gpa, void *val) (include/trace/events/kvm.h).
#[raw_tracepoint(tracepoint = "kvm_mmio")]
pub fn kvm_mmio_doorbell(ctx: RawTracePointContext) -> i32 {
    let _ = try_doorbell(&ctx);
    0
}

#[inline(always)]
fn count(index: u32) {
    if let Some(counter) = DOORBELL_STATS.get_ptr_mut(index) {
        add(counter, 1);
    }
}

fn try_doorbell(ctx: &RawTracePointContext) -> Result<(), i64> {
    let Some(config) = DOORBELL_CONFIG.get(0) else {
        return Ok(());
    };
    if config.enabled == 0 || ctx.tgid() != config.host_tgid {
        return Ok(());
    }
    let kind = ctx.arg::<u64>(0) as u32;
    let gpa = ctx.arg::<u64>(2);
    if kind != KVM_TRACE_MMIO_WRITE || gpa < config.doorbell_base {
        return Ok(());
    }
    let offset = gpa - config.doorbell_base;
    if offset >= u64::from(NR_PORTS) * DOORBELL_STRIDE {
        return Ok(());
    }
    let port = (offset / DOORBELL_STRIDE) as u32;
    // Only what the ioeventfd completes (4 bytes, the port's number):
    // anything else exits to userspace, which decides alone.
    let len = ctx.arg::<u64>(1) as u32;
    // SAFETY: `val` is the kernel buffer holding the written bytes (len >= 4
    // checked first); bpf_probe_read_kernel copes with any pointer.
    let value = if len == DOORBELL_WIDTH { unsafe { bpf_probe_read_kernel(ctx.arg::<*const u32>(3)) } } else { Err(0) };
    if !offset.is_multiple_of(DOORBELL_STRIDE) || value != Ok(port) {
        count(stat::BAD_WRITE);
        return Ok(());
    }
    if port == CANARY_PORT {
        count(stat::CANARY);
        // Once per VM start: off the hot path.
        debug!(ctx, "canary doorbell of VMM {}", ctx.tgid());
        return Ok(());
    }
    // SAFETY: a helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let active = DOORBELL_ACTIVE.get_ptr_mut(cpu).map(|a| a.cast::<u64>());
    if let Some(seq) = active {
        add(seq, 1);
    }
    send(port);
    if let Some(seq) = active {
        add(seq, 1);
    }
    Ok(())
}

/// Between the two steps of this CPU's activity count: the controller's
/// grace period covers every entry read here.
#[inline(always)]
fn send(port: u32) {
    let Some(slot) = DOORBELL_PORTS.get_ptr(port) else { return };
    let entry = PortEntry(load(slot.cast::<u64>()));
    if !entry.is_served() {
        count(stat::NOT_FAST);
        return;
    }
    let Some(page) = SHARED_INFO.get_ptr_mut(0) else { return };
    // Through the stack: LLVM would otherwise test the bound on the whole
    // entry and index with a copy the verifier cannot bound.
    let vcpu = entry.vcpu();
    // SAFETY: a read of a local.
    let vcpu = unsafe { core::ptr::read_volatile(&vcpu) };
    let outcome = set_pending(&MapWords(page), entry.deliver(), vcpu);
    if !entry.is_armed() {
        count(stat::UNARMED);
    }
    count(stat::vcpu_outcome(vcpu, outcome));
}
