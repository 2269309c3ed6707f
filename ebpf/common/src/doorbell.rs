//! The doorbell: how EVTCHNOP_send reaches the in-kernel fast path, and the
//! maps the doorbell program shares with the controller, the stub writer
//! and the tracer. Every constant of that contract is defined here, once.
//!
//! A send on port p is a 4-byte write of the value p to `doorbell(p)`. The
//! controller registers each served port's doorbell as an ioeventfd with
//! exactly that length and datamatch (KVM_IOEVENTFD_FLAG_DATAMATCH, len 4):
//! - a length keeps the ioeventfd off KVM's fast-MMIO bus, where Intel's
//!   EPT-misconfig path completes a write without `trace_kvm_mmio`, so the
//!   program would never run (kvm_assign_ioeventfd only puts len-0
//!   ioeventfds there);
//! - the datamatch makes any other write (other width or value) exit to
//!   userspace, which the program ignores too: both sides agree on what a
//!   doorbell is.
//!
//! Code at CPL0 (any guest's kernel, whose page tables need not map the
//! MMIO window) rings the port's port-I/O doorbell instead: a 4-byte `out`
//! of the value 0 to `pio_doorbell(p)`, registered alike (len 4,
//! datamatch 0) and handled by the same program on `kvm_pio`. The value is
//! 0 so that rax, which `out` must write from, is already the hypercall's
//! success when the write completes in the kernel.

pub use crate::layout::{
    DOORBELL_BASE, DOORBELL_STRIDE, PIO_DOORBELL_BASE, PIO_DOORBELL_STRIDE, doorbell, pio_doorbell,
};
use crate::two_level::{NR_PORTS, Outcome};

/// Bytes of a doorbell write (the port number as a little-endian u32).
pub const DOORBELL_WIDTH: u32 = 4;

/// One past the last doorbell: every 2-level port has one.
pub const DOORBELL_END: u64 = DOORBELL_BASE + NR_PORTS as u64 * DOORBELL_STRIDE;
/// One past the last port-I/O doorbell.
pub const PIO_DOORBELL_END: u32 = PIO_DOORBELL_BASE as u32 + NR_PORTS * PIO_DOORBELL_STRIDE as u32;
const _: () = assert!(PIO_DOORBELL_END <= 0xc000, "the port-I/O doorbells stay below 0xc000");
/// The value of a port-I/O doorbell write.
pub const PIO_DOORBELL_VALUE: u32 = 0;
/// `rw` of `kvm_pio` for an `out` (arch/x86/kvm/x86.c, KVM_PIO_OUT).
pub const KVM_TRACE_PIO_OUT: u32 = 1;

/// The canary's doorbell: port 0 is never a valid event channel (Xen
/// reserves it), so a write there is the VMM's own start-up check that the
/// program sees this VM's doorbells, never a guest's send.
pub const CANARY_PORT: u32 = 0;

/// Trace event type of `kvm_mmio` for a write (include/trace/events/kvm.h).
pub const KVM_TRACE_MMIO_WRITE: u32 = 2;

/// VMs one doorbell program serves at most (the outer maps' size).
pub const MAX_VMS: u32 = 4096;

/// One VM's state the doorbell program works on: the single value of the
/// VM's inner map in `VM_STATE`, keyed by the VMM's tgid in the initial
/// PID namespace (what bpf_get_current_pid_tgid reports: a process can
/// only ever be served as itself). Its VMM maps it: shared_info comes
/// first, on a page of its own (the guest's memslot), then the ports.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
pub struct VmState {
    pub shared_info: crate::wire::SharedInfoWords,
    /// `PortEntry`s, stored and loaded whole.
    pub ports: [u64; NR_PORTS as usize],
}
const _: () = assert!(core::mem::size_of::<VmState>() == 4096 + 8 * NR_PORTS as usize);

/// One VM's counters: the single value of its inner map in `VM_STATS`,
/// which its VMM may only read (`stat` gives the layout).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmStats {
    pub words: [u64; stat::entries(crate::two_level::SHARED_INFO_VCPUS) as usize],
}

/// A port's entry in `DOORBELL_PORTS`, one u64 the controller stores and
/// the program loads atomically (no torn reads).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortEntry(pub u64);

impl PortEntry {
    /// Not served: the program leaves the write to userspace.
    pub const EMPTY: Self = Self(0);
    const ARMED: u64 = 1 << 16;

    /// Served: set `deliver` pending and announce it on `vcpu`. `armed`:
    /// the doorbell's ioeventfd is registered (until then a write the
    /// program handles may also exit to userspace; see `stat::UNARMED`).
    pub const fn served(deliver: u32, vcpu: u32, armed: bool) -> Self {
        Self((deliver as u64 & 0xffff) | if armed { Self::ARMED } else { 0 } | (vcpu as u64) << 32)
    }

