//! HVM hypercall ABI: xen/include/public/hvm/hvm_op.h and hvm/params.h.
//!
//! `HYPERVISOR_hvm_op(op, arg)`. The event-channel relevant parts are
//! `HVMOP_set_param`/`HVMOP_get_param` of `HVM_PARAM_CALLBACK_IRQ` (how
//! vCPU 0 is notified) and `HVMOP_set_evtchn_upcall_vector` (a per-vCPU
//! LAPIC vector, which takes precedence over the callback).
#![allow(non_upper_case_globals)]

use core::mem::{offset_of, size_of};

use super::abi::impl_xen_abi;

pub const HVMOP_set_param: u64 = 0;
pub const HVMOP_get_param: u64 = 1;
pub const HVMOP_flush_tlbs: u64 = 5;
pub const HVMOP_pagetable_dying: u64 = 9;
pub const HVMOP_get_time: u64 = 10;
pub const HVMOP_get_mem_type: u64 = 15;
pub const HVMOP_set_evtchn_upcall_vector: u64 = 23;
pub const HVMOP_guest_request_vm_event: u64 = 24;
pub const HVMOP_altp2m: u64 = 25;

/// Upcall vectors below this are rejected with -EINVAL
/// (hvmop_set_evtchn_upcall_vector in xen/arch/x86/hvm/hvm.c).
pub const MIN_UPCALL_VECTOR: u8 = 0x10;

/// `HVM_PARAM_*` indices (params.h).
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
pub const HVM_PARAM_STORE_PFN: u32 = 1;
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
pub const HVM_PARAM_PAE_ENABLED: u32 = 4;
pub const HVM_PARAM_IOREQ_PFN: u32 = 5;
pub const HVM_PARAM_BUFIOREQ_PFN: u32 = 6;
pub const HVM_PARAM_VIRIDIAN: u32 = 9;
pub const HVM_PARAM_TIMER_MODE: u32 = 10;
pub const HVM_PARAM_HPET_ENABLED: u32 = 11;
pub const HVM_PARAM_IDENT_PT: u32 = 12;
pub const HVM_PARAM_DM_DOMAIN: u32 = 13;
pub const HVM_PARAM_ACPI_S_STATE: u32 = 14;
pub const HVM_PARAM_VM86_TSS: u32 = 15;
pub const HVM_PARAM_VPT_ALIGN: u32 = 16;
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
pub const HVM_PARAM_ACPI_IOPORTS_LOCATION: u32 = 19;
pub const HVM_PARAM_MEMORY_EVENT_CR0: u32 = 20;
pub const HVM_PARAM_MEMORY_EVENT_CR3: u32 = 21;
pub const HVM_PARAM_MEMORY_EVENT_CR4: u32 = 22;
pub const HVM_PARAM_MEMORY_EVENT_INT3: u32 = 23;
pub const HVM_PARAM_NESTEDHVM: u32 = 24;
pub const HVM_PARAM_MEMORY_EVENT_SINGLE_STEP: u32 = 25;
pub const HVM_PARAM_BUFIOREQ_EVTCHN: u32 = 26;
pub const HVM_PARAM_PAGING_RING_PFN: u32 = 27;
pub const HVM_PARAM_MONITOR_RING_PFN: u32 = 28;
pub const HVM_PARAM_SHARING_RING_PFN: u32 = 29;
pub const HVM_PARAM_MEMORY_EVENT_MSR: u32 = 30;
pub const HVM_PARAM_TRIPLE_FAULT_REASON: u32 = 31;
pub const HVM_PARAM_IOREQ_SERVER_PFN: u32 = 32;
pub const HVM_PARAM_NR_IOREQ_SERVER_PAGES: u32 = 33;
pub const HVM_PARAM_VM_GENERATION_ID_ADDR: u32 = 34;
pub const HVM_PARAM_ALTP2M: u32 = 35;
pub const HVM_PARAM_X87_FIP_WIDTH: u32 = 36;
pub const HVM_PARAM_VM86_TSS_SIZED: u32 = 37;
pub const HVM_PARAM_MCA_CAP: u32 = 38;
pub const HVM_NR_PARAMS: u32 = 39;

/// `HVM_PARAM_CALLBACK_IRQ` value: bits 63:56 are the type.
pub const HVM_PARAM_CALLBACK_IRQ_TYPE_MASK: u64 = 0xFF00_0000_0000_0000;
const CALLBACK_TYPE_SHIFT: u32 = 56;
pub const HVM_PARAM_CALLBACK_TYPE_GSI: u8 = 0;
pub const HVM_PARAM_CALLBACK_TYPE_PCI_INTX: u8 = 1;
/// x86 only (on Arm, 2 means PPI).
pub const HVM_PARAM_CALLBACK_TYPE_VECTOR: u8 = 2;

/// How vCPU 0's event-channel notifications are delivered, decoded from an
/// `HVM_PARAM_CALLBACK_IRQ` value exactly as params.h defines it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallbackVia {
    /// `val == 0`: notifications are not delivered (GSI 0 aliases this).
    None,
    /// Type 0: `val[55:0]` is a GSI, level triggered, asserted while vCPU 0's
    /// `evtchn_upcall_pending` is set.
    Gsi(u64),
    /// Type 1: a PCI INTx line, Domain = `val[47:32]`, Bus = `val[31:16]`,
    /// DevFn = `val[15:8]`, IntX = `val[1:0]` (0 = INTA).
    PciIntx { domain: u16, bus: u16, devfn: u8, pin: u8 },
    /// Type 2 (x86): `val[7:0]` is a vector injected directly, not through
    /// the LAPIC, and never EOIed by the guest.
    Vector(u8),
    /// Any other type: not defined for x86. Xen treats it as `None`
    /// (hvm_set_callback_via in xen/arch/x86/hvm/irq.c).
    Unknown { kind: u8 },
}

