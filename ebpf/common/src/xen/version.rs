//! xen_version hypercall ABI: xen/include/public/version.h and features.h.
//!
//! `HYPERVISOR_xen_version(cmd, arg)`. `XENVER_version` returns
//! `major << 16 | minor` in rax; `XENVER_get_features` fills a
//! [`XenFeatureInfo`].
#![allow(non_upper_case_globals)]

use core::mem::{offset_of, size_of};

use super::abi::impl_xen_abi;

pub const XENVER_version: u32 = 0;
pub const XENVER_extraversion: u32 = 1;
pub const XENVER_compile_info: u32 = 2;
pub const XENVER_capabilities: u32 = 3;
pub const XENVER_changeset: u32 = 4;
pub const XENVER_platform_parameters: u32 = 5;
pub const XENVER_get_features: u32 = 6;
pub const XENVER_pagesize: u32 = 7;
pub const XENVER_guest_handle: u32 = 8;
pub const XENVER_commandline: u32 = 9;
pub const XENVER_build_id: u32 = 10;

/// `sizeof(xen_extraversion_t)`: XENVER_extraversion writes this many bytes.
pub const XEN_EXTRAVERSION_LEN: usize = 16;

/// `XENFEAT_*` bit numbers of submap 0 (features.h).
pub const XENFEAT_writable_page_tables: u32 = 0;
pub const XENFEAT_writable_descriptor_tables: u32 = 1;
pub const XENFEAT_auto_translated_physmap: u32 = 2;
pub const XENFEAT_supervisor_mode_kernel: u32 = 3;
pub const XENFEAT_pae_pgdir_above_4gb: u32 = 4;
pub const XENFEAT_mmu_pt_update_preserve_ad: u32 = 5;
pub const XENFEAT_highmem_assist: u32 = 6;
pub const XENFEAT_gnttab_map_avail_bits: u32 = 7;
/// HVM_PARAM_CALLBACK_IRQ may use the VECTOR type.
pub const XENFEAT_hvm_callback_vector: u32 = 8;
/// vcpu_time_info is maintained and safe to use as a clock source.
pub const XENFEAT_hvm_safe_pvclock: u32 = 9;
pub const XENFEAT_hvm_pirqs: u32 = 10;
pub const XENFEAT_dom0: u32 = 11;
pub const XENFEAT_memory_op_vnode_supported: u32 = 13;
pub const XENFEAT_ARM_SMCCC_supported: u32 = 14;
pub const XENFEAT_linux_rsdp_unrestricted: u32 = 15;
pub const XENFEAT_not_direct_mapped: u32 = 16;
pub const XENFEAT_direct_mapped: u32 = 17;
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

/// `struct xen_feature_info` (version.h): argument of XENVER_get_features.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenFeatureInfo {
    /// IN: which 32-bit submap to return.
    pub submap_idx: u32,
    /// OUT
    pub submap: u32,
}
const _: () = assert!(size_of::<XenFeatureInfo>() == 8);
const _: () = assert!(offset_of!(XenFeatureInfo, submap_idx) == 0);
const _: () = assert!(offset_of!(XenFeatureInfo, submap) == 4);

impl_xen_abi!(XenFeatureInfo);
