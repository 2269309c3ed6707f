//! The tracing maps and the helpers the hooks share.

use aya_ebpf::{
    EbpfContext,
    macros::map,
    maps::{Array, PerCpuArray, RingBuf},
};
use xevtchn_common::trace::{
    IRQ_SLOTS, IrqCounters, IrqKey, IrqSlot, TraceConfig, VM_SLOTS, VmCounters, VmSlot, bucket, irq_slot, vm_slot,
};

#[map]
pub static TRACE_CONFIG: Array<TraceConfig> = Array::with_max_entries(1, 0);

/// Per-VM counters: a per-CPU array (cheaper than a hash on the hot path),
/// slot `vm_slot(tgid)`, plus the overflow slot.
#[map]
pub static TRACE_VMS: PerCpuArray<VmSlot> = PerCpuArray::with_max_entries(VM_SLOTS + 1, 0);

#[map]
pub static TRACE_IRQS: PerCpuArray<IrqSlot> = PerCpuArray::with_max_entries(IRQ_SLOTS + 1, 0);

/// Sends per port (doorbell index), per CPU. Keyed by port alone, so with
/// several traced VMs their ports add up (`--pid` separates them).
#[map]
pub static TRACE_PORT_SENDS: PerCpuArray<u64> = PerCpuArray::with_max_entries(4096, 0);

/// The event stream (`xevtchn trace --events`).
#[map]
pub static TRACE_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// Events dropped because the ring buffer was full (per CPU, index 0).
#[map]
pub static TRACE_DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Puts `event` on the stream, or counts it as dropped.
#[inline(always)]
pub fn emit(event: &xevtchn_common::trace::TraceEvent) {
    if TRACE_EVENTS.output(event, 0).is_err()
        && let Some(drops) = TRACE_DROPS.get_ptr_mut(0)
    {
        // SAFETY: this CPU's slot; preemption is off in tracepoints.
        unsafe { *drops += 1 };
    }
}

/// The last doorbell write on this CPU (thread and time), until an
/// injection in that thread on this CPU joins it. Per-CPU and lock-free:
/// the send and its in-kernel injection run back to back in one thread; a
/// thread that migrated in between leaves its send unjoined.
#[map]
pub static PENDING_SEND: PerCpuArray<Stamp> = PerCpuArray::with_max_entries(1, 0);

/// The last injection per (APIC, vector) slot. The stamp names its VM: a
/// slot another VM reused meanwhile joins nothing. Written only by the
/// injecting side, so that its cache line does not bounce on every EOI.
#[map]
pub static LAST_INJECTION: Array<Stamp> = Array::with_max_entries(INJECTION_SLOTS, 0);

/// The injection time each slot's EOI last joined, written only by the
/// EOI side: an EOI joins an injection once.
#[map]
pub static LAST_JOINED: Array<u64> = Array::with_max_entries(INJECTION_SLOTS, 0);
pub const INJECTION_SLOTS: u32 = 64 * 256;

/// Who and when: a thread (or VM) id and a time; `flags` 1 marks a send
/// that went through a userspace exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Stamp {
    pub id: u32,
    pub flags: u32,
    pub ns: u64,
}

/// The LAST_INJECTION slot of an APIC and vector.
#[inline(always)]
pub fn injection_slot(apicid: u32, vector: u32) -> u32 {
    (apicid % 64) * 256 + (vector % 256)
}

/// The config, if this event's process is traced.
#[inline(always)]
pub fn traced(ctx: &impl EbpfContext) -> Option<TraceConfig> {
    let config = *TRACE_CONFIG.get(0)?;
    if config.enabled == 0 || (config.tgid != 0 && config.tgid != ctx.tgid()) {
        return None;
    }
    Some(config)
}

#[inline(always)]
pub fn vm_counters(tgid: u32) -> Option<*mut VmCounters> {
    let slot = TRACE_VMS.get_ptr_mut(vm_slot(tgid))?;
    // SAFETY: this CPU's copy of the slot; preemption is off in tracepoints.
    unsafe {
        if (*slot).tgid == 0 {
            (*slot).tgid = tgid;
        }
        if (*slot).tgid == tgid {
            return Some(core::ptr::addr_of_mut!((*slot).counters));
        }
    }
    let overflow = TRACE_VMS.get_ptr_mut(VM_SLOTS)?;
    // SAFETY: as above.
    unsafe {
        (*overflow).tgid = u32::MAX;
        Some(core::ptr::addr_of_mut!((*overflow).counters))
    }
}

/// This CPU's counters of `key`, in its slot (claimed on first use) or,
/// when another key holds the slot, in the overflow slot.
#[inline(always)]
pub fn irq_counters(key: &IrqKey) -> Option<*mut IrqCounters> {
    let slot = TRACE_IRQS.get_ptr_mut(irq_slot(key.apicid, key.vector))?;
    // SAFETY: this CPU's copy of the slot; preemption is off in tracepoints.
    unsafe {
        if (*slot).key.tgid == 0 {
            (*slot).key = *key;
        }
        if (*slot).key == *key {
            return Some(core::ptr::addr_of_mut!((*slot).counters));
        }
    }
    let overflow = TRACE_IRQS.get_ptr_mut(IRQ_SLOTS)?;
    // SAFETY: as above.
    unsafe {
        (*overflow).key.tgid = u32::MAX;
        Some(core::ptr::addr_of_mut!((*overflow).counters))
    }
}

/// Adds one to `histogram`'s bucket for `ns`.
#[inline(always)]
pub fn record(histogram: &mut [u64; xevtchn_common::trace::BUCKETS], ns: u64) {
    if let Some(slot) = histogram.get_mut(bucket(ns)) {
        *slot += 1;
    }
}

#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() }
}
