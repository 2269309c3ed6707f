//! HVMOP_set_param / HVMOP_get_param and HVMOP_set_evtchn_upcall_vector:
//! how the guest tells the hypervisor to notify it of events. Follows
//! xen/arch/x86/hvm/hvm.c (hvm_allow_set_param, hvm_allow_get_param,
//! hvmop_set_evtchn_upcall_vector) and xen/arch/x86/hvm/irq.c
//! (hvm_set_callback_via).

use thiserror::Error;
use xevtchn_common::xen::errno;
use xevtchn_common::xen::hvm::*;

use super::actions::Action;
use super::error::{DomainIds, DomainLookupError, XenErrno};

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum HvmError {
    #[error("HVM param {0} is out of range (HVM_NR_PARAMS = {HVM_NR_PARAMS})")]
    ParamOutOfRange(u32),
    #[error(transparent)]
    Domain(#[from] DomainLookupError),
    #[error("HVM param {0} is deprecated")]
    Deprecated(u32),
    #[error("HVM param {0} is read-only")]
    ReadOnly(u32),
    #[error("HVM param {0} may not be accessed by the guest")]
    NotPermitted(u32),
    #[error("HVM param {index} cannot be {value:#x}")]
    BadValue { index: u32, value: u64 },
    #[error("upcall vector {0:#x} is below 0x10")]
    VectorTooLow(u8),
    #[error("vCPU {0} does not exist")]
    NoSuchVcpu(u32),
    #[error(
        "the VECTOR callback ({0:#x}) needs an injection that bypasses the LAPIC, which xevtchn does not have; \
         use HVMOP_set_evtchn_upcall_vector or a GSI"
    )]
    VectorCallbackUnavailable(u8),
}

impl XenErrno for HvmError {
    fn errno(&self) -> i32 {
        match self {
            Self::ParamOutOfRange(_) | Self::Deprecated(_) | Self::VectorTooLow(_) => errno::EINVAL,
            Self::Domain(e) => e.errno(),
            Self::ReadOnly(_) => errno::EEXIST,
            Self::NotPermitted(_) => errno::EPERM,
            Self::BadValue { .. } => errno::EINVAL,
            Self::NoSuchVcpu(_) => errno::ENOENT,
            Self::VectorCallbackUnavailable(_) => errno::EOPNOTSUPP,
        }
    }
}

/// Params Xen rejects with -EINVAL either way (the `__XEN_TOOLS__` list).
const DEPRECATED: [u32; 10] = [
    HVM_PARAM_PAE_ENABLED,
    HVM_PARAM_DM_DOMAIN,
    HVM_PARAM_MEMORY_EVENT_CR0,
    HVM_PARAM_MEMORY_EVENT_CR3,
    HVM_PARAM_MEMORY_EVENT_CR4,
    HVM_PARAM_MEMORY_EVENT_INT3,
    HVM_PARAM_NESTEDHVM,
    HVM_PARAM_MEMORY_EVENT_SINGLE_STEP,
    HVM_PARAM_BUFIOREQ_EVTCHN,
    HVM_PARAM_MEMORY_EVENT_MSR,
];

/// Params a guest may set that are plain storage here (Xen stores them
/// without further checks).
const GUEST_SETTABLE: [u32; 3] = [HVM_PARAM_CALLBACK_IRQ, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_CONSOLE_EVTCHN];

/// Params Xen lets a guest set that drive emulation xevtchn has not (a
/// vm86 TSS, the ACPI PM timer's ports, VM generation ID, x87 FIP width):
/// accepted and stored, as Xen checks them (hvm_set_param), and ignored.
const GUEST_SETTABLE_IGNORED: [u32; 5] = [
    HVM_PARAM_VM86_TSS,
    HVM_PARAM_VM86_TSS_SIZED,
    HVM_PARAM_ACPI_IOPORTS_LOCATION,
    HVM_PARAM_VM_GENERATION_ID_ADDR,
    HVM_PARAM_X87_FIP_WIDTH,
];

/// Params a guest may read (hvm_allow_get_param).
const GUEST_READABLE: [u32; 11] = [
    HVM_PARAM_CALLBACK_IRQ,
    HVM_PARAM_VM86_TSS,
    HVM_PARAM_VM86_TSS_SIZED,
    HVM_PARAM_ACPI_IOPORTS_LOCATION,
    HVM_PARAM_VM_GENERATION_ID_ADDR,
    HVM_PARAM_STORE_PFN,
    HVM_PARAM_STORE_EVTCHN,
    HVM_PARAM_CONSOLE_PFN,
    HVM_PARAM_CONSOLE_EVTCHN,
    HVM_PARAM_ALTP2M,
    HVM_PARAM_X87_FIP_WIDTH,
];

