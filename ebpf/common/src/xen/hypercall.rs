//! Hypercall numbers and reserved domain ids: xen/include/public/xen.h.
//!
//! 64-bit HVM ABI: the hypercall number is in rax, arguments in rdi, rsi,
//! rdx, r10, r8, and the result comes back in rax (a negated Xen errno on
//! failure). [`HYPERCALL_ARG_REGS`] names them in order.
#![allow(non_upper_case_globals)]

pub const __HYPERVISOR_set_trap_table: u32 = 0;
pub const __HYPERVISOR_mmu_update: u32 = 1;
pub const __HYPERVISOR_set_gdt: u32 = 2;
pub const __HYPERVISOR_stack_switch: u32 = 3;
pub const __HYPERVISOR_set_callbacks: u32 = 4;
pub const __HYPERVISOR_fpu_taskswitch: u32 = 5;
pub const __HYPERVISOR_sched_op_compat: u32 = 6;
pub const __HYPERVISOR_platform_op: u32 = 7;
pub const __HYPERVISOR_set_debugreg: u32 = 8;
pub const __HYPERVISOR_get_debugreg: u32 = 9;
pub const __HYPERVISOR_update_descriptor: u32 = 10;
pub const __HYPERVISOR_memory_op: u32 = 12;
pub const __HYPERVISOR_multicall: u32 = 13;
pub const __HYPERVISOR_update_va_mapping: u32 = 14;
pub const __HYPERVISOR_set_timer_op: u32 = 15;
pub const __HYPERVISOR_event_channel_op_compat: u32 = 16;
pub const __HYPERVISOR_xen_version: u32 = 17;
pub const __HYPERVISOR_console_io: u32 = 18;
pub const __HYPERVISOR_physdev_op_compat: u32 = 19;
pub const __HYPERVISOR_grant_table_op: u32 = 20;
pub const __HYPERVISOR_vm_assist: u32 = 21;
pub const __HYPERVISOR_update_va_mapping_otherdomain: u32 = 22;
pub const __HYPERVISOR_iret: u32 = 23;
pub const __HYPERVISOR_vcpu_op: u32 = 24;
pub const __HYPERVISOR_set_segment_base: u32 = 25;
pub const __HYPERVISOR_mmuext_op: u32 = 26;
pub const __HYPERVISOR_xsm_op: u32 = 27;
pub const __HYPERVISOR_nmi_op: u32 = 28;
pub const __HYPERVISOR_sched_op: u32 = 29;
pub const __HYPERVISOR_callback_op: u32 = 30;
pub const __HYPERVISOR_xenoprof_op: u32 = 31;
pub const __HYPERVISOR_event_channel_op: u32 = 32;
pub const __HYPERVISOR_physdev_op: u32 = 33;
pub const __HYPERVISOR_hvm_op: u32 = 34;
pub const __HYPERVISOR_sysctl: u32 = 35;
pub const __HYPERVISOR_domctl: u32 = 36;
pub const __HYPERVISOR_kexec_op: u32 = 37;
pub const __HYPERVISOR_tmem_op: u32 = 38;
pub const __HYPERVISOR_argo_op: u32 = 39;
pub const __HYPERVISOR_xenpmu_op: u32 = 40;
pub const __HYPERVISOR_dm_op: u32 = 41;
pub const __HYPERVISOR_hypfs_op: u32 = 42;

/// Size of one hypercall-page entry: the stub for hypercall `n` starts at
/// `n * 32` (xen/include/public/arch-x86/xen-x86_64.h).
pub const HYPERCALL_STUB_SIZE: u32 = 32;

/// Argument registers of the 64-bit hypercall ABI, in argument order.
pub const HYPERCALL_ARG_REGS: [&str; 5] = ["rdi", "rsi", "rdx", "r10", "r8"];

/// Domain ids at or above this are reserved (xen.h).
pub const DOMID_FIRST_RESERVED: u16 = 0x7FF0;
/// "The calling domain" in any domid field.
pub const DOMID_SELF: u16 = 0x7FF0;
pub const DOMID_IO: u16 = 0x7FF1;
pub const DOMID_XEN: u16 = 0x7FF2;
pub const DOMID_COW: u16 = 0x7FF3;
pub const DOMID_INVALID: u16 = 0x7FF4;
pub const DOMID_IDLE: u16 = 0x7FFF;
pub const DOMID_MASK: u16 = 0x7FFF;
