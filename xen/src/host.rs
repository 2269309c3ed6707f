//! The host side of event channels: VIRQs raised by the VMM (VIRQ_TIMER,
//! the console...) and host userspace backends connected to guest ports.
//!
//! A backend offers a port with [`EventChannels::host_alloc_unbound`] and
//! the guest binds to it with bind_interdomain(remote_dom = backend domid),
//! or the guest offers one with alloc_unbound(remote_dom = backend domid)
//! and the backend connects with [`EventChannels::host_bind_interdomain`].
//! Guest sends then arrive as `Action::NotifyBackend`; the backend sends to
//! the guest with [`EventChannels::host_send`].

use thiserror::Error;
use xevtchn_common::two_level::{self, EventWords, Outcome};
use xevtchn_common::xen::virq::{NR_VIRQS, VirqType, virq_type};

use super::actions::Action;
use super::evtchn_ops::EventChannels;
use super::ports::{Port, PortState};

/// A host-side request the VMM got wrong; never reaches the guest.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum HostError {
    #[error("VIRQ {0} is out of range")]
    VirqOutOfRange(u32),
    #[error("vCPU {0} does not exist")]
    NoSuchVcpu(u32),
    #[error("no free backend port")]
    NoFreeBackendPort,
    #[error("backend port {0} is not allocated")]
    NoSuchBackendPort(u32),
    #[error("guest port {0} is not an unbound port offered to the backend domain")]
    GuestPortNotOffered(u32),
    #[error("the guest has no free port left")]
    NoFreeGuestPort,
}

impl EventChannels {
    /// Raises `virq`: for a per-vCPU VIRQ, the port bound on `vcpu`; for any
    /// other, the port bound on vCPU 0, notifying whichever vCPU it was
    /// moved to (`vcpu` is ignored). An unbound VIRQ is dropped, like Xen's
    /// send_guest_vcpu_virq. Returns the outcome if an event was delivered.
    pub fn send_virq<W: EventWords + ?Sized>(
        &mut self,
        virq: u32,
        vcpu: u32,
        words: &W,
        out: &mut Vec<Action>,
    ) -> Result<Option<Outcome>, HostError> {
        if virq >= NR_VIRQS {
            return Err(HostError::VirqOutOfRange(virq));
        }
        let per_vcpu = virq_type(virq) == VirqType::Vcpu;
        if per_vcpu && self.check_vcpu(vcpu).is_err() {
            return Err(HostError::NoSuchVcpu(vcpu));
        }
        let port = self.ports.virq_port(virq, vcpu);
        if port == 0 {
            return Ok(None);
        }
        Ok(Some(self.deliver(port, words, out)))
    }

    /// Allocates a backend port offered to the guest: the guest connects to
    /// it with bind_interdomain(backend domid, returned port).
    pub fn host_alloc_unbound(&mut self) -> Result<u32, HostError> {
        self.backends.alloc(None).ok_or(HostError::NoFreeBackendPort)
    }

    /// Connects a new backend port to `guest_port`, an unbound port the
    /// guest offered to the backend domain. Like Xen's bind_interdomain,
    /// the binding side (the backend) is conservatively notified.
    /// Returns the backend port.
    pub fn host_bind_interdomain(&mut self, guest_port: u32, out: &mut Vec<Action>) -> Result<u32, HostError> {
        let offered = PortState::Unbound { remote_dom: self.ids.backend_domid };
        let Some(Port { vcpu, .. }) = self.ports.get(guest_port).filter(|p| p.state == offered) else {
            return Err(HostError::GuestPortNotOffered(guest_port));
        };
        let backend_port = self.backends.alloc(Some(guest_port)).ok_or(HostError::NoFreeBackendPort)?;
        self.update(guest_port, PortState::Backend { backend_port }, vcpu, out);
        out.push(Action::NotifyBackend { backend_port, guest_port });
        Ok(backend_port)
    }

    /// The backend sends to the guest: the connected guest port is set
    /// pending on its vCPU. An unconnected backend port drops the event,
    /// like a send on an unbound port. Returns the outcome if delivered.
    pub fn host_send<W: EventWords + ?Sized>(
        &mut self,
        backend_port: u32,
        words: &W,
        out: &mut Vec<Action>,
    ) -> Result<Option<Outcome>, HostError> {
        let end = self.backends.get(backend_port).ok_or(HostError::NoSuchBackendPort(backend_port))?;
        Ok(end.guest_port.map(|guest_port| self.deliver(guest_port, words, out)))
    }

    /// Closes a backend port. A connected guest port becomes unbound,
    /// offered to the backend domain again (Xen's close of one end).
    pub fn host_close(&mut self, backend_port: u32, out: &mut Vec<Action>) -> Result<(), HostError> {
        let end = self.backends.get(backend_port).ok_or(HostError::NoSuchBackendPort(backend_port))?;
        if let Some(guest_port) = end.guest_port {
            let vcpu = self.ports.get(guest_port).map_or(0, |p| p.vcpu);
            self.update(guest_port, PortState::Unbound { remote_dom: self.ids.backend_domid }, vcpu, out);
        }
        self.backends.free(backend_port);
        Ok(())
    }

    /// Whether `port` is pending in shared_info (for the delivery layer's
    /// bookkeeping and for tests).
    pub fn is_pending<W: EventWords + ?Sized>(&self, port: u32, words: &W) -> bool {
        two_level::is_pending(words, port)
    }
}

