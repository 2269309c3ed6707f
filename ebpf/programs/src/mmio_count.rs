//! `kvm:kvm_mmio`: count one VMM's MMIO writes inside a guest-physical window.
//!
//! The first program of the project and the smoke test of the whole chain
//! (build, load, attach, map read-back). The filter is set by the controller.

use aya_ebpf::{
    EbpfContext,
    macros::map,
    maps::{Array, PerCpuArray},
    programs::TracePointContext,
};
use xevtchn_common::{doorbell::KVM_TRACE_MMIO_WRITE, wire::MmioFilter};

/// Which process and which guest-physical window to count (index 0).
#[map]
static MMIO_FILTER: Array<MmioFilter> = Array::with_max_entries(1, 0);

/// Writes counted (index 0), per CPU; the controller sums the CPUs.
#[map]
static MMIO_WRITES: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

// Field offsets from /sys/kernel/tracing/events/kvm/kvm_mmio/format.
const TYPE_OFFSET: usize = 8;
const GPA_OFFSET: usize = 16;

passing_tracepoint!(kvm_mmio_count, try_kvm_mmio_count);

fn try_kvm_mmio_count(ctx: &TracePointContext) -> Result<(), i64> {
    let Some(filter) = MMIO_FILTER.get(0) else {
        return Ok(());
    };
    if ctx.tgid() != filter.tgid {
        return Ok(());
    }
    // SAFETY: the offsets come from the tracepoint's format file; read_at is a
    // bpf_probe_read of the tracepoint record, checked by the kernel.
    let kind: u32 = unsafe { ctx.read_at(TYPE_OFFSET)? };
    // SAFETY: as above.
    let gpa: u64 = unsafe { ctx.read_at(GPA_OFFSET)? };
    if kind != KVM_TRACE_MMIO_WRITE || gpa < filter.gpa_start || gpa >= filter.gpa_end {
        return Ok(());
    }
    if let Some(count) = MMIO_WRITES.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, no other writer while this program runs on
        // this CPU (tracepoint programs run with preemption disabled).
        unsafe { *count += 1 };
    }
    Ok(())
}
