//! The port table of the domain: 4096 ports of the 2-level ABI, each with
//! its state and the vCPU it notifies, plus the per-vCPU VIRQ bindings.
//!
//! Like Xen (evtchn_init) port 0 is reserved and never allocated; free ports
//! are found by a linear scan from 1, as QEMU does (Xen scans from 0, where
//! it finds port 0 reserved). FIFO's 2^17 ports would change only
//! [`NR_PORTS`] and the event words, not this table's shape.

use xevtchn_common::two_level;
use xevtchn_common::xen::evtchn::{
    EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_ipi, EVTCHNSTAT_unbound, EVTCHNSTAT_virq,
};
use xevtchn_common::xen::virq::{NR_VIRQS, VirqType, virq_type};

/// Ports of the 2-level ABI for a 64-bit guest.
pub const NR_PORTS: u32 = two_level::NR_PORTS;

/// What a port is bound to (Xen's ECS_* states, with interdomain split by
/// where the other end lives).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Not in use (ECS_FREE).
    Free,
    /// Port 0, never allocated (ECS_RESERVED).
    Reserved,
    /// Allocated, waiting for `remote_dom` to bind to it (ECS_UNBOUND).
    /// Sends on it are dropped.
    Unbound { remote_dom: u16 },
    /// Interdomain to `peer`, a port of this same domain (loopback).
    Loopback { peer: u32 },
    /// Interdomain to a host-side backend's port.
    Backend { backend_port: u32 },
    /// Bound to a virtual IRQ (ECS_VIRQ).
    Virq { virq: u32 },
    /// Bound for IPIs: a send notifies the port itself (ECS_IPI).
    Ipi,
}

impl PortState {
    /// `EVTCHNSTAT_*` as EVTCHNOP_status reports it.
    pub fn evtchnstat(self) -> u32 {
        match self {
            Self::Free | Self::Reserved => EVTCHNSTAT_closed,
            Self::Unbound { .. } => EVTCHNSTAT_unbound,
            Self::Loopback { .. } | Self::Backend { .. } => EVTCHNSTAT_interdomain,
            Self::Virq { .. } => EVTCHNSTAT_virq,
            Self::Ipi => EVTCHNSTAT_ipi,
        }
    }

    /// A short name for error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Free => "closed",
            Self::Reserved => "reserved",
            Self::Unbound { .. } => "unbound",
            Self::Loopback { .. } => "interdomain (loopback)",
            Self::Backend { .. } => "interdomain (backend)",
            Self::Virq { .. } => "bound to a VIRQ",
            Self::Ipi => "bound for IPIs",
        }
    }

    pub fn in_use(self) -> bool {
        !matches!(self, Self::Free | Self::Reserved)
    }
}

/// Where an EVTCHNOP_send on a port goes: what the BPF port map needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendTarget {
    /// Set `port` pending and notify `vcpu` (IPI: the port itself;
    /// loopback: the peer port and its vCPU).
    Deliver { port: u32, vcpu: u32 },
    /// Notify the host-side backend (userspace).
    Backend { backend_port: u32 },
    /// Unbound: the send succeeds and is dropped.
    Drop,
    /// Closed, reserved or VIRQ: the send fails with -EINVAL.
    Reject,
}

/// A port as the delivery layer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    pub state: PortState,
    /// The vCPU this port notifies when an event arrives on it.
    pub vcpu: u32,
    /// What a send from the guest on this port does.
    pub send: SendTarget,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Port {
    pub state: PortState,
    pub vcpu: u32,
}

const FREE: Port = Port { state: PortState::Free, vcpu: 0 };

/// The ports and the VIRQ bindings of one domain.
#[derive(Clone, Debug)]
pub struct PortTable {
    ports: Vec<Port>,
    /// `virq_to_port[vcpu][virq]`, 0 when unbound. Global and per-domain
    /// VIRQs are recorded on vCPU 0, as Xen's `virq_to_evtchn`.
    virq_to_port: Vec<[u32; NR_VIRQS as usize]>,
}

impl PortTable {
    pub fn new(nr_vcpus: u32) -> Self {
        let mut ports = vec![FREE; NR_PORTS as usize];
        ports[0].state = PortState::Reserved;
        Self { ports, virq_to_port: vec![[0; NR_VIRQS as usize]; nr_vcpus as usize] }
    }

    pub(super) fn get(&self, port: u32) -> Option<Port> {
        self.ports.get(port as usize).copied()
    }

    pub(super) fn set(&mut self, port: u32, state: PortState, vcpu: u32) {
        if let Some(slot) = self.ports.get_mut(port as usize) {
            *slot = Port { state, vcpu };
        }
    }

    /// The lowest free port from 1, if any.
    pub fn find_free(&self) -> Option<u32> {
        (1..NR_PORTS).find(|&port| self.ports[port as usize].state == PortState::Free)
    }