#[cfg(test)]
mod tests {
    use xevtchn_common::two_level::AtomicPage;
    use xevtchn_common::xen::virq::{VIRQ_CONSOLE, VIRQ_TIMER};

    use super::*;
    use crate::error::DomainIds;
    use crate::ports::SendTarget;

    const BACKEND: u16 = 0;

    fn channels() -> (EventChannels, Box<AtomicPage>) {
        (EventChannels::new(DomainIds { domid: 1, backend_domid: BACKEND }, 2), Box::new(AtomicPage::new()))
    }

    #[test]
    fn per_vcpu_virq_is_delivered_on_its_vcpu() {
        let (mut ch, words) = channels();
        let mut out = Vec::new();
        let port = ch.bind_virq(VIRQ_TIMER, 1, &mut out).unwrap();
        out.clear();
        let outcome = ch.send_virq(VIRQ_TIMER, 1, &*words, &mut out).unwrap();
        assert_eq!(outcome, Some(Outcome::UpcallRaised));
        assert_eq!(out, [Action::RaiseUpcall { vcpu: 1 }]);
        assert!(ch.is_pending(port, &*words));
        // Not bound on vCPU 0: dropped.
        assert_eq!(ch.send_virq(VIRQ_TIMER, 0, &*words, &mut out), Ok(None));
    }

    #[test]
    fn global_virq_follows_its_port_to_another_vcpu() {
        let (mut ch, words) = channels();
        let mut out = Vec::new();
        let port = ch.bind_virq(VIRQ_CONSOLE, 0, &mut out).unwrap();
        ch.bind_vcpu(port, 1, &*words, &mut out).unwrap();
        out.clear();
        ch.send_virq(VIRQ_CONSOLE, 0, &*words, &mut out).unwrap();
        assert_eq!(out, [Action::RaiseUpcall { vcpu: 1 }]);
    }

    #[test]
    fn bad_host_virq_requests_are_errors() {
        let (mut ch, words) = channels();
        let mut out = Vec::new();
        assert_eq!(ch.send_virq(NR_VIRQS, 0, &*words, &mut out), Err(HostError::VirqOutOfRange(NR_VIRQS)));
        assert_eq!(ch.send_virq(VIRQ_TIMER, 2, &*words, &mut out), Err(HostError::NoSuchVcpu(2)));
    }

    #[test]
    fn guest_binds_to_a_backend_offer_and_both_sides_send() {
        let (mut ch, words) = channels();
        let mut out = Vec::new();
        let backend_port = ch.host_alloc_unbound().unwrap();
        let guest_port = ch.bind_interdomain(BACKEND, backend_port, &*words, &mut out).unwrap();
        assert_eq!(ch.ports().info(guest_port).unwrap().send, SendTarget::Backend { backend_port });

        out.clear();
        ch.send(guest_port, &*words, &mut out).unwrap();
        assert_eq!(out, [Action::NotifyBackend { backend_port, guest_port }]);

        // The guest handles the bind-time notification first.
        two_level::clear_pending(&*words, guest_port);
        out.clear();
        assert!(ch.host_send(backend_port, &*words, &mut out).unwrap().is_some());
        assert!(ch.is_pending(guest_port, &*words));
    }

    #[test]
    fn backend_connects_to_a_guest_offer() {
        let (mut ch, words) = channels();
        let mut out = Vec::new();
        let guest_port = ch.alloc_unbound(1, BACKEND, &mut out).unwrap();
        out.clear();
        let backend_port = ch.host_bind_interdomain(guest_port, &mut out).unwrap();
        assert!(matches!(out[0], Action::PortUpdated { port, .. } if port == guest_port));
        assert_eq!(out[1], Action::NotifyBackend { backend_port, guest_port });
        assert_eq!(ch.host_send(backend_port, &*words, &mut out), Ok(Some(Outcome::UpcallRaised)));
    }

    #[test]
    fn backend_cannot_take_a_port_not_offered_to_it() {
        let (mut ch, _words) = channels();
        let mut out = Vec::new();
        let loopback_offer = ch.alloc_unbound(1, 1, &mut out).unwrap();
        assert_eq!(
            ch.host_bind_interdomain(loopback_offer, &mut out),
            Err(HostError::GuestPortNotOffered(loopback_offer))
        );
        assert_eq!(ch.host_bind_interdomain(4096, &mut out), Err(HostError::GuestPortNotOffered(4096)));
    }

    #[test]
    fn host_close_leaves_the_guest_port_unbound() {
        let (mut ch, words) = channels();
        let mut out = Vec::new();
        let backend_port = ch.host_alloc_unbound().unwrap();
        let guest_port = ch.bind_interdomain(BACKEND, backend_port, &*words, &mut out).unwrap();
        out.clear();
        ch.host_close(backend_port, &mut out).unwrap();
        assert_eq!(ch.ports().info(guest_port).unwrap().state, PortState::Unbound { remote_dom: BACKEND });
        assert_eq!(ch.host_send(backend_port, &*words, &mut out), Err(HostError::NoSuchBackendPort(backend_port)));
        // A guest send on it is now dropped.
        out.clear();
        assert_eq!(ch.send(guest_port, &*words, &mut out), Ok(None));
        assert!(out.is_empty());
    }

    #[test]
    fn unconnected_backend_port_drops_host_sends() {
        let (mut ch, words) = channels();
        let mut out = Vec::new();
        let backend_port = ch.host_alloc_unbound().unwrap();
        assert_eq!(ch.host_send(backend_port, &*words, &mut out), Ok(None));
        assert!(out.is_empty());
    }
}
