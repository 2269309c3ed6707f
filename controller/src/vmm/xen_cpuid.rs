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
/// by vCPU `vcpu`, and that vCPU's APIC ID where CPUID reports it (KVM's
/// supported leaves say 0; KVM makes the APIC ID the vCPU's index).
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
        .map(|e| with_apic_id(*e, vcpu))
        .collect();
    entries.extend(xen);
    CpuId::from_entries(&entries).expect("fewer entries than KVM supports")
}

/// The initial APIC ID in leaf 1 (EBX[31:24]) and the x2APIC ID in the
/// topology leaves 0xb and 0x1f (EDX), as a CPU reports its own.
fn with_apic_id(mut entry: kvm_cpuid_entry2, vcpu: u32) -> kvm_cpuid_entry2 {
    match entry.function {
        1 => entry.ebx = (entry.ebx & 0x00ff_ffff) | (vcpu & 0xff) << 24,
        0xb | 0x1f => entry.edx = vcpu,
        _ => {}
    }
    entry
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

    #[test]
    fn each_vcpu_reports_its_own_apic_id() {
        let leaf = |function, index| kvm_cpuid_entry2 { function, index, ebx: 0x0001_0800, ..Default::default() };
        let supported = CpuId::from_entries(&[leaf(1, 0), leaf(0xb, 0), leaf(0xb, 1), leaf(7, 0)]).unwrap();
        let cpuid = with_xen_leaves(&supported, 5);
        let find =
            |function, index| *cpuid.as_slice().iter().find(|e| e.function == function && e.index == index).unwrap();
        assert_eq!(find(1, 0).ebx, 0x0501_0800, "initial APIC ID in EBX[31:24], the rest kept");
        assert_eq!((find(0xb, 0).edx, find(0xb, 1).edx), (5, 5), "x2APIC ID");
        assert_eq!(find(7, 0), leaf(7, 0));
    }
}
