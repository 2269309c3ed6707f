//! Types exchanged between the BPF programs and the controller through maps.
//!
//! Fixed-width fields and explicit padding only: no `bool`, `Option` or
//! `usize`, so that BPF and userspace agree on every byte and the verifier
//! never sees an uninitialised padding read.

/// Key of the `MMIO_WRITES` map: the VMM process whose writes are counted.
/// The controller fills `MMIO_FILTER` with the VMM's tgid and a guest-physical
/// window; the `kvm_mmio` program counts writes that fall in the window.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmioFilter {
    /// tgid of the VMM process (the vCPU threads' process).
    pub tgid: u32,
    pub _pad: u32,
    /// First guest-physical address of the window.
    pub gpa_start: u64,
    /// One past the last guest-physical address of the window.
    pub gpa_end: u64,
}

const _: () = assert!(core::mem::size_of::<MmioFilter>() == 24);

#[cfg(feature = "user")]
// SAFETY: MmioFilter is repr(C), made only of integers, with explicit padding;
// every bit pattern is valid.
unsafe impl aya::Pod for MmioFilter {}

/// Trace event type of `kvm_mmio` for a write (include/trace/events/kvm.h).
pub const KVM_TRACE_MMIO_WRITE: u32 = 2;

/// Which VMM and which doorbells the `kvm_mmio` doorbell program serves
/// (index 0 of `DOORBELL_CONFIG`). `enabled` = 0 ignores every write.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DoorbellConfig {
    /// tgid of the VMM process.
    pub tgid: u32,
    /// Doorbells of ports below this are served (the fast-port limit).
    pub fast_ports: u32,
    /// Guest-physical address of port 0's doorbell.
    pub doorbell_base: u64,
    pub enabled: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<DoorbellConfig>() == 24);

/// One port in `DOORBELL_PORTS`, written by the controller. A port is
/// served in the kernel only while `fast` is 1: then its doorbell has an
/// ioeventfd that signals `vcpu`'s upcall eventfd.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortEntry {
    pub fast: u32,
    /// The vCPU the event is delivered to.
    pub vcpu: u32,
    /// The port set pending (the port itself, or a loopback peer).
    pub deliver: u32,
    pub _pad: u32,
}
const _: () = assert!(core::mem::size_of::<PortEntry>() == 16);

/// Counters of the doorbell program, per CPU, in `DOORBELL_STATS`: the
/// 2-level outcomes by their discriminant (two_level::Outcome), then these.
pub mod doorbell_stat {
    use crate::two_level::OUTCOME_COUNT;

    /// Doorbell writes of this VMM to a port the map does not mark fast
    /// (unbound, closed, or handled in userspace): left to userspace.
    pub const NOT_FAST: u32 = OUTCOME_COUNT as u32;
    /// Writes inside the window whose address is not a doorbell slot.
    pub const MISALIGNED: u32 = NOT_FAST + 1;
    /// Fast sends completed (the algorithm ran in the kernel).
    pub const FAST_SENDS: u32 = MISALIGNED + 1;
    pub const COUNT: u32 = FAST_SENDS + 1;
}

#[cfg(feature = "user")]
// SAFETY: repr(C), integers only, explicit padding.
unsafe impl aya::Pod for DoorbellConfig {}
#[cfg(feature = "user")]
// SAFETY: repr(C), integers only, explicit padding.
unsafe impl aya::Pod for PortEntry {}

/// The shared_info page as the BPF map's value: 512 words.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
pub struct SharedInfoWords(pub [u64; 512]);
const _: () = assert!(core::mem::size_of::<SharedInfoWords>() == 4096);

#[cfg(feature = "user")]
// SAFETY: a plain array of u64.
unsafe impl aya::Pod for SharedInfoWords {}
