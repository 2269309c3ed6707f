//! Types shared by the tracing programs and `xevtchn trace`: counters per
//! VM (VMM process) and per (APIC, vector), with log2 latency histograms.

/// Which processes to trace and where xevtchn's doorbells are
/// (`TRACE_CONFIG`, index 0). `tgid` 0 traces every KVM process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceConfig {
    pub tgid: u32,
    pub enabled: u32,
    pub doorbell_base: u64,
    pub doorbell_end: u64,
    /// 1: stream a `TraceEvent` per joined send and per Xen hypercall.
    pub events: u32,
    /// Latencies are sampled: a send, or an injection, is timed when its
    /// sequence number (per sending thread; per APIC and vector) `&
    /// timing_mask` is 0 (0: time every one).
    /// Reading the clock is the costliest step of a hook; every event is
    /// still counted.
    pub timing_mask: u32,
}
const _: () = assert!(core::mem::size_of::<TraceConfig>() == 32);

/// `TraceEvent::kind`: a send joined to its injection.
pub const EVENT_SEND: u32 = 1;
/// `TraceEvent::kind`: a kvm_xen_hypercall record (hosts with CONFIG_KVM_XEN).
pub const EVENT_XEN_HYPERCALL: u32 = 2;
/// Bytes of the kvm_xen_hypercall record kept (fields up to a5, per its format).
pub const XEN_HYPERCALL_RECORD: usize = 72;

/// One event of the `TRACE_EVENTS` ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceEvent {
    pub kind: u32,
    pub tgid: u32,
    /// The sending vCPU thread.
    pub tid: u32,
    pub apicid: u32,
    pub vector: u32,
    /// 1 when the send went through a userspace exit, 0 in the kernel.
    pub via_userspace: u32,
    /// EVENT_SEND: the doorbell's port.
    pub port: u32,
    /// The CPU the send (or hypercall) ran on.
    pub cpu: u32,
    pub send_ns: u64,
    pub inject_ns: u64,
    /// EVENT_XEN_HYPERCALL: the raw tracepoint record.
    pub record: [u8; XEN_HYPERCALL_RECORD],
}
const _: () = assert!(core::mem::size_of::<TraceEvent>() == 48 + XEN_HYPERCALL_RECORD);

/// Counters of one VMM process (`TRACE_VMS`, keyed by tgid, per CPU).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmCounters {
    /// Every kvm_mmio event (reads and writes, any address).
    pub mmio: u64,
    /// Doorbell writes: EVTCHNOP_send on a fast port.
    pub sends: u64,
    /// Doorbell writes that then exited to userspace (the others completed in the kernel).
    pub sends_to_userspace: u64,
    /// kvm_userspace_exit events.
    pub userspace_exits: u64,
    pub msi_set_irq: u64,
    pub set_irq: u64,
    pub vcpu_wakeups: u64,
    /// kvm_xen_hypercall events (only on hosts with CONFIG_KVM_XEN).
    pub xen_hypercalls: u64,
    /// kvm_pio events (port I/O, any port).
    pub pio: u64,
    /// Sends through a userspace exit that an injection then answered in
    /// the same thread (the VMM raised an upcall); the others coalesced,
    /// were masked or found an upcall pending.
    pub userspace_sends_injected: u64,
}
const _: () = assert!(core::mem::size_of::<VmCounters>() == 80);

impl VmCounters {
    /// `f` applied field by field (summing CPUs, differencing snapshots).
    pub fn zip_with(&self, other: &Self, f: impl Fn(u64, u64) -> u64) -> Self {
        Self {
            mmio: f(self.mmio, other.mmio),
            sends: f(self.sends, other.sends),
            sends_to_userspace: f(self.sends_to_userspace, other.sends_to_userspace),
            userspace_exits: f(self.userspace_exits, other.userspace_exits),
            msi_set_irq: f(self.msi_set_irq, other.msi_set_irq),
            set_irq: f(self.set_irq, other.set_irq),
            vcpu_wakeups: f(self.vcpu_wakeups, other.vcpu_wakeups),
            xen_hypercalls: f(self.xen_hypercalls, other.xen_hypercalls),
            pio: f(self.pio, other.pio),
            userspace_sends_injected: f(self.userspace_sends_injected, other.userspace_sends_injected),
        }
    }
}

