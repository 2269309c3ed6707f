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

/// The shared_info page as the BPF map's value: 512 words.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
pub struct SharedInfoWords(pub [u64; 512]);
const _: () = assert!(core::mem::size_of::<SharedInfoWords>() == 4096);

#[cfg(feature = "user")]
// SAFETY: a plain array of u64.
unsafe impl aya::Pod for SharedInfoWords {}