    /// The port's state, vCPU and send target; `None` beyond [`NR_PORTS`].
    pub fn info(&self, port: u32) -> Option<PortInfo> {
        let Port { state, vcpu } = self.get(port)?;
        let send = match state {
            PortState::Ipi => SendTarget::Deliver { port, vcpu },
            PortState::Loopback { peer } => {
                SendTarget::Deliver { port: peer, vcpu: self.get(peer).map_or(0, |p| p.vcpu) }
            }
            PortState::Backend { backend_port } => SendTarget::Backend { backend_port },
            PortState::Unbound { .. } => SendTarget::Drop,
            PortState::Free | PortState::Reserved | PortState::Virq { .. } => SendTarget::Reject,
        };
        Some(PortInfo { state, vcpu, send })
    }

    /// Every port in use, in port order.
    pub fn in_use(&self) -> impl Iterator<Item = (u32, PortInfo)> + '_ {
        (0..NR_PORTS).filter_map(|port| self.info(port).filter(|info| info.state.in_use()).map(|info| (port, info)))
    }

    /// The vCPU whose table records `virq` bound on `vcpu`.
    fn virq_slot(virq: u32, vcpu: u32) -> u32 {
        if virq_type(virq) == VirqType::Vcpu { vcpu } else { 0 }
    }

    /// The port `virq` is bound to for `vcpu` (ignored for global VIRQs),
    /// or 0.
    pub fn virq_port(&self, virq: u32, vcpu: u32) -> u32 {
        self.virq_to_port
            .get(Self::virq_slot(virq, vcpu) as usize)
            .and_then(|table| table.get(virq as usize))
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn set_virq_port(&mut self, virq: u32, vcpu: u32, port: u32) {
        if let Some(slot) = self
            .virq_to_port
            .get_mut(Self::virq_slot(virq, vcpu) as usize)
            .and_then(|table| table.get_mut(virq as usize))
        {
            *slot = port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xevtchn_common::xen::virq::{VIRQ_CONSOLE, VIRQ_TIMER};

    #[test]
    fn port_zero_is_reserved_and_allocation_starts_at_one() {
        let mut table = PortTable::new(2);
        assert_eq!(table.get(0).unwrap().state, PortState::Reserved);
        assert_eq!(table.find_free(), Some(1));
        table.set(1, PortState::Ipi, 0);
        table.set(2, PortState::Ipi, 0);
        assert_eq!(table.find_free(), Some(3));
        table.set(1, PortState::Free, 0);
        assert_eq!(table.find_free(), Some(1));
    }

    #[test]
    fn a_full_table_has_no_free_port() {
        let mut table = PortTable::new(1);
        for port in 1..NR_PORTS {
            table.set(port, PortState::Ipi, 0);
        }
        assert_eq!(table.find_free(), None);
    }

    #[test]
    fn send_targets_follow_the_state() {
        let mut table = PortTable::new(4);
        table.set(1, PortState::Ipi, 2);
        table.set(2, PortState::Loopback { peer: 3 }, 0);
        table.set(3, PortState::Loopback { peer: 2 }, 3);
        table.set(4, PortState::Unbound { remote_dom: 1 }, 0);
        table.set(5, PortState::Backend { backend_port: 9 }, 1);
        table.set(6, PortState::Virq { virq: 0 }, 1);
        let send = |port| table.info(port).unwrap().send;
        assert_eq!(send(1), SendTarget::Deliver { port: 1, vcpu: 2 });
        assert_eq!(send(2), SendTarget::Deliver { port: 3, vcpu: 3 });
        assert_eq!(send(3), SendTarget::Deliver { port: 2, vcpu: 0 });
        assert_eq!(send(4), SendTarget::Drop);
        assert_eq!(send(5), SendTarget::Backend { backend_port: 9 });
        assert_eq!(send(6), SendTarget::Reject);
        assert_eq!(send(7), SendTarget::Reject);
        assert_eq!(table.info(NR_PORTS), None);
        assert_eq!(table.in_use().map(|(port, _)| port).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn global_virqs_are_recorded_on_vcpu_0() {
        let mut table = PortTable::new(2);
        table.set_virq_port(VIRQ_CONSOLE, 0, 7);
        assert_eq!(table.virq_port(VIRQ_CONSOLE, 1), 7);
        table.set_virq_port(VIRQ_TIMER, 1, 8);
        assert_eq!(table.virq_port(VIRQ_TIMER, 1), 8);
        assert_eq!(table.virq_port(VIRQ_TIMER, 0), 0);
    }

    #[test]
    fn evtchnstat_matches_event_channel_h() {
        assert_eq!(PortState::Free.evtchnstat(), 0);
        assert_eq!(PortState::Reserved.evtchnstat(), 0);
        assert_eq!(PortState::Unbound { remote_dom: 0 }.evtchnstat(), 1);
        assert_eq!(PortState::Loopback { peer: 1 }.evtchnstat(), 2);
        assert_eq!(PortState::Backend { backend_port: 1 }.evtchnstat(), 2);
        assert_eq!(PortState::Virq { virq: 0 }.evtchnstat(), 4);
        assert_eq!(PortState::Ipi.evtchnstat(), 5);
    }
}
