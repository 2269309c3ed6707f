//! Xen's CPUID leaves: xen/include/public/arch-x86/cpuid.h.
//!
//! The guest finds Xen at leaf `XEN_CPUID_FIRST_LEAF` by the signature
//! "XenVMMXenVMM" in ebx/ecx/edx; leaf base+2 gives the hypercall-page MSR;
//! leaf base+4 eax carries the HVM feature flags.

pub const XEN_CPUID_FIRST_LEAF: u32 = 0x4000_0000;
/// "XenV"
pub const XEN_CPUID_SIGNATURE_EBX: u32 = 0x566e_6558;
/// "MMXe"
pub const XEN_CPUID_SIGNATURE_ECX: u32 = 0x6558_4d4d;
/// "nVMM"
pub const XEN_CPUID_SIGNATURE_EDX: u32 = 0x4d4d_566e;
pub const XEN_CPUID_MAX_NUM_LEAVES: u32 = 5;

/// Leaf `XEN_CPUID_FIRST_LEAF + i` (the C macro `XEN_CPUID_LEAF(i)`).
pub const fn xen_cpuid_leaf(i: u32) -> u32 {
    XEN_CPUID_FIRST_LEAF + i
}

/// Leaf base+4, eax: HVM-specific features.
pub const XEN_HVM_CPUID_APIC_ACCESS_VIRT: u32 = 1 << 0;
pub const XEN_HVM_CPUID_X2APIC_VIRT: u32 = 1 << 1;
pub const XEN_HVM_CPUID_IOMMU_MAPPINGS: u32 = 1 << 2;
/// ebx of leaf base+4 holds the vCPU id.
pub const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;
/// ecx of leaf base+4 holds the domain id.
pub const XEN_HVM_CPUID_DOMID_PRESENT: u32 = 1 << 4;
pub const XEN_HVM_CPUID_EXT_DEST_ID: u32 = 1 << 5;
/// The guest may use HVMOP_set_evtchn_upcall_vector (Linux >= 6.0 checks it
/// before using per-vCPU upcall vectors).
pub const XEN_HVM_CPUID_UPCALL_VECTOR: u32 = 1 << 6;
