//! The shared_info page and vcpu_info for 64-bit x86 guests:
//! xen/include/public/xen.h, arch-x86/xen.h and arch-x86/xen-x86_64.h.
//!
//! The page holds the 2-level event-channel state: the `evtchn_pending` and
//! `evtchn_mask` bitmaps (4096 ports) and, for vCPUs below
//! [`XEN_LEGACY_MAX_VCPUS`], their `vcpu_info` with `evtchn_upcall_pending`
//! and the `evtchn_pending_sel` selector. vCPUs from 32 on have a vcpu_info
//! only where the guest registers one (VCPUOP_register_vcpu_info).

use core::mem::{offset_of, size_of};

use super::abi::impl_xen_abi;

/// vCPUs whose vcpu_info lives in shared_info (arch-x86/xen.h).
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;

/// Bits in one `xen_ulong_t` of the 64-bit ABI.
pub const BITS_PER_EVTCHN_WORD: u32 = 64;

/// `evtchn_pending`/`evtchn_mask` words: `sizeof(xen_ulong_t) * 8`.
pub const EVTCHN_WORDS: usize = 64;

/// `struct vcpu_time_info` (xen.h), for `__XEN_INTERFACE_VERSION__ >
/// 0x040600` (with `flags`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    /// Odd while an update is in progress.
    pub version: u32,
    pub pad0: u32,
    /// TSC at last update of time vals.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*`
    pub flags: u8,
    pub pad1: [u8; 2],
}
const _: () = assert!(size_of::<VcpuTimeInfo>() == 32);
const _: () = assert!(offset_of!(VcpuTimeInfo, version) == 0);
const _: () = assert!(offset_of!(VcpuTimeInfo, tsc_timestamp) == 8);
const _: () = assert!(offset_of!(VcpuTimeInfo, system_time) == 16);
const _: () = assert!(offset_of!(VcpuTimeInfo, tsc_to_system_mul) == 24);
const _: () = assert!(offset_of!(VcpuTimeInfo, tsc_shift) == 28);
const _: () = assert!(offset_of!(VcpuTimeInfo, flags) == 29);

pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// `struct arch_vcpu_info` (arch-x86/xen-x86_64.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchVcpuInfo {
    pub cr2: u64,
    pub pad: u64,
}
const _: () = assert!(size_of::<ArchVcpuInfo>() == 16);
const _: () = assert!(offset_of!(ArchVcpuInfo, cr2) == 0);

/// `struct vcpu_info` (xen.h), 64 bytes on x86.
///
/// `evtchn_upcall_pending` is byte 0 of the first 64-bit word and
/// `evtchn_upcall_mask` byte 1, which is what lets the 2-level algorithm set
/// the former with a 64-bit atomic OR (see `two_level`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuInfo {
    /// Set by the hypervisor, cleared by the guest before it scans.
    pub evtchn_upcall_pending: u8,
    /// Present because arch-x86/xen.h defines XEN_HAVE_PV_UPCALL_MASK. HVM
    /// delivery ignores it.
    pub evtchn_upcall_mask: u8,
    pub _pad0: [u8; 6],
    /// Bit `i` set: word `i` of `evtchn_pending` may have pending ports.
    pub evtchn_pending_sel: u64,
    pub arch: ArchVcpuInfo,
    pub time: VcpuTimeInfo,
}
const _: () = assert!(size_of::<VcpuInfo>() == 64);
const _: () = assert!(offset_of!(VcpuInfo, evtchn_upcall_pending) == 0);
const _: () = assert!(offset_of!(VcpuInfo, evtchn_upcall_mask) == 1);
const _: () = assert!(offset_of!(VcpuInfo, evtchn_pending_sel) == 8);
const _: () = assert!(offset_of!(VcpuInfo, arch) == 16);
const _: () = assert!(offset_of!(VcpuInfo, time) == 32);

/// `struct arch_shared_info` (arch-x86/xen.h, 64-bit).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArchSharedInfo {
    pub max_pfn: u64,
    pub pfn_to_mfn_frame_list_list: u64,
    pub nmi_reason: u64,
    pub p2m_cr3: u64,
    pub p2m_vaddr: u64,
    pub p2m_generation: u64,
}
const _: () = assert!(size_of::<ArchSharedInfo>() == 48);
const _: () = assert!(offset_of!(ArchSharedInfo, max_pfn) == 0);
const _: () = assert!(offset_of!(ArchSharedInfo, nmi_reason) == 16);
const _: () = assert!(offset_of!(ArchSharedInfo, p2m_generation) == 40);

/// `struct shared_info` (xen.h), 64-bit layout.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedInfo {
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    /// Bit `p` set: port `p` is pending. Set by the hypervisor, cleared by
    /// the guest.
    pub evtchn_pending: [u64; EVTCHN_WORDS],
    /// Bit `p` set: port `p` is masked. Written by the guest only.
    pub evtchn_mask: [u64; EVTCHN_WORDS],
    pub wc_version: u32,
    pub wc_sec: u32,
    pub wc_nsec: u32,
    pub wc_sec_hi: u32,
    pub arch: ArchSharedInfo,
}
const _: () = assert!(size_of::<SharedInfo>() == 3136);
const _: () = assert!(offset_of!(SharedInfo, vcpu_info) == 0x000);
const _: () = assert!(offset_of!(SharedInfo, evtchn_pending) == 0x800);
const _: () = assert!(offset_of!(SharedInfo, evtchn_mask) == 0xa00);
const _: () = assert!(offset_of!(SharedInfo, wc_version) == 0xc00);
const _: () = assert!(offset_of!(SharedInfo, wc_sec) == 0xc04);
const _: () = assert!(offset_of!(SharedInfo, wc_nsec) == 0xc08);
const _: () = assert!(offset_of!(SharedInfo, wc_sec_hi) == 0xc0c);
const _: () = assert!(offset_of!(SharedInfo, arch) == 0xc10);
/// It must fit the page the hypervisor shares.
const _: () = assert!(size_of::<SharedInfo>() <= 4096);

impl_xen_abi!(VcpuTimeInfo, ArchVcpuInfo, VcpuInfo, ArchSharedInfo, SharedInfo);
