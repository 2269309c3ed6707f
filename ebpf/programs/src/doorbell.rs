//! `kvm:kvm_mmio`: a doorbell write of a registered VM is EVTCHNOP_send on
//! a served port, done here, in the sending vCPU's thread, before KVM's I/O
//! bus write. One program serves every VM of the host (or of one process):
//! each VM has its own maps, found by its VMM's host tgid. The 2-level
//! algorithm (xevtchn_common::two_level) runs with BPF atomics on the VM's
//! shared_info page, the first page of its state map, which its VMM maps
//! into the guest. KVM's ioeventfd on the doorbell then signals the port's
//! eventfd, whose irqfd injects the upcall: no userspace on the path.
//! `kvm:kvm_pio` does the same for the port-I/O doorbells CPL0 code rings.
//! The contract (what a doorbell is, the map layouts) is
//! `xevtchn_common::doorbell`.

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC},
    btf_maps::{Array, HashOfMaps},
    helpers::{bpf_get_smp_processor_id, bpf_probe_read_kernel},
    macros::{btf_map, raw_tracepoint},
    programs::RawTracePointContext,
};
use aya_log_ebpf::debug;
use xevtchn_common::{
    doorbell::{
        CANARY_PORT, CpuActivity, DOORBELL_BASE, DOORBELL_END, DOORBELL_STRIDE, DOORBELL_WIDTH, KVM_TRACE_MMIO_WRITE,
        KVM_TRACE_PIO_OUT, MAX_VMS, PIO_DOORBELL_BASE, PIO_DOORBELL_END, PIO_DOORBELL_STRIDE, PIO_DOORBELL_VALUE,
        PortEntry, VmState, VmStats, stat,
    },
    two_level::set_pending,
};

use crate::atomics::{MapWords, add, load};

const MMAPABLE: usize = BPF_F_MMAPABLE as usize;
/// Removed entries are freed after an RCU grace period, never reused
/// under a running program: a lookup cannot find another VM's map.
const NO_PREALLOC: usize = BPF_F_NO_PREALLOC as usize;

/// Each VM's state (shared_info, port entries), by its VMM's host tgid.
#[btf_map]
static VM_STATE: HashOfMaps<u32, Array<VmState, 1, MMAPABLE>, { MAX_VMS as usize }, NO_PREALLOC> = HashOfMaps::new();

/// Each VM's counters (`doorbell::stat`), by its VMM's host tgid.
#[btf_map]
static VM_STATS: HashOfMaps<u32, Array<VmStats, 1, MMAPABLE>, { MAX_VMS as usize }, NO_PREALLOC> = HashOfMaps::new();

/// Per CPU: programs entered and left (`doorbell::CpuActivity`); the
/// loader sizes it to the host's possible CPUs, and VMMs map it.
#[btf_map]
static DOORBELL_ACTIVE: Array<CpuActivity, 1, MMAPABLE> = Array::new();

/// A raw tracepoint: no perf-event submission on this hot path, and no
/// effect on what perf sees of kvm_mmio. Arguments: TP_PROTO(int type,
/// int len, u64 gpa, void *val) (include/trace/events/kvm.h).
#[raw_tracepoint(tracepoint = "kvm_mmio")]
pub fn kvm_mmio_doorbell(ctx: RawTracePointContext) -> i32 {
    let _ = try_doorbell(&ctx);
    0
}

#[inline(always)]
fn count(stats: *mut VmStats, index: u32) {
    // Through the stack, so that the bound is tested on the value used
    // (LLVM would otherwise test a part of the sum before adding the rest).
    // SAFETY: a read of a local.
    let index = unsafe { core::ptr::read_volatile(&index) };
    if index < stat::entries(xevtchn_common::two_level::SHARED_INFO_VCPUS) {
        // SAFETY: `stats` is this VM's counters value; `index` is in bounds.
        add(unsafe { (*stats).words.as_mut_ptr().add(index as usize) }, 1);
    }
}

fn try_doorbell(ctx: &RawTracePointContext) -> Result<(), i64> {
    // Every MMIO exit of every VM on the host comes here: the cheap
    // window test first, then the VM's maps.
    let kind = ctx.arg::<u64>(0) as u32;
    let gpa = ctx.arg::<u64>(2);
    if kind != KVM_TRACE_MMIO_WRITE || !(DOORBELL_BASE..DOORBELL_END).contains(&gpa) {
        return Ok(());
    }
    let offset = gpa - DOORBELL_BASE;
    let port = (offset / DOORBELL_STRIDE) as u32;
    // Only what the ioeventfd completes (4 bytes, the port's number):
    // anything else exits to userspace, which decides alone.
    let len = ctx.arg::<u64>(1) as u32;
    // SAFETY: `val` is the kernel buffer holding the written bytes (len >= 4
    // checked first); bpf_probe_read_kernel copes with any pointer.
    let value = if len == DOORBELL_WIDTH { unsafe { bpf_probe_read_kernel(ctx.arg::<*const u32>(3)) } } else { Err(0) };
    ring(ctx, port, offset.is_multiple_of(DOORBELL_STRIDE) && value == Ok(port));
    Ok(())
}