/// One slot of `TRACE_VMS` (a per-CPU array indexed by `vm_slot(tgid)`):
/// the VM it counts for, and its counters. A slot another VM holds on this
/// CPU sends the event to the overflow slot `VM_SLOTS` (tgid u32::MAX).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmSlot {
    pub tgid: u32,
    pub _pad: u32,
    pub counters: VmCounters,
}
const _: () = assert!(core::mem::size_of::<VmSlot>() == 88);

/// Slots of `TRACE_VMS` before the overflow slot.
pub const VM_SLOTS: u32 = 256;

#[inline(always)]
pub const fn vm_slot(tgid: u32) -> u32 {
    tgid % VM_SLOTS
}

/// Slots tried after a key's home slot before the overflow slot: keys
/// whose home slot another key holds (two VMs' same APIC and vector, or
/// tgids 256 apart) take the next free one instead of being merged.
pub const PROBES: u32 = 8;

/// A spread of `tgid` over `slots` (Fibonacci hashing), so that VMs'
/// (APIC, vector) slots start at different places.
#[inline(always)]
pub const fn tgid_offset(tgid: u32, slots: u32) -> u32 {
    (tgid.wrapping_mul(0x9E37_79B1) >> 16) % slots
}

/// Key of `TRACE_IRQS`: an interrupt vector on one APIC of one VM.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IrqKey {
    pub tgid: u32,
    pub apicid: u32,
    pub vector: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<IrqKey>() == 16);

/// One slot of `TRACE_IRQS` (a per-CPU array indexed by `irq_slot`): the
/// (VM, APIC, vector) it counts for, and its counters. A slot another
/// (VM, APIC, vector) holds on this CPU sends the event to the overflow
/// slot `IRQ_SLOTS` (tgid u32::MAX).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqSlot {
    pub key: IrqKey,
    pub counters: IrqCounters,
}

/// Slots of `TRACE_IRQS` before the overflow slot: 32 APICs x 256 vectors.
pub const IRQ_SLOTS: u32 = 32 * 256;

/// The home slot of (VM, APIC, vector): one VM's keys never share one.
#[inline(always)]
pub const fn irq_slot(tgid: u32, apicid: u32, vector: u32) -> u32 {
    ((apicid % 32) * 256 + (vector % 256) + tgid_offset(tgid, IRQ_SLOTS)) % IRQ_SLOTS
}

/// Ended VMs whose slots may be taken over (`TRACE_ENDED_VMS`); the
/// controller forgets one once no slot holds it any more.
pub const ENDED_VMS: u32 = 4096;

/// Slots of `TRACE_PORT_SENDS`: one per 2-level port.
pub const PORT_SLOTS: u32 = crate::two_level::NR_PORTS;

/// Words of a bitmap with one bit per slot (`TRACE_*_USED`: the slots any
/// CPU has used, so that a snapshot reads only those).
pub const fn bitmap_words(slots: u32) -> u32 {
    slots.div_ceil(64)
}

/// log2 buckets: bucket b counts latencies in [2^b, 2^(b+1)) ns (b = 0
/// also holds 0 and 1 ns); the last bucket holds everything above.
pub const BUCKETS: usize = 32;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqCounters {
    /// kvm_apic_accept_irq events.
    pub injections: u64,
    /// kvm_eoi events.
    pub eois: u64,
    /// From a doorbell write to the injection it caused (same vCPU thread).
    pub send_to_inject: [u64; BUCKETS],
    /// From an injection to the EOI of that vector on that APIC.
    pub inject_to_eoi: [u64; BUCKETS],
}
const _: () = assert!(core::mem::size_of::<IrqCounters>() == 16 + 2 * 8 * BUCKETS);
const _: () = assert!(core::mem::size_of::<IrqSlot>() == 16 + 16 + 2 * 8 * BUCKETS);

impl Default for IrqCounters {
    fn default() -> Self {
        Self { injections: 0, eois: 0, send_to_inject: [0; BUCKETS], inject_to_eoi: [0; BUCKETS] }
    }
}

