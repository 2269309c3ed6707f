//! Finding Xen and setting up event-channel delivery, as a Linux HVM guest
//! does (arch/x86/xen/enlighten_hvm.c, drivers/xen/events).

use xevtchn_common::{
    guest_abi::{Params, callback},
    xen::{
        cpuid::{
            XEN_CPUID_SIGNATURE_EBX, XEN_CPUID_SIGNATURE_ECX, XEN_CPUID_SIGNATURE_EDX, XEN_HVM_CPUID_UPCALL_VECTOR,
        },
        hvm::{CallbackVia, pci_intx_gsi},
    },
};

use super::{hypercall, ops, shared_info};
use crate::{
    arch::{
        cpu::{cpuid, wrmsr},
        interrupts::{CALLBACK_GSI_VECTOR, UPCALL_VECTOR},
    },
    errors::{self, Error},
    ioapic,
};

/// The PCI device whose INTA line the callback workload uses (devfn 1.0):
/// Xen maps it to GSI 20, within the 24 pins of KVM's IOAPIC.
pub const CALLBACK_DEVFN: u8 = 1 << 3;

/// The hypercall-page MSR Xen advertised (CPUID base + 2).
pub static HYPERCALL_MSR: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// Finds Xen's CPUID leaves; returns the base leaf.
fn find_xen() -> Result<u32, Error> {
    for base in (0x4000_0000..0x4001_0000).step_by(0x100) {
        let (eax, ebx, ecx, edx) = cpuid(base);
        if (ebx, ecx, edx) == (XEN_CPUID_SIGNATURE_EBX, XEN_CPUID_SIGNATURE_ECX, XEN_CPUID_SIGNATURE_EDX)
            && eax >= base + 4
        {
            return Ok(base);
        }
    }
    Err(errors::NO_XEN)
}

/// Once per domain (vCPU 0): hypercall page, shared_info.
pub fn domain(params: &Params) -> Result<(), Error> {
    let base = find_xen()?;
    let (pages, msr, _, _) = cpuid(base + 2);
    if pages < 1 {
        return Err(errors::NO_HYPERCALL_PAGE);
    }
    let (features, _, _, _) = cpuid(base + 4);
    if features & XEN_HVM_CPUID_UPCALL_VECTOR == 0 {
        return Err(errors::NO_UPCALL_VECTOR);
    }
    HYPERCALL_MSR.store(msr, core::sync::atomic::Ordering::Relaxed);
    wrmsr(msr, hypercall::page_address());
    let gpa = shared_info::place(params.shared_info_gpa);
    ops::place_shared_info(gpa >> 12).map_err(|e| errors::hypercall(errors::SHARED_INFO, e))
}

/// Per vCPU: the per-vCPU upcall vector, or for vCPU 0 the callback the
/// workload asked for (GSI or PCI INTx through the IOAPIC).
pub fn vcpu(vcpu: u32, params: &Params) -> Result<(), Error> {
    if vcpu == 0 && params.callback != callback::VECTOR {
        return set_level_callback(params.callback, params.callback_gsi);
    }
    ops::set_upcall_vector(vcpu, UPCALL_VECTOR).map_err(|e| errors::hypercall(errors::UPCALL_VECTOR, e))
}

/// Switches vCPU 0 to a GSI or PCI INTx callback (`kind` from
/// guest_abi::callback) and routes that GSI to CALLBACK_GSI_VECTOR.
pub fn set_level_callback(kind: u32, gsi: u32) -> Result<(), Error> {
    let (via, line) = match kind {
        callback::GSI => (CallbackVia::Gsi(u64::from(gsi)), gsi),
        _ => (
            CallbackVia::PciIntx { domain: 0, bus: 0, devfn: CALLBACK_DEVFN, pin: 0 },
            pci_intx_gsi(CALLBACK_DEVFN >> 3, 0),
        ),
    };
    ioapic::route_level(line, CALLBACK_GSI_VECTOR, 0);
    ops::set_callback_irq(via.encode()).map_err(|e| errors::hypercall(errors::CALLBACK_IRQ, e))?;
    match ops::get_callback_irq() {
        Ok(v) if v == via.encode() => Ok(()),
        Ok(_) => Err(errors::CALLBACK_READBACK),
        Err(e) => Err(errors::hypercall(errors::CALLBACK_IRQ, e)),
    }
}