/// A raw tracepoint on port I/O: TP_PROTO(unsigned int rw, unsigned int
/// port, unsigned int size, unsigned int count, const void *data)
/// (arch/x86/kvm/trace.h), fired before KVM's I/O bus write of an `out`.
#[raw_tracepoint(tracepoint = "kvm_pio")]
pub fn kvm_pio_doorbell(ctx: RawTracePointContext) -> i32 {
    let _ = try_pio_doorbell(&ctx);
    0
}

fn try_pio_doorbell(ctx: &RawTracePointContext) -> Result<(), i64> {
    let rw = ctx.arg::<u64>(0) as u32;
    let io_port = ctx.arg::<u64>(1) as u32;
    if rw != KVM_TRACE_PIO_OUT || !(PIO_DOORBELL_BASE as u32..PIO_DOORBELL_END).contains(&io_port) {
        return Ok(());
    }
    let offset = io_port - PIO_DOORBELL_BASE as u32;
    let port = offset / PIO_DOORBELL_STRIDE as u32;
    // One 4-byte `out` of 0 is what the ioeventfd completes.
    let (size, count) = (ctx.arg::<u64>(2) as u32, ctx.arg::<u64>(3) as u32);
    let value = if size == DOORBELL_WIDTH && count == 1 {
        // SAFETY: `data` is KVM's buffer of the bytes written (4 of them);
        // bpf_probe_read_kernel copes with any pointer.
        unsafe { bpf_probe_read_kernel(ctx.arg::<*const u32>(4)) }
    } else {
        Err(0)
    };
    ring(ctx, port, offset.is_multiple_of(PIO_DOORBELL_STRIDE as u32) && value == Ok(PIO_DOORBELL_VALUE));
    Ok(())
}

/// A write inside a doorbell window of the VM of the current process:
/// `well_formed` says whether it is exactly a doorbell of `port`.
#[inline(always)]
fn ring(ctx: &RawTracePointContext, port: u32, well_formed: bool) {
    let tgid = ctx.tgid();
    // SAFETY: the entries are freed only after an RCU grace period
    // (NO_PREALLOC), so the inner maps found stay this VM's for this run.
    let (Some(state), Some(stats)) =
        (unsafe { VM_STATE.get_value_ptr_mut(&tgid, &0) }, unsafe { VM_STATS.get_value_ptr_mut(&tgid, &0) })
    else {
        return;
    };
    if !well_formed {
        count(stats, stat::BAD_WRITE);
        return;
    }
    if port == CANARY_PORT {
        count(stats, stat::CANARY);
        // Once per VM start: off the hot path.
        debug!(ctx, "canary doorbell of VMM {}", tgid);
        return;
    }
    // SAFETY: a helper without arguments.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    let active = DOORBELL_ACTIVE.get_ptr_mut(cpu).map(|a| a.cast::<u64>());
    if let Some(seq) = active {
        add(seq, 1);
    }
    send(state, stats, port);
    if let Some(seq) = active {
        add(seq, 1);
    }
}

/// Between the two steps of this CPU's activity count: the controller's
/// grace period covers every entry read here.
#[inline(always)]
fn send(state: *mut VmState, stats: *mut VmStats, port: u32) {
    // Through the stack, so that LLVM keeps the bound test of `get` (it
    // would drop it, knowing the window, in a form the verifier cannot follow).
    // SAFETY: a read of a local.
    let port = unsafe { core::ptr::read_volatile(&port) };
    // SAFETY: `state` is this VM's value; `get` checks `port`.
    let Some(slot) = (unsafe { (*state).ports.get(port as usize) }) else { return };
    let entry = PortEntry(load(slot));
    if !entry.is_served() {
        count(stats, stat::NOT_FAST);
        return;
    }
    // Through the stack: LLVM would otherwise test the bound on the whole
    // entry and index with a copy the verifier cannot bound.
    let vcpu = entry.vcpu();
    // SAFETY: a read of a local.
    let vcpu = unsafe { core::ptr::read_volatile(&vcpu) };
    // SAFETY: shared_info is the first member of this VM's value.
    let page = unsafe { core::ptr::addr_of_mut!((*state).shared_info) };
    let outcome = set_pending(&MapWords(page), entry.deliver(), vcpu);
    if !entry.is_armed() {
        count(stats, stat::UNARMED);
    }
    count(stats, stat::vcpu_outcome(vcpu, outcome));
}
