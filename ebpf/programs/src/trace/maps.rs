//! The tracing maps and the helpers the hooks share.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf},
};
use core::intrinsics::{AtomicOrdering, atomic_or};

use xevtchn_common::trace::{
    ENDED_VMS, IRQ_SLOTS, IrqCounters, IrqKey, IrqSlot, PORT_SLOTS, PROBES, TraceConfig, VM_SLOTS, VmCounters, VmSlot,
    bitmap_words, bucket, irq_slot, vm_slot,
};

#[map]
pub static TRACE_CONFIG: Array<TraceConfig> = Array::with_max_entries(1, 0);

/// Per-VM counters: a per-CPU array (cheaper than a hash on the hot path),
/// slot `vm_slot(tgid)`, plus the overflow slot.
#[map]
pub static TRACE_VMS: PerCpuArray<VmSlot> = PerCpuArray::with_max_entries(VM_SLOTS + 1, 0);

#[map]
pub static TRACE_IRQS: PerCpuArray<IrqSlot> = PerCpuArray::with_max_entries(IRQ_SLOTS + 1, 0);

/// VMs whose process has ended, by tgid, written by the controller once
/// it has read their counts for the last time: their slots may be taken
/// over, so that a host running many short VMs never runs out of them.
#[map]
pub static TRACE_ENDED_VMS: HashMap<u32, u8> = HashMap::with_max_entries(ENDED_VMS, 0);

/// A slot held by `tgid` may be taken over: it is free, or its VM ended.
/// The map lookup is made only when another VM holds the slot.
#[inline(always)]
fn free_or_ended(held: u32, tgid: u32) -> bool {
    // SAFETY: the value is not kept past the lookup.
    held == 0 || (held != tgid && held != u32::MAX && unsafe { TRACE_ENDED_VMS.get(&held) }.is_some())
}

/// Sends per port (doorbell index), per CPU. Keyed by port alone, so with
/// several traced VMs their ports add up (`--pid` separates them).
#[map]
pub static TRACE_PORT_SENDS: PerCpuArray<u64> = PerCpuArray::with_max_entries(PORT_SLOTS, 0);

/// The slots of the three maps above that some CPU has used, one bit each:
/// a snapshot reads those alone instead of thousands of empty slots.
#[map]
pub static TRACE_VMS_USED: Array<u64> = Array::with_max_entries(bitmap_words(VM_SLOTS + 1), 0);
#[map]
pub static TRACE_IRQS_USED: Array<u64> = Array::with_max_entries(bitmap_words(IRQ_SLOTS + 1), 0);
#[map]
pub static TRACE_PORTS_USED: Array<u64> = Array::with_max_entries(bitmap_words(PORT_SLOTS), 0);

/// Sets `slot`'s bit in `bitmap` (a load, and an atomic only the first time).
#[inline(always)]
pub fn mark_used(bitmap: &Array<u64>, slot: u32) {
    if let Some(word) = bitmap.get_ptr_mut(slot / 64) {
        let bit = 1u64 << (slot % 64);
        // SAFETY: an aligned u64 of the map's value, shared by all CPUs:
        // read, then set atomically.
        unsafe {
            if core::ptr::read_volatile(word) & bit == 0 {
                atomic_or::<u64, u64, { AtomicOrdering::SeqCst }>(word, bit);
            }
        }
    }
}

/// The event stream (`xevtchn trace --events`).
#[map]
pub static TRACE_EVENTS: RingBuf = RingBuf::with_byte_size(1 << 20, 0);

/// The tgid of each VM a CPU sees for the first time: the controller then
/// looks for its doorbell program at once (its counters go with it).
#[map]
pub static TRACE_NEW_VMS: RingBuf = RingBuf::with_byte_size(4096, 0);

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

/// Each vCPU thread's last doorbell write, until an injection in the same
/// thread joins it or the thread's next MMIO ends it. Slot `tid %
/// SEND_SLOTS`, tagged with the thread: a thread that migrates between its
/// send and the injection (a send through userspace returns to the VMM in
/// between) still finds its slot. A plain array: lookups are inlined.
#[map]
pub static PENDING_SEND: Array<PendingSend> = Array::with_max_entries(SEND_SLOTS, 0);
pub const SEND_SLOTS: u32 = 4096;

/// `tid`'s slot of PENDING_SEND.
#[inline(always)]
pub fn pending_send(tid: u32) -> Option<&'static mut PendingSend> {
    let slot = PENDING_SEND.get_ptr_mut(tid % SEND_SLOTS)?;
    // SAFETY: an in-bounds slot of the map. Only threads whose tids are
    // SEND_SLOTS apart share it; readers check the tag, so sharing (or a
    // write torn by it) at worst drops or mis-times one send's sample.
    Some(unsafe { &mut *slot })
}

/// A cache line each: vCPU threads have consecutive tids, and each slot is
/// written on every send of its thread.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct PendingSend {
    /// The sending thread; 0 (the idle task, never a vCPU): none pending.
    pub tid: u32,
    /// 1 once the send exited to userspace.
    pub via_userspace: u32,
    /// The doorbell's port, and (with --events only: it costs a helper
    /// call) the CPU the send ran on.
    pub port: u32,
    pub cpu: u32,
    /// When it was sent; 0 when this send is not timed (see `timed`).
    pub ns: u64,
    /// Doorbell writes of the slot's threads: picks the timed ones.
    pub seq: u64,
}