/// The HVM parameters and upcall vectors of the domain.
#[derive(Clone, Debug)]
pub struct HvmState {
    ids: DomainIds,
    params: [u64; HVM_NR_PARAMS as usize],
    callback: CallbackVia,
    /// Per-vCPU upcall vector, 0 while unset.
    upcall_vectors: Vec<u8>,
    nr_gsis: u32,
}

impl HvmState {
    pub fn new(ids: DomainIds, nr_vcpus: u32, nr_gsis: u32) -> Self {
        Self {
            ids,
            params: [0; HVM_NR_PARAMS as usize],
            callback: CallbackVia::None,
            upcall_vectors: vec![0; nr_vcpus as usize],
            nr_gsis,
        }
    }

    /// The callback in effect for vCPU 0 (and for any vCPU without an
    /// upcall vector).
    pub fn callback(&self) -> CallbackVia {
        self.callback
    }

    /// The vCPU's per-vCPU upcall vector, if it set one.
    pub fn upcall_vector(&self, vcpu: u32) -> Option<u8> {
        self.upcall_vectors.get(vcpu as usize).copied().filter(|&v| v != 0)
    }

    /// The raw value of a param, as HVMOP_get_param returns it.
    pub fn param(&self, index: u32) -> Option<u64> {
        self.params.get(index as usize).copied()
    }

    fn check_index(index: u32) -> Result<(), HvmError> {
        if index < HVM_NR_PARAMS { Ok(()) } else { Err(HvmError::ParamOutOfRange(index)) }
    }

    /// Xen's policy on a callback value (hvm_set_callback_via): a GSI that
    /// is 0 or at least `nr_gsis`, or an unknown type, disables delivery.
    /// (Xen first truncates the GSI to 8 bits; a GSI above 255 is a guest
    /// bug either way and is treated as unusable here.)
    fn effective_callback(&self, value: u64) -> CallbackVia {
        match CallbackVia::decode(value) {
            CallbackVia::Gsi(gsi) if gsi == 0 || gsi >= u64::from(self.nr_gsis) => CallbackVia::None,
            CallbackVia::Unknown { .. } => CallbackVia::None,
            via => via,
        }
    }

    /// HVMOP_set_param. Setting HVM_PARAM_CALLBACK_IRQ emits
    /// `CallbackChanged`, then `RaiseUpcall` for every vCPU: Xen ends
    /// hvm_set_callback_via with hvm_assert_evtchn_irq on each online vCPU,
    /// so delivery is re-evaluated with the new callback.
    pub fn set_param(&mut self, domid: u16, index: u32, value: u64, out: &mut Vec<Action>) -> Result<(), HvmError> {
        Self::check_index(index)?;
        self.ids.require_self(domid)?;
        if DEPRECATED.contains(&index) {
            return Err(HvmError::Deprecated(index));
        }
        if index == HVM_PARAM_ALTP2M {
            return Err(HvmError::ReadOnly(index));
        }
        let bad_value = match index {
            // "Hardware would silently truncate high bits."
            HVM_PARAM_VM86_TSS => value != u64::from(value as u32),
            HVM_PARAM_X87_FIP_WIDTH => ![0, 4, 8].contains(&value),
            _ => false,
        };
        if bad_value {
            return Err(HvmError::BadValue { index, value });
        }
        if !GUEST_SETTABLE.contains(&index) && !GUEST_SETTABLE_IGNORED.contains(&index) {
            return Err(HvmError::NotPermitted(index));
        }
        // Xen delivers this type without the LAPIC (it needs no EOI), which
        // KVM can only do with its own Xen support. Refusing it, with
        // XENFEAT_hvm_callback_vector not advertised, makes guests fall back
        // to per-vCPU vectors or a GSI (Linux: xen_setup_callback_vector,
        // FreeBSD: xen_hvm_set_callback) instead of waiting for upcalls
        // that never come. Xen itself returns 0 here.
        if index == HVM_PARAM_CALLBACK_IRQ
            && let CallbackVia::Vector(vector) = CallbackVia::decode(value)
        {
            return Err(HvmError::VectorCallbackUnavailable(vector));
        }
        self.params[index as usize] = value;
        if index == HVM_PARAM_CALLBACK_IRQ {
            self.callback = self.effective_callback(value);
            out.push(Action::CallbackChanged { callback: self.callback });
            out.extend((0..self.upcall_vectors.len() as u32).map(|vcpu| Action::RaiseUpcall { vcpu }));
        }
        Ok(())
    }

