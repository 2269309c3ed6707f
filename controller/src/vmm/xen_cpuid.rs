//! The Xen CPUID leaves a Xen HVM guest looks for (xen/include/public/arch-x86/cpuid.h).

use kvm_bindings::{CpuId, kvm_cpuid_entry2};
use xevtchn_common::xen::cpuid::{
    XEN_CPUID_FIRST_LEAF as XEN_CPUID_BASE, XEN_CPUID_MAX_NUM_LEAVES, XEN_CPUID_SIGNATURE_EBX, XEN_CPUID_SIGNATURE_ECX,
    XEN_CPUID_SIGNATURE_EDX, XEN_HVM_CPUID_UPCALL_VECTOR, XEN_HVM_CPUID_VCPU_ID_PRESENT,
};

/// The MSR the guest writes the hypercall page's address to (leaf base+2,
/// ebx); Xen uses the same number as the base leaf.
pub const HYPERCALL_PAGE_MSR: u32 = 0x4000_0000;

/// `supported` with KVM's own hypervisor leaves replaced by Xen's, as seen
/// by vCPU `vcpu`.
pub fn with_xen_leaves(supported: &CpuId, vcpu: u32) -> CpuId {
    let (ebx, ecx, edx) = (XEN_CPUID_SIGNATURE_EBX, XEN_CPUID_SIGNATURE_ECX, XEN_CPUID_SIGNATURE_EDX);
    let leaf = |function: u32, eax: u32, ebx: u32, ecx: u32, edx: u32| kvm_cpuid_entry2 {
        function,
        index: 0,
        flags: 0,
        eax,
        ebx,
        ecx,
        edx,
        ..Default::default()
    };
    let xen = [
        leaf(XEN_CPUID_BASE, XEN_CPUID_BASE + XEN_CPUID_MAX_NUM_LEAVES - 1, ebx, ecx, edx),
        leaf(XEN_CPUID_BASE + 1, xen_version(), 0, 0, 0),
        // One hypercall page, at the MSR in ebx.
        leaf(XEN_CPUID_BASE + 2, 1, HYPERCALL_PAGE_MSR, 0, 0),
        leaf(XEN_CPUID_BASE + 3, 0, 0, 0, 0),
        leaf(XEN_CPUID_BASE + 4, XEN_HVM_CPUID_UPCALL_VECTOR | XEN_HVM_CPUID_VCPU_ID_PRESENT, vcpu, 0, 0),
    ];
    let mut entries: Vec<kvm_cpuid_entry2> = supported
        .as_slice()
        .iter()
        .filter(|e| !(XEN_CPUID_BASE..XEN_CPUID_BASE + 0x100).contains(&e.function))
        .copied()
        .collect();
    entries.extend(xen);
    CpuId::from_entries(&entries).expect("fewer entries than KVM supports")
}

/// Leaf base+1: the version xen_version reports (major << 16 | minor).
fn xen_version() -> u32 {
    let v = crate::xen::XenVersion::default();
    (u32::from(v.major) << 16) | u32::from(v.minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_spells_xen_in_ebx_ecx_edx() {
        let cpuid = with_xen_leaves(&CpuId::new(0).unwrap(), 3);
        let base = cpuid.as_slice().iter().find(|e| e.function == XEN_CPUID_BASE).unwrap();
        let mut sig = Vec::new();
        for r in [base.ebx, base.ecx, base.edx] {
            sig.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&sig, b"XenVMMXenVMM");
        let features = cpuid.as_slice().iter().find(|e| e.function == XEN_CPUID_BASE + 4).unwrap();
        assert_ne!(features.eax & XEN_HVM_CPUID_UPCALL_VECTOR, 0);
        assert_eq!(features.ebx, 3, "vCPU id");
    }
}