    /// Port 0 is reserved, so a 0 delivery port means "not served".
    pub const fn is_served(self) -> bool {
        self.deliver() != 0
    }

    pub const fn deliver(self) -> u32 {
        (self.0 & 0xffff) as u32
    }

    pub const fn vcpu(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub const fn is_armed(self) -> bool {
        self.0 & Self::ARMED != 0
    }
}
const _: () = assert!(NR_PORTS <= 0x1_0000, "a delivery port fits 16 bits");

/// The doorbell program's counters (`VmStats`): 64-byte lines of u64s,
/// added to atomically (not per CPU: the VM's memory must not grow with
/// the host's CPUs). Line 0 holds the VM's own counters, line 1 + v the
/// fast sends that targeted vCPU v, by `Outcome`.
pub mod stat {
    use super::Outcome;

    pub const LINE_WORDS: u32 = 8;
    /// Doorbell writes of this VM to a port the map does not serve
    /// (unbound, closed, or handled in userspace): left to userspace.
    pub const NOT_FAST: u32 = 0;
    /// Writes inside the doorbell window that are not a doorbell (between
    /// doorbells, another width, another value): they exit to userspace.
    pub const BAD_WRITE: u32 = 1;
    /// Canary writes seen (the VMM's start-up check).
    pub const CANARY: u32 = 2;
    /// Sends handled on a port whose ioeventfd was being registered: such
    /// a write may also exit to userspace, which sends it again (an event
    /// announced twice, never lost).
    pub const UNARMED: u32 = 3;

    /// Index of the counter of sends to `vcpu` that ended in `outcome`.
    pub const fn vcpu_outcome(vcpu: u32, outcome: Outcome) -> u32 {
        (1 + vcpu) * LINE_WORDS + outcome as u32
    }

    /// Array entries for a VM of `vcpus` vCPUs.
    pub const fn entries(vcpus: u32) -> u32 {
        (1 + vcpus) * LINE_WORDS
    }

    // set_pending's outcomes (InvalidPort ..= UpcallRaised) fit a line.
    const _: () = assert!((Outcome::UpcallRaised as u32) < LINE_WORDS);
}

/// One CPU's count of doorbell programs entered and left
/// (`DOORBELL_ACTIVE[cpu]`): odd while one runs there. The controller waits
/// for every odd count to move on before it relies on no program still
/// using a port entry it replaced (a grace period; tracepoint programs
/// run with preemption off, so at most one runs per CPU). A line of its
/// own, so that CPUs do not share it.
#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuActivity {
    pub seq: u64,
    pub _pad: [u64; 7],
}
const _: () = assert!(core::mem::size_of::<CpuActivity>() == 64);

/// The question the `whoami` program answers (index 0 of `WHOAMI`): which
/// host tgid has thread `ns_tid` of process `ns_tgid` in the PID namespace
/// (`pidns_dev`, `pidns_ino`)? The controller fills the first four fields
/// and renames that thread; the program fills `host_tgid`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WhoAmI {
    pub pidns_dev: u64,
    pub pidns_ino: u64,
    pub ns_tgid: u32,
    pub ns_tid: u32,
    pub host_tgid: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<WhoAmI>() == 32);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), u64 arrays only; every bit pattern is valid.
    unsafe impl aya::Pod for super::VmState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::VmStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PortEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::CpuActivity {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::WhoAmI {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_port_0_means_not_served() {
        let e = PortEntry::served(4095, 31, true);
        assert_eq!((e.deliver(), e.vcpu(), e.is_served(), e.is_armed()), (4095, 31, true, true));
        let e = PortEntry::served(7, 1000, false);
        assert_eq!((e.deliver(), e.vcpu(), e.is_armed()), (7, 1000, false));
        assert!(!PortEntry::EMPTY.is_served());
        assert!(!PortEntry::served(0, 3, true).is_served());
    }

    #[test]
    fn counters_of_a_vcpu_stay_on_its_line() {
        assert_eq!(stat::vcpu_outcome(0, Outcome::InvalidPort), stat::LINE_WORDS);
        assert_eq!(stat::vcpu_outcome(2, Outcome::UpcallRaised) / stat::LINE_WORDS, 3);
        assert_eq!(stat::entries(2), 24);
    }

    #[test]
    fn port_io_doorbells_are_4_bytes_apart_below_0xc000() {
        assert_eq!(pio_doorbell(0), 0x8000);
        assert_eq!(pio_doorbell(NR_PORTS - 1) as u32 + PIO_DOORBELL_STRIDE as u32, PIO_DOORBELL_END);
    }

    #[test]
    fn every_port_has_a_doorbell_inside_the_window() {
        assert_eq!(doorbell(NR_PORTS - 1) + DOORBELL_STRIDE, DOORBELL_END);
        assert!(DOORBELL_STRIDE >= u64::from(DOORBELL_WIDTH));
    }
}