impl IrqCounters {
    /// `f` applied field by field, histogram buckets included.
    pub fn zip_with(&self, other: &Self, f: impl Fn(u64, u64) -> u64) -> Self {
        let mut out =
            Self { injections: f(self.injections, other.injections), eois: f(self.eois, other.eois), ..*self };
        for b in 0..BUCKETS {
            out.send_to_inject[b] = f(self.send_to_inject[b], other.send_to_inject[b]);
            out.inject_to_eoi[b] = f(self.inject_to_eoi[b], other.inject_to_eoi[b]);
        }
        out
    }
}

/// The log2 bucket of `ns` (branchy binary search: no count-leading-zeros
/// instruction on BPF).
#[inline(always)]
pub fn bucket(ns: u64) -> usize {
    let mut b = 0;
    let mut v = ns;
    if v >= 1 << 32 {
        v >>= 32;
        b += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        b += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        b += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        b += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        b += 2;
    }
    if v >= 1 << 1 {
        b += 1;
    }
    if b >= BUCKETS { BUCKETS - 1 } else { b }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), integers only, explicit padding.
unsafe impl aya::Pod for TraceConfig {}
#[cfg(feature = "user")]
// SAFETY: repr(C), integers only.
unsafe impl aya::Pod for VmCounters {}
#[cfg(feature = "user")]
// SAFETY: repr(C), integers only, explicit padding.
unsafe impl aya::Pod for VmSlot {}
#[cfg(feature = "user")]
// SAFETY: repr(C), integers and bytes only, no padding (size asserted).
unsafe impl aya::Pod for TraceEvent {}
#[cfg(feature = "user")]
// SAFETY: repr(C), integers only, explicit padding.
unsafe impl aya::Pod for IrqKey {}
#[cfg(feature = "user")]
// SAFETY: repr(C), integers only.
unsafe impl aya::Pod for IrqCounters {}
#[cfg(feature = "user")]
// SAFETY: repr(C), integers only, no padding (16 + 528 bytes).
unsafe impl aya::Pod for IrqSlot {}

#[cfg(test)]
mod tests {
    #[test]
    fn one_vms_interrupt_keys_never_share_a_home_slot() {
        extern crate std;
        for tgid in [1, 2, 255, 256, 4242, 65_536, u32::MAX - 1] {
            let mut seen = std::collections::HashSet::new();
            for apicid in 0..32 {
                for vector in 0..256 {
                    let slot = super::irq_slot(tgid, apicid, vector);
                    assert!(slot < super::IRQ_SLOTS && seen.insert(slot), "tgid {tgid} apic {apicid} vector {vector}");
                }
            }
        }
        // Two VMs' upcall vector on APIC 0 start apart (the offset spreads).
        assert_ne!(super::irq_slot(1000, 0, 0xf3), super::irq_slot(1001, 0, 0xf3));
    }

    use super::*;

    #[test]
    fn buckets_are_floor_log2_clamped() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 0);
        assert_eq!(bucket(2), 1);
        assert_eq!(bucket(3), 1);
        assert_eq!(bucket(1023), 9);
        assert_eq!(bucket(1024), 10);
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        for b in 0..31 {
            assert_eq!(bucket(1 << b), b);
            assert_eq!(bucket((1 << (b + 1)) - 1), b);
        }
    }

    #[test]
    fn zip_with_pairs_each_field_with_itself() {
        let a = VmCounters {
            mmio: 1,
            sends: 2,
            sends_to_userspace: 3,
            userspace_exits: 4,
            msi_set_irq: 5,
            set_irq: 6,
            vcpu_wakeups: 7,
            xen_hypercalls: 8,
            pio: 9,
            userspace_sends_injected: 10,
        };
        let zero = VmCounters::default();
        assert_eq!(a.zip_with(&zero, |x, _| x), a);
        assert_eq!(zero.zip_with(&a, |_, y| y), a);
        let mut irq = IrqCounters { injections: 3, eois: 2, ..Default::default() };
        irq.send_to_inject[4] = 7;
        irq.inject_to_eoi[9] = 5;
        let doubled = irq.zip_with(&irq, |x, y| x + y);
        assert_eq!(
            (doubled.injections, doubled.eois, doubled.send_to_inject[4], doubled.inject_to_eoi[9]),
            (6, 4, 14, 10)
        );
        assert_eq!(IrqCounters::default().zip_with(&irq, |_, y| y), irq);
    }
}
