//! vCPU hypercall ABI: xen/include/public/vcpu.h.
//!
//! `HYPERVISOR_vcpu_op(cmd, vcpuid, arg)`.
#![allow(non_upper_case_globals)]

use core::mem::{offset_of, size_of};

use super::abi::impl_xen_abi;

pub const VCPUOP_initialise: u64 = 0;
pub const VCPUOP_up: u64 = 1;
pub const VCPUOP_down: u64 = 2;
pub const VCPUOP_is_up: u64 = 3;
pub const VCPUOP_set_periodic_timer: u64 = 6;
pub const VCPUOP_stop_periodic_timer: u64 = 7;
pub const VCPUOP_set_singleshot_timer: u64 = 8;
pub const VCPUOP_stop_singleshot_timer: u64 = 9;
pub const VCPUOP_register_vcpu_info: u64 = 10;

/// `vcpu_set_singleshot_timer.flags`: fail with -ETIME if the timeout
/// has passed.
pub const VCPU_SSHOTTMR_future: u32 = 1;

/// `struct vcpu_set_singleshot_timer` (vcpu.h): argument of
/// VCPUOP_set_singleshot_timer. The timeout is absolute system time (ns).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuSetSingleshotTimer {
    pub timeout_abs_ns: u64,
    pub flags: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<VcpuSetSingleshotTimer>() == 16);
const _: () = assert!(offset_of!(VcpuSetSingleshotTimer, flags) == 8);

/// `struct vcpu_register_vcpu_info` (vcpu.h): argument of
/// VCPUOP_register_vcpu_info. `mfn` is a guest frame for an HVM guest.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRegisterVcpuInfo {
    pub mfn: u64,
    pub offset: u32,
    pub rsvd: u32,
}
const _: () = assert!(size_of::<VcpuRegisterVcpuInfo>() == 16);
const _: () = assert!(offset_of!(VcpuRegisterVcpuInfo, offset) == 8);

impl_xen_abi!(VcpuSetSingleshotTimer, VcpuRegisterVcpuInfo);