    /// HVMOP_get_param: the stored value of a guest-readable param.
    pub fn get_param(&self, domid: u16, index: u32) -> Result<u64, HvmError> {
        Self::check_index(index)?;
        self.ids.require_self(domid)?;
        if DEPRECATED.contains(&index) {
            return Err(HvmError::Deprecated(index));
        }
        if !GUEST_READABLE.contains(&index) {
            return Err(HvmError::NotPermitted(index));
        }
        Ok(self.params[index as usize])
    }

    /// The toolstack's side: presets a param the guest reads (for example
    /// HVM_PARAM_STORE_PFN / STORE_EVTCHN for a xenstore backend).
    pub fn set_param_from_host(&mut self, index: u32, value: u64) -> Result<(), HvmError> {
        Self::check_index(index)?;
        self.params[index as usize] = value;
        Ok(())
    }

    /// HVMOP_set_evtchn_upcall_vector: vectors below 0x10 are -EINVAL
    /// (checked first), a missing vCPU -ENOENT. Emits `UpcallVectorSet` and
    /// `RaiseUpcall`, since Xen calls hvm_assert_evtchn_irq right away.
    pub fn set_evtchn_upcall_vector(&mut self, vcpu: u32, vector: u8, out: &mut Vec<Action>) -> Result<(), HvmError> {
        if vector < MIN_UPCALL_VECTOR {
            return Err(HvmError::VectorTooLow(vector));
        }
        let slot = self.upcall_vectors.get_mut(vcpu as usize).ok_or(HvmError::NoSuchVcpu(vcpu))?;
        *slot = vector;
        out.push(Action::UpcallVectorSet { vcpu, vector });
        out.push(Action::RaiseUpcall { vcpu });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use xevtchn_common::xen::errno::{EEXIST, EINVAL, ENOENT, EOPNOTSUPP, EPERM, ESRCH};
    use xevtchn_common::xen::hypercall::DOMID_SELF;

    use super::*;

    fn hvm() -> HvmState {
        HvmState::new(DomainIds { domid: 1, backend_domid: 0 }, 2, 24)
    }

    fn set(h: &mut HvmState, index: u32, value: u64) -> Result<Vec<Action>, i32> {
        let mut out = Vec::new();
        h.set_param(DOMID_SELF, index, value, &mut out).map(|()| out).map_err(|e| e.errno())
    }

    #[test]
    fn callback_gsi_is_stored_decoded_and_reasserted_on_every_vcpu() {
        let mut h = hvm();
        let value = CallbackVia::Gsi(5).encode();
        let out = set(&mut h, HVM_PARAM_CALLBACK_IRQ, value).unwrap();
        assert_eq!(
            out,
            [
                Action::CallbackChanged { callback: CallbackVia::Gsi(5) },
                Action::RaiseUpcall { vcpu: 0 },
                Action::RaiseUpcall { vcpu: 1 },
            ]
        );
        assert_eq!(h.callback(), CallbackVia::Gsi(5));
        assert_eq!(h.get_param(DOMID_SELF, HVM_PARAM_CALLBACK_IRQ), Ok(value));
    }

    #[test]
    fn callback_pci_intx_and_vector_are_decoded_as_params_h_says() {
        let mut h = hvm();
        let intx = CallbackVia::PciIntx { domain: 0, bus: 0, devfn: 3 << 3, pin: 0 };
        set(&mut h, HVM_PARAM_CALLBACK_IRQ, intx.encode()).unwrap();
        assert_eq!(h.callback(), intx);
        // The VECTOR type is refused (Xen returns 0 and delivers it
        // without the LAPIC, which xevtchn cannot): nothing changes.
        let mut out = Vec::new();
        let err = h.set_param(DOMID_SELF, HVM_PARAM_CALLBACK_IRQ, (2 << 56) | 0xf3, &mut out).unwrap_err();
        assert_eq!(err.errno(), EOPNOTSUPP);
        assert!(out.is_empty());
        assert_eq!(h.callback(), intx);
        assert_eq!(h.get_param(DOMID_SELF, HVM_PARAM_CALLBACK_IRQ), Ok(intx.encode()));
    }

    #[test]
    fn unusable_callbacks_disable_delivery_but_succeed_like_xen() {
        let mut h = hvm();
        // hvm_set_callback_via: GSI 0 or >= nr_gsis → HVMIRQ_callback_none;
        // type > VECTOR → none. The set itself returns 0.
        for value in [0, 24, 3u64 << 56] {
            let out = set(&mut h, HVM_PARAM_CALLBACK_IRQ, value).unwrap();
            assert_eq!(out[0], Action::CallbackChanged { callback: CallbackVia::None });
            assert_eq!(h.get_param(DOMID_SELF, HVM_PARAM_CALLBACK_IRQ), Ok(value), "raw value kept");
        }
    }

    #[test]
    fn param_index_out_of_range_is_einval() {
        let mut h = hvm();
        assert_eq!(set(&mut h, HVM_NR_PARAMS, 1), Err(EINVAL));
        assert_eq!(h.get_param(DOMID_SELF, HVM_NR_PARAMS).unwrap_err().errno(), EINVAL);
    }

    #[test]
    fn params_of_another_domain_are_esrch_or_eperm() {
        let mut h = hvm();
        let mut out = Vec::new();
        assert_eq!(h.set_param(7, HVM_PARAM_CALLBACK_IRQ, 1, &mut out).unwrap_err().errno(), ESRCH);
        assert_eq!(h.get_param(0, HVM_PARAM_CALLBACK_IRQ).unwrap_err().errno(), EPERM);
        assert!(out.is_empty());
    }

    #[test]
    fn deprecated_read_only_and_private_params_follow_hvm_allow_set_param() {
        let mut h = hvm();
        assert_eq!(set(&mut h, HVM_PARAM_NESTEDHVM, 1), Err(EINVAL));
        assert_eq!(set(&mut h, HVM_PARAM_ALTP2M, 1), Err(EEXIST));
        assert_eq!(set(&mut h, HVM_PARAM_IDENT_PT, 1), Err(EPERM));
        assert_eq!(set(&mut h, HVM_PARAM_STORE_PFN, 1), Err(EPERM));
        assert_eq!(h.get_param(DOMID_SELF, HVM_PARAM_DM_DOMAIN).unwrap_err().errno(), EINVAL);
        assert_eq!(h.get_param(DOMID_SELF, HVM_PARAM_IDENT_PT).unwrap_err().errno(), EPERM);
    }

    #[test]
    fn params_of_emulation_not_here_are_checked_stored_and_ignored_like_xen() {
        let mut h = hvm();
        for (index, value) in [
            (HVM_PARAM_VM86_TSS, 0xf000),
            (HVM_PARAM_ACPI_IOPORTS_LOCATION, 1),
            (HVM_PARAM_VM_GENERATION_ID_ADDR, 0x1234_5000),
            (HVM_PARAM_X87_FIP_WIDTH, 8),
        ] {
            assert_eq!(set(&mut h, index, value), Ok(vec![]), "param {index}");
            assert_eq!(h.get_param(DOMID_SELF, index), Ok(value), "param {index} reads back");
        }
        assert_eq!(set(&mut h, HVM_PARAM_X87_FIP_WIDTH, 2), Err(EINVAL));
        assert_eq!(set(&mut h, HVM_PARAM_VM86_TSS, 1 << 32), Err(EINVAL), "would be truncated");
    }

    #[test]
    fn store_params_flow_from_host_and_guest() {
        let mut h = hvm();
        h.set_param_from_host(HVM_PARAM_STORE_PFN, 0xfeff0).unwrap();
        assert_eq!(h.get_param(DOMID_SELF, HVM_PARAM_STORE_PFN), Ok(0xfeff0));
        assert_eq!(set(&mut h, HVM_PARAM_STORE_EVTCHN, 3), Ok(vec![]));
        assert_eq!(h.get_param(1, HVM_PARAM_STORE_EVTCHN), Ok(3));
        assert_eq!(h.set_param_from_host(HVM_NR_PARAMS, 0).unwrap_err().errno(), EINVAL);
    }

    #[test]
    fn upcall_vector_is_set_and_asserted() {
        let mut h = hvm();
        let mut out = Vec::new();
        h.set_evtchn_upcall_vector(1, 0xf3, &mut out).unwrap();
        assert_eq!(out, [Action::UpcallVectorSet { vcpu: 1, vector: 0xf3 }, Action::RaiseUpcall { vcpu: 1 }]);
        assert_eq!(h.upcall_vector(1), Some(0xf3));
        assert_eq!(h.upcall_vector(0), None);
    }

    #[test]
    fn upcall_vector_below_0x10_is_einval_before_the_vcpu_check() {
        let mut h = hvm();
        let mut out = Vec::new();
        assert_eq!(h.set_evtchn_upcall_vector(9, 0x0f, &mut out).unwrap_err().errno(), EINVAL);
        assert_eq!(h.set_evtchn_upcall_vector(2, 0x10, &mut out).unwrap_err().errno(), ENOENT);
        assert!(h.set_evtchn_upcall_vector(0, 0x10, &mut out).is_ok());
    }
}
