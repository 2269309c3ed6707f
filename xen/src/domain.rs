//! The Xen domain as the hypervisor side sees it: event channels, HVM
//! callback state, the shared_info placement and the version it reports.
//! The VMM owns one `Domain` per VM (behind a lock shared by the vCPU
//! threads) and the delivery layer queries it to keep the BPF port map,
//! ioeventfds and interrupt routes coherent.

use xevtchn_common::two_level::{EventWords, Outcome};
use xevtchn_common::xen::hvm::CallbackVia;

use super::actions::Action;
use super::config::{ConfigError, DomainConfig, XenVersion};
use super::error::DomainIds;
use super::evtchn_ops::EventChannels;
use super::host::HostError;
use super::hvm_ops::{HvmError, HvmState};
use super::memory_ops::E820Entry;
use super::ports::PortInfo;

/// The result of a send rung on a doorbell (the port is in the address,
/// not in a hypercall argument in memory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendResult {
    /// What EVTCHNOP_send would return: 0 or `-errno`.
    pub ret: i64,
    /// The 2-level outcome, when an event was set pending in the guest.
    pub outcome: Option<Outcome>,
    pub actions: Vec<Action>,
}

#[derive(Clone, Debug)]
pub struct Domain {
    pub(super) ids: DomainIds,
    pub(super) nr_vcpus: u32,
    pub(super) evtchn: EventChannels,
    pub(super) hvm: HvmState,
    pub(super) shared_info_gfn: Option<u64>,
    pub(super) version: XenVersion,
    pub(super) memory_map: Vec<E820Entry>,
    /// Guest RAM is [0, ram_end) (0: unknown, no vcpu_info may move).
    pub(super) ram_end: u64,
    /// Per vCPU: where VCPUOP_register_vcpu_info put its vcpu_info.
    pub(super) vcpu_info: Vec<Option<u64>>,
}

impl Domain {
    pub fn new(config: DomainConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let ids = config.ids();
        Ok(Self {
            ids,
            nr_vcpus: config.nr_vcpus,
            evtchn: EventChannels::new(ids, config.nr_vcpus),
            hvm: HvmState::new(ids, config.nr_vcpus, config.nr_gsis),
            shared_info_gfn: None,
            version: config.version,
            memory_map: config.memory_map,
            ram_end: config.ram_end,
            vcpu_info: vec![None; config.nr_vcpus as usize],
        })
    }

    pub fn ids(&self) -> DomainIds {
        self.ids
    }

    pub fn nr_vcpus(&self) -> u32 {
        self.nr_vcpus
    }

    pub fn version(&self) -> &XenVersion {
        &self.version
    }

    /// A port's state, notify vCPU and send target (`None` beyond the
    /// table; a free port reports `PortState::Free`).
    pub fn port_info(&self, port: u32) -> Option<PortInfo> {
        self.evtchn.ports().info(port)
    }

    /// EVTCHNOP_send on `port`, rung on its doorbell: the validation and
    /// delivery of the hypercall, without reading guest memory.
    pub fn doorbell_send<W: EventWords + ?Sized>(&mut self, port: u32, words: &W) -> SendResult {
        let mut actions = Vec::new();
        match self.evtchn.send(port, words, &mut actions) {
            Ok(outcome) => SendResult { ret: 0, outcome, actions },
            Err(e) => {
                log::debug!("doorbell send on port {port}: {e}");
                SendResult { ret: super::error::XenErrno::ret(&e), outcome: None, actions }
            }
        }
    }

    /// Every port in use, in port order: what the BPF port map should hold.
    pub fn bound_ports(&self) -> impl Iterator<Item = (u32, PortInfo)> + '_ {
        self.evtchn.ports().in_use()
    }

    /// The callback in effect (HVM_PARAM_CALLBACK_IRQ after Xen's policy).
    pub fn callback(&self) -> CallbackVia {
        self.hvm.callback()
    }

    /// The vCPU's per-vCPU upcall vector, if set.
    pub fn upcall_vector(&self, vcpu: u32) -> Option<u8> {
        self.hvm.upcall_vector(vcpu)
    }

    /// Where `vcpu`'s vcpu_info lives when the guest registered one
    /// (VCPUOP_register_vcpu_info), as a guest-physical address.
    pub fn vcpu_info(&self, vcpu: u32) -> Option<u64> {
        self.vcpu_info.get(vcpu as usize).copied().flatten()
    }

    /// Where the guest placed shared_info, once it has.
    pub fn shared_info_gfn(&self) -> Option<u64> {
        self.shared_info_gfn
    }

    /// The raw value of an HVM param, as HVMOP_get_param would return it.
    pub fn hvm_param(&self, index: u32) -> Option<u64> {
        self.hvm.param(index)
    }

    /// Presets an HVM param for the guest to read (toolstack side).
    pub fn set_hvm_param_from_host(&mut self, index: u32, value: u64) -> Result<(), HvmError> {
        self.hvm.set_param_from_host(index, value)
    }

    /// Raises a VIRQ from the host (see `EventChannels::send_virq`).
    pub fn send_virq<W: EventWords + ?Sized>(
        &mut self,
        virq: u32,
        vcpu: u32,
        words: &W,
    ) -> Result<(Option<Outcome>, Vec<Action>), HostError> {
        let mut out = Vec::new();
        let outcome = self.evtchn.send_virq(virq, vcpu, words, &mut out)?;
        Ok((outcome, out))
    }

    /// A host backend offers a port to the guest; returns the backend port.
    pub fn host_alloc_unbound(&mut self) -> Result<u32, HostError> {
        self.evtchn.host_alloc_unbound()
    }

    /// A host backend connects to a port the guest offered it; returns the
    /// backend port.
    pub fn host_bind_interdomain(&mut self, guest_port: u32) -> Result<(u32, Vec<Action>), HostError> {
        let mut out = Vec::new();
        let backend_port = self.evtchn.host_bind_interdomain(guest_port, &mut out)?;
        Ok((backend_port, out))
    }

    /// The toolstack's side of a backend channel (the console's,
    /// xenstore's): allocates an unbound guest port offered to the backend
    /// domain, as `alloc_unbound` in the guest's name, and connects a new
    /// backend port to it. Returns (guest port, backend port, actions).
    pub fn toolstack_connect(&mut self) -> Result<(u32, u32, Vec<Action>), HostError> {
        let mut out = Vec::new();
        let guest_port = self
            .evtchn
            .alloc_unbound(self.ids.domid, self.ids.backend_domid, &mut out)
            .map_err(|_| HostError::NoFreeGuestPort)?;
        let backend_port = self.evtchn.host_bind_interdomain(guest_port, &mut out)?;
        Ok((guest_port, backend_port, out))
    }

    /// A host backend sends to the guest.
    pub fn host_send<W: EventWords + ?Sized>(
        &mut self,
        backend_port: u32,
        words: &W,
    ) -> Result<(Option<Outcome>, Vec<Action>), HostError> {
        let mut out = Vec::new();
        let outcome = self.evtchn.host_send(backend_port, words, &mut out)?;
        Ok((outcome, out))
    }

    /// A host backend closes its port.
    pub fn host_close(&mut self, backend_port: u32) -> Result<Vec<Action>, HostError> {
        let mut out = Vec::new();
        self.evtchn.host_close(backend_port, &mut out)?;
        Ok(out)
    }
}