/// The last timed injection per (APIC, vector) slot, which the next EOI
/// of that slot completes. The stamp names its VM: a slot another VM
/// reused meanwhile joins nothing. Written only by the injecting side, so
/// that its cache line does not bounce on every EOI.
#[map]
pub static LAST_INJECTION: Array<InjectionStamp> = Array::with_max_entries(INJECTION_SLOTS, 0);

/// The injection time each slot's EOI last joined, written only by the
/// EOI side: an EOI joins an injection once.
#[map]
pub static LAST_JOINED: Array<u64> = Array::with_max_entries(INJECTION_SLOTS, 0);
pub const INJECTION_SLOTS: u32 = 64 * 256;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct InjectionStamp {
    pub tgid: u32,
    pub _pad: u32,
    pub ns: u64,
}

/// The LAST_INJECTION slot of an APIC and vector.
#[inline(always)]
pub fn injection_slot(apicid: u32, vector: u32) -> u32 {
    (apicid % 64) * 256 + (vector % 256)
}

/// The current thread: (tgid, tid) from one helper call (each call into
/// the kernel costs; the hot hooks make one).
#[inline(always)]
pub fn current() -> (u32, u32) {
    let id = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    ((id >> 32) as u32, id as u32)
}

/// The config, if process `tgid` is traced. Never tgid 0: an interrupt
/// on an idle CPU, which no VM's slot or pending send may take for its own.
#[inline(always)]
pub fn traced(tgid: u32) -> Option<&'static TraceConfig> {
    let config = TRACE_CONFIG.get(0)?;
    if tgid == 0 || config.enabled == 0 || (config.tgid != 0 && config.tgid != tgid) {
        return None;
    }
    Some(config)
}

/// Whether the event numbered `seq` (of its thread, or its APIC and
/// vector) is timed: reading the clock costs more than the rest of a hook,
/// so latencies are sampled.
#[inline(always)]
pub fn timed(config: &TraceConfig, seq: u64) -> bool {
    seq & u64::from(config.timing_mask) == 0
}

#[inline(always)]
pub fn vm_counters(tgid: u32) -> Option<*mut VmCounters> {
    let home = vm_slot(tgid);
    for probe in 0..PROBES {
        let index = (home + probe) % VM_SLOTS;
        let slot = TRACE_VMS.get_ptr_mut(index)?;
        // SAFETY: this CPU's copy of the slot; preemption is off in tracepoints.
        unsafe {
            if free_or_ended((*slot).tgid, tgid) {
                (*slot).tgid = tgid;
                core::ptr::write_bytes(core::ptr::addr_of_mut!((*slot).counters), 0, 1);
                mark_used(&TRACE_VMS_USED, index);
                // A full buffer drops it: the controller rescans every second.
                let _ = TRACE_NEW_VMS.output(&tgid, 0);
            }
            if (*slot).tgid == tgid {
                return Some(core::ptr::addr_of_mut!((*slot).counters));
            }
        }
    }
    let overflow = TRACE_VMS.get_ptr_mut(VM_SLOTS)?;
    mark_used(&TRACE_VMS_USED, VM_SLOTS);
    // SAFETY: as above.
    unsafe {
        (*overflow).tgid = u32::MAX;
        Some(core::ptr::addr_of_mut!((*overflow).counters))
    }
}

/// This CPU's counters of `key`: in its home slot or one of the next
/// `PROBES` (claimed on first use, or taken over from an ended VM), else
/// in the overflow slot.
#[inline(always)]
pub fn irq_counters(key: &IrqKey) -> Option<*mut IrqCounters> {
    let home = irq_slot(key.tgid, key.apicid, key.vector);
    for probe in 0..PROBES {
        let index = (home + probe) % IRQ_SLOTS;
        let slot = TRACE_IRQS.get_ptr_mut(index)?;
        // SAFETY: this CPU's copy of the slot; preemption is off in tracepoints.
        unsafe {
            if free_or_ended((*slot).key.tgid, key.tgid) {
                (*slot).key = *key;
                core::ptr::write_bytes(core::ptr::addr_of_mut!((*slot).counters), 0, 1);
                mark_used(&TRACE_IRQS_USED, index);
            }
            if (*slot).key == *key {
                return Some(core::ptr::addr_of_mut!((*slot).counters));
            }
        }
    }
    let overflow = TRACE_IRQS.get_ptr_mut(IRQ_SLOTS)?;
    mark_used(&TRACE_IRQS_USED, IRQ_SLOTS);
    // SAFETY: as above.
    unsafe {
        (*overflow).key = IrqKey { tgid: u32::MAX, apicid: u32::MAX, vector: u32::MAX, _pad: 0 };
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

/// The CPU this program runs on.
#[inline(always)]
pub fn cpu() -> u32 {
    // SAFETY: bpf_get_smp_processor_id has no preconditions.
    unsafe { aya_ebpf::helpers::bpf_get_smp_processor_id() }
}

#[inline(always)]
pub fn now() -> u64 {
    // SAFETY: bpf_ktime_get_ns has no preconditions.
    unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() }
}
