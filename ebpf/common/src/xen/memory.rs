//! Memory hypercall ABI: xen/include/public/memory.h.
//!
//! `HYPERVISOR_memory_op(cmd, arg)`. An HVM guest places its shared_info
//! page with `XENMEM_add_to_physmap` of `XENMAPSPACE_shared_info`, idx 0.
#![allow(non_upper_case_globals)]

use core::mem::{offset_of, size_of};

use super::abi::impl_xen_abi;

pub const XENMEM_increase_reservation: u64 = 0;
pub const XENMEM_decrease_reservation: u64 = 1;
pub const XENMEM_maximum_ram_page: u64 = 2;
pub const XENMEM_current_reservation: u64 = 3;
pub const XENMEM_maximum_reservation: u64 = 4;
pub const XENMEM_machphys_mfn_list: u64 = 5;
pub const XENMEM_populate_physmap: u64 = 6;
pub const XENMEM_add_to_physmap: u64 = 7;
pub const XENMEM_memory_map: u64 = 9;
pub const XENMEM_machine_memory_map: u64 = 10;
pub const XENMEM_exchange: u64 = 11;
pub const XENMEM_machphys_mapping: u64 = 12;
pub const XENMEM_set_memory_map: u64 = 13;
pub const XENMEM_maximum_gpfn: u64 = 14;
pub const XENMEM_remove_from_physmap: u64 = 15;
pub const XENMEM_add_to_physmap_batch: u64 = 23;

/// `cmd[:6]` of a memory_op is a continuation's start extent; the op is
/// `cmd & MEMOP_CMD_MASK` (xen/include/xen/hypercall.h, not public, but
/// part of the ABI since every memory_op is decoded this way).
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
pub const MEMOP_CMD_MASK: u64 = (1 << MEMOP_EXTENT_SHIFT) - 1;

/// `xen_add_to_physmap.space` (`enum phys_map_space`).
pub const XENMAPSPACE_shared_info: u32 = 0;
pub const XENMAPSPACE_grant_table: u32 = 1;
pub const XENMAPSPACE_gmfn: u32 = 2;
pub const XENMAPSPACE_gmfn_range: u32 = 3;
pub const XENMAPSPACE_gmfn_foreign: u32 = 4;
pub const XENMAPSPACE_dev_mmio: u32 = 5;
pub const XENMAPIDX_grant_table_status: u32 = 0x8000_0000;

/// The GFN Xen rejects as a destination (`INVALID_GFN`, `~0UL`).
pub const INVALID_GFN: u64 = u64::MAX;

/// `struct xen_add_to_physmap` (memory.h): make page `idx` of `space`
/// appear at guest frame `gpfn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenAddToPhysmap {
    /// Domain to change the mapping for (DOMID_SELF for the caller).
    pub domid: u16,
    /// Number of pages, for XENMAPSPACE_gmfn_range only.
    pub size: u16,
    /// `XENMAPSPACE_*`
    pub space: u32,
    /// Index into `space`.
    pub idx: u64,
    /// Guest frame where the page should appear.
    pub gpfn: u64,
}
const _: () = assert!(size_of::<XenAddToPhysmap>() == 24);
const _: () = assert!(offset_of!(XenAddToPhysmap, domid) == 0);
const _: () = assert!(offset_of!(XenAddToPhysmap, size) == 2);
const _: () = assert!(offset_of!(XenAddToPhysmap, space) == 4);
const _: () = assert!(offset_of!(XenAddToPhysmap, idx) == 8);
const _: () = assert!(offset_of!(XenAddToPhysmap, gpfn) == 16);

impl_xen_abi!(XenAddToPhysmap);
