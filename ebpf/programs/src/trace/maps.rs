//! The tracing maps and the helpers the hooks share.

use aya_ebpf::{
    EbpfContext,
    macros::map,
    maps::{Array, HashMap, PerCpuHashMap},
};
use xevtchn_common::trace::{IrqCounters, IrqKey, TraceConfig, VmCounters, bucket};

#[map]
pub static TRACE_CONFIG: Array<TraceConfig> = Array::with_max_entries(1, 0);

#[map]
pub static TRACE_VMS: PerCpuHashMap<u32, VmCounters> = PerCpuHashMap::with_max_entries(256, 0);

#[map]
pub static TRACE_IRQS: PerCpuHashMap<IrqKey, IrqCounters> = PerCpuHashMap::with_max_entries(4096, 0);

/// A zeroed IrqCounters to insert from: the value is larger than the BPF
/// stack allows to build on it.
#[map]
static ZERO_IRQ: Array<IrqCounters> = Array::with_max_entries(1, 0);

/// Time of the last doorbell write per vCPU thread (tid), until an
/// injection in that thread joins it.
#[map]
pub static PENDING_SENDS: HashMap<u32, u64> = HashMap::with_max_entries(4096, 0);

/// Time of the last injection per (VM, APIC, vector), until its EOI.
#[map]
pub static LAST_INJECTION: HashMap<IrqKey, u64> = HashMap::with_max_entries(4096, 0);

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
    if let Some(p) = TRACE_VMS.get_ptr_mut(&tgid) {
        return Some(p);
    }
    let _ = TRACE_VMS.insert(&tgid, &VmCounters::default(), 0);
    TRACE_VMS.get_ptr_mut(&tgid)
}

#[inline(always)]
pub fn irq_counters(key: &IrqKey) -> Option<*mut IrqCounters> {
    if let Some(p) = TRACE_IRQS.get_ptr_mut(key) {
        return Some(p);
    }
    let _ = TRACE_IRQS.insert(key, ZERO_IRQ.get(0)?, 0);
    TRACE_IRQS.get_ptr_mut(key)
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