impl CallbackVia {
    /// Decodes an `HVM_PARAM_CALLBACK_IRQ` value.
    pub const fn decode(value: u64) -> Self {
        if value == 0 {
            return Self::None;
        }
        let kind = (value >> CALLBACK_TYPE_SHIFT) as u8;
        match kind {
            HVM_PARAM_CALLBACK_TYPE_GSI => Self::Gsi(value & !HVM_PARAM_CALLBACK_IRQ_TYPE_MASK),
            HVM_PARAM_CALLBACK_TYPE_PCI_INTX => Self::PciIntx {
                domain: ((value >> 32) & 0xffff) as u16,
                bus: ((value >> 16) & 0xffff) as u16,
                devfn: ((value >> 8) & 0xff) as u8,
                pin: (value & 0x3) as u8,
            },
            HVM_PARAM_CALLBACK_TYPE_VECTOR => Self::Vector((value & 0xff) as u8),
            _ => Self::Unknown { kind },
        }
    }

    /// Encodes the value a guest writes to `HVM_PARAM_CALLBACK_IRQ`.
    /// `Unknown` encodes as its type with a zero payload.
    pub const fn encode(self) -> u64 {
        const fn kind(k: u8) -> u64 {
            (k as u64) << CALLBACK_TYPE_SHIFT
        }
        match self {
            Self::None => 0,
            Self::Gsi(gsi) => kind(HVM_PARAM_CALLBACK_TYPE_GSI) | (gsi & !HVM_PARAM_CALLBACK_IRQ_TYPE_MASK),
            Self::PciIntx { domain, bus, devfn, pin } => {
                kind(HVM_PARAM_CALLBACK_TYPE_PCI_INTX)
                    | (domain as u64) << 32
                    | (bus as u64) << 16
                    | (devfn as u64) << 8
                    | (pin & 0x3) as u64
            }
            Self::Vector(vector) => kind(HVM_PARAM_CALLBACK_TYPE_VECTOR) | vector as u64,
            Self::Unknown { kind: k } => kind(k),
        }
    }
}

/// The GSI of PCI device `device`'s INTx line `intx` (0 = INTA) in Xen's
/// HVM platform: hvm_pci_intx_gsi (xen/arch/x86/include/asm/hvm/irq.h).
pub const fn pci_intx_gsi(device: u8, intx: u8) -> u32 {
    let (d, i) = (device as u32, intx as u32);
    (((d << 2) + (d >> 3) + i) & 31) + 16
}

/// `struct xen_hvm_param` (hvm/hvm_op.h): argument of HVMOP_set_param and
/// HVMOP_get_param.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenHvmParam {
    /// IN
    pub domid: u16,
    pub pad: u16,
    /// IN: `HVM_PARAM_*`
    pub index: u32,
    /// IN (set) / OUT (get)
    pub value: u64,
}
const _: () = assert!(size_of::<XenHvmParam>() == 16);
const _: () = assert!(offset_of!(XenHvmParam, domid) == 0);
const _: () = assert!(offset_of!(XenHvmParam, pad) == 2);
const _: () = assert!(offset_of!(XenHvmParam, index) == 4);
const _: () = assert!(offset_of!(XenHvmParam, value) == 8);

/// `struct xen_hvm_evtchn_upcall_vector` (hvm/hvm_op.h): argument of
/// HVMOP_set_evtchn_upcall_vector.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenHvmEvtchnUpcallVector {
    pub vcpu: u32,
    pub vector: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(size_of::<XenHvmEvtchnUpcallVector>() == 8);
const _: () = assert!(offset_of!(XenHvmEvtchnUpcallVector, vcpu) == 0);
const _: () = assert!(offset_of!(XenHvmEvtchnUpcallVector, vector) == 4);

impl_xen_abi!(XenHvmParam, XenHvmEvtchnUpcallVector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_decode_follows_params_h() {
        assert_eq!(CallbackVia::decode(0), CallbackVia::None);
        assert_eq!(CallbackVia::decode(5), CallbackVia::Gsi(5));
        // Domain = val[47:32], Bus = val[31:16], DevFn = val[15:8], IntX = val[1:0].
        let intx = (1u64 << 56) | (0x0001u64 << 32) | (0x0002 << 16) | (0x18 << 8) | 0x7;
        assert_eq!(CallbackVia::decode(intx), CallbackVia::PciIntx { domain: 1, bus: 2, devfn: 0x18, pin: 3 });
        assert_eq!(CallbackVia::decode((2u64 << 56) | 0x1f3), CallbackVia::Vector(0xf3));
        assert_eq!(CallbackVia::decode(3u64 << 56), CallbackVia::Unknown { kind: 3 });
    }

    #[test]
    fn callback_encode_round_trips() {
        for via in [
            CallbackVia::None,
            CallbackVia::Gsi(9),
            CallbackVia::PciIntx { domain: 0, bus: 0, devfn: 0x10, pin: 1 },
            CallbackVia::Vector(0xf3),
            CallbackVia::Unknown { kind: 0x80 },
        ] {
            assert_eq!(CallbackVia::decode(via.encode()), via);
        }
    }
}
