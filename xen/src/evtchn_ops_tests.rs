//! Every EVTCHNOP and its error paths, checked against what Xen's
//! xen/common/event_channel.c (and QEMU's xen_evtchn.c where noted) does.

use xevtchn_common::two_level::{self, AtomicPage, EventWords, Outcome, guest};
use xevtchn_common::xen::errno::{EEXIST, EINVAL, ENOENT, ENOSPC, EPERM, ESRCH};
use xevtchn_common::xen::evtchn::{
    EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_ipi, EVTCHNSTAT_unbound, EVTCHNSTAT_virq,
};
use xevtchn_common::xen::hypercall::DOMID_SELF;
use xevtchn_common::xen::virq::{NR_VIRQS, VIRQ_CONSOLE, VIRQ_DEBUG, VIRQ_TIMER};

use super::*;
use crate::ports::SendTarget;

const DOMID: u16 = 1;
const BACKEND: u16 = 0;
const VCPUS: u32 = 4;

struct Fixture {
    ch: EventChannels,
    words: Box<AtomicPage>,
    out: Vec<Action>,
}

fn fixture() -> Fixture {
    Fixture {
        ch: EventChannels::new(DomainIds { domid: DOMID, backend_domid: BACKEND }, VCPUS),
        words: Box::new(AtomicPage::new()),
        out: Vec::new(),
    }
}

fn errno_of<T: std::fmt::Debug>(result: Result<T, EvtchnError>) -> i32 {
    result.expect_err("the op must fail").errno()
}

impl Fixture {
    fn ipi(&mut self, vcpu: u32) -> u32 {
        self.ch.bind_ipi(vcpu, &mut self.out).unwrap()
    }

    /// Two loopback-connected ports: (offered, local).
    fn loopback(&mut self) -> (u32, u32) {
        let offered = self.ch.alloc_unbound(DOMID_SELF, DOMID_SELF, &mut self.out).unwrap();
        let local = self.ch.bind_interdomain(DOMID_SELF, offered, &*self.words, &mut self.out).unwrap();
        (offered, local)
    }

    fn state(&self, port: u32) -> PortState {
        self.ch.ports().info(port).unwrap().state
    }

    fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.out)
    }

    /// The guest consumes everything pending (like an upcall handler).
    fn guest_consume_all(&self) {
        for vcpu in 0..VCPUS {
            guest::clear_upcall_pending(&*self.words, vcpu);
            guest::take_pending_sel(&*self.words, vcpu);
        }
        for port in 0..NR_PORTS {
            two_level::clear_pending(&*self.words, port);
        }
    }
}

// ---- alloc_unbound (evtchn_alloc_unbound) ----

#[test]
fn alloc_unbound_allocates_linearly_from_port_1_like_qemu() {
    let mut f = fixture();
    assert_eq!(f.ch.alloc_unbound(DOMID_SELF, BACKEND, &mut f.out), Ok(1));
    assert_eq!(f.ch.alloc_unbound(DOMID, DOMID_SELF, &mut f.out), Ok(2));
    // remote_dom DOMID_SELF is recorded as the caller's id.
    assert_eq!(f.state(2), PortState::Unbound { remote_dom: DOMID });
    match f.out[0] {
        Action::PortBound { port: 1, info } => {
            assert_eq!(info.state, PortState::Unbound { remote_dom: BACKEND });
            assert_eq!(info.send, SendTarget::Drop);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn alloc_unbound_in_another_domain_is_esrch_or_eperm() {
    let mut f = fixture();
    // rcu_lock_domain_by_any_id fails → -ESRCH; xsm_evtchn_unbound → -EPERM.
    assert_eq!(errno_of(f.ch.alloc_unbound(9, DOMID_SELF, &mut f.out)), ESRCH);
    assert_eq!(errno_of(f.ch.alloc_unbound(BACKEND, DOMID_SELF, &mut f.out)), EPERM);
    assert!(f.out.is_empty());
}

#[test]
fn alloc_unbound_with_a_full_table_is_enospc() {
    let mut f = fixture();
    for _ in 1..NR_PORTS {
        f.ch.alloc_unbound(DOMID_SELF, BACKEND, &mut f.out).unwrap();
    }
    assert_eq!(errno_of(f.ch.alloc_unbound(DOMID_SELF, BACKEND, &mut f.out)), ENOSPC);
}

// ---- bind_interdomain (evtchn_bind_interdomain) ----

#[test]
fn bind_interdomain_loopback_connects_both_ends_and_notifies_the_local_port() {
    let mut f = fixture();
    let offered = f.ch.alloc_unbound(DOMID_SELF, DOMID_SELF, &mut f.out).unwrap();
    f.ch.bind_vcpu(offered, 2, &*f.words, &mut f.out).unwrap();
    f.take_actions();
    let local = f.ch.bind_interdomain(DOMID_SELF, offered, &*f.words, &mut f.out).unwrap();
    assert_eq!(f.state(local), PortState::Loopback { peer: offered });
    assert_eq!(f.state(offered), PortState::Loopback { peer: local });
    // "We may have lost notifications on the remote unbound port": Xen sets
    // the new local port pending on its vCPU (0).
    assert!(two_level::is_pending(&*f.words, local));
    let actions = f.take_actions();
    assert!(matches!(actions[0], Action::PortBound { port, .. } if port == local));
    assert!(matches!(actions[1], Action::PortUpdated { port, info }
        if port == offered && info.send == SendTarget::Deliver { port: local, vcpu: 0 }));
    assert_eq!(actions[2], Action::RaiseUpcall { vcpu: 0 });
    assert_eq!(f.ch.ports().info(local).unwrap().send, SendTarget::Deliver { port: offered, vcpu: 2 });
}

#[test]
fn bind_interdomain_by_own_domid_is_loopback_too() {
    let mut f = fixture();
    let offered = f.ch.alloc_unbound(DOMID, DOMID, &mut f.out).unwrap();
    let local = f.ch.bind_interdomain(DOMID, offered, &*f.words, &mut f.out).unwrap();
    assert_eq!(f.state(local), PortState::Loopback { peer: offered });
}

#[test]
fn bind_interdomain_to_an_unknown_domain_is_esrch() {
    let mut f = fixture();
    assert_eq!(errno_of(f.ch.bind_interdomain(42, 1, &*f.words, &mut f.out)), ESRCH);
}

#[test]
fn bind_interdomain_to_a_bad_remote_port_is_einval() {
    let mut f = fixture();
    // !port_is_valid(rd, rport) → -EINVAL.
    assert_eq!(errno_of(f.ch.bind_interdomain(DOMID_SELF, NR_PORTS, &*f.words, &mut f.out)), EINVAL);
    // rchn->state != ECS_UNBOUND → -EINVAL: free, reserved, IPI.
    assert_eq!(errno_of(f.ch.bind_interdomain(DOMID_SELF, 7, &*f.words, &mut f.out)), EINVAL);
    assert_eq!(errno_of(f.ch.bind_interdomain(DOMID_SELF, 0, &*f.words, &mut f.out)), EINVAL);
    let ipi = f.ipi(0);
    assert_eq!(errno_of(f.ch.bind_interdomain(DOMID_SELF, ipi, &*f.words, &mut f.out)), EINVAL);
    // remote_domid != ld->domain_id → -EINVAL: offered to the backend.
    let to_backend = f.ch.alloc_unbound(DOMID_SELF, BACKEND, &mut f.out).unwrap();
    assert_eq!(errno_of(f.ch.bind_interdomain(DOMID_SELF, to_backend, &*f.words, &mut f.out)), EINVAL);
    // Nothing was allocated by the failures.
    assert_eq!(f.ch.ports().find_free(), Some(to_backend + 1));
}

#[test]
fn bind_interdomain_to_an_already_connected_port_is_einval() {
    let mut f = fixture();
    let (offered, _) = f.loopback();
    assert_eq!(errno_of(f.ch.bind_interdomain(DOMID_SELF, offered, &*f.words, &mut f.out)), EINVAL);
}

#[test]
fn bind_interdomain_allocates_the_local_port_first_so_a_full_table_is_enospc() {
    let mut f = fixture();
    for _ in 1..NR_PORTS {
        f.ipi(0);
    }
    // Xen: evtchn_get_port(ld) fails before the remote port is looked at.
    assert_eq!(errno_of(f.ch.bind_interdomain(DOMID_SELF, NR_PORTS + 5, &*f.words, &mut f.out)), ENOSPC);
}

#[test]
fn bind_interdomain_to_the_backend_needs_an_unbound_backend_port() {
    let mut f = fixture();
    assert_eq!(errno_of(f.ch.bind_interdomain(BACKEND, 1, &*f.words, &mut f.out)), EINVAL);
    assert_eq!(errno_of(f.ch.bind_interdomain(BACKEND, NR_PORTS, &*f.words, &mut f.out)), EINVAL);
    let backend_port = f.ch.host_alloc_unbound().unwrap();
    let guest_port = f.ch.bind_interdomain(BACKEND, backend_port, &*f.words, &mut f.out).unwrap();
    assert_eq!(f.state(guest_port), PortState::Backend { backend_port });
    assert_eq!(errno_of(f.ch.bind_interdomain(BACKEND, backend_port, &*f.words, &mut f.out)), EINVAL);
}

// ---- bind_virq (evtchn_bind_virq) ----

#[test]
fn bind_virq_per_vcpu_virq_binds_on_each_vcpu_once() {
    let mut f = fixture();
    let p1 = f.ch.bind_virq(VIRQ_TIMER, 1, &mut f.out).unwrap();
    let p2 = f.ch.bind_virq(VIRQ_TIMER, 2, &mut f.out).unwrap();
    assert_ne!(p1, p2);
    assert_eq!(f.ch.ports().info(p2).unwrap().vcpu, 2);
    // v->virq_to_evtchn[virq] != 0 → -EEXIST.
    assert_eq!(errno_of(f.ch.bind_virq(VIRQ_TIMER, 1, &mut f.out)), EEXIST);
}

#[test]
fn bind_virq_global_virq_only_on_vcpu_0() {
    let mut f = fixture();
    // get_virq_type(virq) != VIRQ_VCPU && vcpu != 0 → -EINVAL.
    assert_eq!(errno_of(f.ch.bind_virq(VIRQ_CONSOLE, 1, &mut f.out)), EINVAL);
    // ... checked before the vCPU exists.
    assert_eq!(errno_of(f.ch.bind_virq(VIRQ_CONSOLE, VCPUS, &mut f.out)), EINVAL);
    let port = f.ch.bind_virq(VIRQ_CONSOLE, 0, &mut f.out).unwrap();
    assert_eq!(f.state(port), PortState::Virq { virq: VIRQ_CONSOLE });
    assert_eq!(errno_of(f.ch.bind_virq(VIRQ_CONSOLE, 0, &mut f.out)), EEXIST);
}

#[test]
fn bind_virq_out_of_range_virq_is_einval_and_missing_vcpu_enoent() {
    let mut f = fixture();
    assert_eq!(errno_of(f.ch.bind_virq(NR_VIRQS, 0, &mut f.out)), EINVAL);
    // domain_vcpu(d, vcpu) == NULL → -ENOENT.
    assert_eq!(errno_of(f.ch.bind_virq(VIRQ_DEBUG, VCPUS, &mut f.out)), ENOENT);
}

// ---- bind_ipi / bind_pirq ----

#[test]
fn bind_ipi_port_notifies_its_vcpu() {
    let mut f = fixture();
    let port = f.ipi(3);
    f.take_actions();
    assert_eq!(f.ch.send(port, &*f.words, &mut f.out), Ok(Some(Outcome::UpcallRaised)));
    assert_eq!(f.out, [Action::RaiseUpcall { vcpu: 3 }]);
}

#[test]
fn bind_ipi_to_a_missing_vcpu_is_enoent() {
    let mut f = fixture();
    assert_eq!(errno_of(f.ch.bind_ipi(VCPUS, &mut f.out)), ENOENT);
}

#[test]
fn bind_pirq_is_einval_without_physical_irqs() {
    let mut f = fixture();
    assert_eq!(errno_of(f.ch.bind_pirq(0)), EINVAL);
}

// ---- close (evtchn_close) ----

#[test]
fn close_of_a_bad_closed_or_reserved_port_is_einval() {
    let mut f = fixture();
    assert_eq!(errno_of(f.ch.close(NR_PORTS, &*f.words, &mut f.out)), EINVAL);
    // case ECS_FREE: case ECS_RESERVED: rc = -EINVAL.
    assert_eq!(errno_of(f.ch.close(5, &*f.words, &mut f.out)), EINVAL);
    assert_eq!(errno_of(f.ch.close(0, &*f.words, &mut f.out)), EINVAL);
}

#[test]
fn close_frees_the_port_and_clears_its_pending_bit() {
    let mut f = fixture();
    let port = f.ipi(2);
    f.ch.send(port, &*f.words, &mut f.out).unwrap();
    f.take_actions();
    f.ch.close(port, &*f.words, &mut f.out).unwrap();
    // evtchn_free: clear pending, state free, notify vCPU 0.
    assert!(!two_level::is_pending(&*f.words, port));
    assert_eq!(f.out, [Action::PortClosed { port }]);
    assert_eq!(f.state(port), PortState::Free);
    assert_eq!(f.ch.ports().info(port).unwrap().vcpu, 0);
    assert_eq!(f.ipi(0), port, "the freed port is allocated again");
}

#[test]
fn close_of_a_virq_port_lets_the_virq_be_bound_again() {
    let mut f = fixture();
    let port = f.ch.bind_virq(VIRQ_TIMER, 1, &mut f.out).unwrap();
    f.ch.close(port, &*f.words, &mut f.out).unwrap();
    assert_eq!(f.ch.bind_virq(VIRQ_TIMER, 1, &mut f.out), Ok(port));
}

#[test]
fn close_of_one_loopback_end_leaves_the_other_unbound() {
    let mut f = fixture();
    let (offered, local) = f.loopback();
    f.take_actions();
    f.ch.close(local, &*f.words, &mut f.out).unwrap();
    // chn2->state = ECS_UNBOUND; chn2->u.unbound.remote_domid = d1.
    assert_eq!(f.state(offered), PortState::Unbound { remote_dom: DOMID });
    assert!(matches!(f.out[0], Action::PortUpdated { port, .. } if port == offered));
    assert_eq!(f.out[1], Action::PortClosed { port: local });
    // ... and can be connected again.
    assert!(f.ch.bind_interdomain(DOMID_SELF, offered, &*f.words, &mut f.out).is_ok());
}

#[test]
fn close_of_a_backend_port_unbinds_the_backend_end() {
    let mut f = fixture();
    let backend_port = f.ch.host_alloc_unbound().unwrap();
    let guest_port = f.ch.bind_interdomain(BACKEND, backend_port, &*f.words, &mut f.out).unwrap();
    f.take_actions();
    f.ch.close(guest_port, &*f.words, &mut f.out).unwrap();
    assert_eq!(f.out, [Action::BackendUnbound { backend_port }, Action::PortClosed { port: guest_port }]);
    assert!(f.ch.bind_interdomain(BACKEND, backend_port, &*f.words, &mut f.out).is_ok());
}

// ---- send (evtchn_send) ----

#[test]
fn send_on_a_bad_closed_or_virq_port_is_einval() {
    let mut f = fixture();
    assert_eq!(errno_of(f.ch.send(NR_PORTS, &*f.words, &mut f.out)), EINVAL);
    assert_eq!(errno_of(f.ch.send(3, &*f.words, &mut f.out)), EINVAL);
    assert_eq!(errno_of(f.ch.send(0, &*f.words, &mut f.out)), EINVAL);
    let virq = f.ch.bind_virq(VIRQ_TIMER, 0, &mut f.out).unwrap();
    assert_eq!(errno_of(f.ch.send(virq, &*f.words, &mut f.out)), EINVAL);
}

#[test]
fn send_on_an_unbound_port_is_silently_dropped() {
    let mut f = fixture();
    let port = f.ch.alloc_unbound(DOMID_SELF, BACKEND, &mut f.out).unwrap();
    f.take_actions();
    assert_eq!(f.ch.send(port, &*f.words, &mut f.out), Ok(None));
    assert!(f.out.is_empty());
    assert!(!two_level::is_pending(&*f.words, port));
}

#[test]
fn send_on_a_loopback_port_delivers_to_the_peer_on_its_vcpu() {
    let mut f = fixture();
    let (offered, local) = f.loopback();
    f.ch.bind_vcpu(offered, 3, &*f.words, &mut f.out).unwrap();
    f.guest_consume_all();
    f.take_actions();
    assert_eq!(f.ch.send(local, &*f.words, &mut f.out), Ok(Some(Outcome::UpcallRaised)));
    assert_eq!(f.out, [Action::RaiseUpcall { vcpu: 3 }]);
    assert!(two_level::is_pending(&*f.words, offered));
    // And back: the local port notifies vCPU 0.
    f.take_actions();
    f.ch.send(offered, &*f.words, &mut f.out).unwrap();
    assert_eq!(f.out, [Action::RaiseUpcall { vcpu: 0 }]);
}

#[test]
fn send_to_a_masked_or_pending_port_raises_nothing() {
    let mut f = fixture();
    let port = f.ipi(1);
    guest::mask(&*f.words, port);
    f.take_actions();
    assert_eq!(f.ch.send(port, &*f.words, &mut f.out), Ok(Some(Outcome::Masked)));
    assert_eq!(f.ch.send(port, &*f.words, &mut f.out), Ok(Some(Outcome::Coalesced)));
    assert!(f.out.is_empty());
}

// ---- status (evtchn_status) ----

#[test]
fn status_reports_every_state() {
    let mut f = fixture();
    let unbound = f.ch.alloc_unbound(DOMID_SELF, BACKEND, &mut f.out).unwrap();
    let (offered, local) = f.loopback();
    let virq = f.ch.bind_virq(VIRQ_TIMER, 2, &mut f.out).unwrap();
    let ipi = f.ipi(3);

    let s = f.ch.status(DOMID_SELF, unbound).unwrap();
    assert_eq!((s.status, s.remote_dom()), (EVTCHNSTAT_unbound, BACKEND));
    let s = f.ch.status(DOMID, local).unwrap();
    assert_eq!((s.status, s.remote_dom(), s.remote_port()), (EVTCHNSTAT_interdomain, DOMID, offered));
    let s = f.ch.status(DOMID_SELF, virq).unwrap();
    assert_eq!((s.status, s.vcpu, s.virq()), (EVTCHNSTAT_virq, 2, VIRQ_TIMER));
    let s = f.ch.status(DOMID_SELF, ipi).unwrap();
    assert_eq!((s.status, s.vcpu), (EVTCHNSTAT_ipi, 3));
}

#[test]
fn status_of_a_closed_or_reserved_port_is_closed_not_an_error() {
    let f = fixture();
    // case ECS_FREE: case ECS_RESERVED: status->status = EVTCHNSTAT_closed.
    assert_eq!(f.ch.status(DOMID_SELF, 0).unwrap().status, EVTCHNSTAT_closed);
    assert_eq!(f.ch.status(DOMID_SELF, 100).unwrap().status, EVTCHNSTAT_closed);
}

#[test]
fn status_of_a_bad_port_is_einval_and_of_another_domain_esrch() {
    let f = fixture();
    assert_eq!(errno_of(f.ch.status(DOMID_SELF, NR_PORTS)), EINVAL);
    assert_eq!(errno_of(f.ch.status(77, 1)), ESRCH);
    assert_eq!(errno_of(f.ch.status(BACKEND, 1)), EPERM);
}

// ---- bind_vcpu (evtchn_bind_vcpu) ----

#[test]
fn bind_vcpu_checks_the_vcpu_before_the_port() {
    let mut f = fixture();
    // domain_vcpu() == NULL → -ENOENT comes first, even for a bad port.
    assert_eq!(errno_of(f.ch.bind_vcpu(NR_PORTS, VCPUS, &*f.words, &mut f.out)), ENOENT);
    assert_eq!(errno_of(f.ch.bind_vcpu(NR_PORTS, 1, &*f.words, &mut f.out)), EINVAL);
}

#[test]
fn bind_vcpu_refuses_ipi_per_vcpu_virq_and_closed_ports() {
    let mut f = fixture();
    let ipi = f.ipi(0);
    let timer = f.ch.bind_virq(VIRQ_TIMER, 0, &mut f.out).unwrap();
    for port in [ipi, timer, 0, 50] {
        assert_eq!(errno_of(f.ch.bind_vcpu(port, 1, &*f.words, &mut f.out)), EINVAL, "port {port}");
    }
}

#[test]
fn bind_vcpu_moves_a_global_virq_and_raises_its_pending_event_there() {
    let mut f = fixture();
    let port = f.ch.bind_virq(VIRQ_CONSOLE, 0, &mut f.out).unwrap();
    f.ch.send_virq(VIRQ_CONSOLE, 0, &*f.words, &mut f.out).unwrap();
    f.take_actions();
    f.ch.bind_vcpu(port, 2, &*f.words, &mut f.out).unwrap();
    assert_eq!(f.out, [Action::PortMoved { port, from: 0, to: 2 }, Action::RaiseUpcall { vcpu: 2 }]);
    assert_eq!(f.ch.status(DOMID_SELF, port).unwrap().vcpu, 2);
    assert_ne!(f.words.load(two_level::pending_sel_word(2)), 0);
}

#[test]
fn bind_vcpu_of_a_masked_pending_port_does_not_raise() {
    let mut f = fixture();
    let port = f.ch.alloc_unbound(DOMID_SELF, BACKEND, &mut f.out).unwrap();
    guest::mask(&*f.words, port);
    two_level::set_pending(&*f.words, port, 0);
    f.take_actions();
    f.ch.bind_vcpu(port, 1, &*f.words, &mut f.out).unwrap();
    assert_eq!(f.out, [Action::PortMoved { port, from: 0, to: 1 }]);
}

#[test]
fn bind_vcpu_of_a_loopback_end_updates_the_peer_target() {
    let mut f = fixture();
    let (offered, local) = f.loopback();
    f.take_actions();
    f.ch.bind_vcpu(offered, 1, &*f.words, &mut f.out).unwrap();
    assert_eq!(f.out[0], Action::PortMoved { port: offered, from: 0, to: 1 });
    assert!(matches!(f.out[1], Action::PortUpdated { port, info }
        if port == local && info.send == SendTarget::Deliver { port: offered, vcpu: 1 }));
}

#[test]
fn bind_vcpu_to_the_same_vcpu_changes_nothing() {
    let mut f = fixture();
    let port = f.ch.alloc_unbound(DOMID_SELF, BACKEND, &mut f.out).unwrap();
    f.take_actions();
    assert_eq!(f.ch.bind_vcpu(port, 0, &*f.words, &mut f.out), Ok(()));
    assert!(f.out.is_empty());
}

// ---- unmask (evtchn_unmask → evtchn_2l_unmask) ----

#[test]
fn unmask_of_a_bad_port_is_einval() {
    let mut f = fixture();
    assert_eq!(errno_of(f.ch.unmask(NR_PORTS, &*f.words, &mut f.out)), EINVAL);
}

#[test]
fn unmask_of_a_masked_pending_port_raises_on_its_vcpu() {
    let mut f = fixture();
    let port = f.ipi(2);
    guest::mask(&*f.words, port);
    f.ch.send(port, &*f.words, &mut f.out).unwrap();
    f.take_actions();
    assert_eq!(f.ch.unmask(port, &*f.words, &mut f.out), Ok(Outcome::UpcallRaised));
    assert_eq!(f.out, [Action::RaiseUpcall { vcpu: 2 }]);
}

#[test]
fn unmask_of_an_unmasked_port_raises_nothing_like_xen() {
    let mut f = fixture();
    let port = f.ipi(2);
    two_level::set_pending(&*f.words, port, 2);
    f.guest_consume_all();
    two_level::set_pending(&*f.words, port, 3); // pending, selector on another vCPU
    f.take_actions();
    assert_eq!(f.ch.unmask(port, &*f.words, &mut f.out), Ok(Outcome::NotMasked));
    assert!(f.out.is_empty());
}

#[test]
fn unmask_of_a_closed_port_succeeds_like_xen() {
    let mut f = fixture();
    guest::mask(&*f.words, 9);
    assert_eq!(f.ch.unmask(9, &*f.words, &mut f.out), Ok(Outcome::NotPending));
    assert!(!two_level::is_masked(&*f.words, 9));
}

// ---- reset (evtchn_reset) ----

#[test]
fn reset_closes_every_port_and_allocation_restarts_at_1() {
    let mut f = fixture();
    let ipi = f.ipi(1);
    let (offered, local) = f.loopback();
    let virq = f.ch.bind_virq(VIRQ_TIMER, 0, &mut f.out).unwrap();
    f.take_actions();
    f.ch.reset(DOMID_SELF, &*f.words, &mut f.out).unwrap();
    for port in [ipi, offered, local, virq] {
        assert!(f.out.contains(&Action::PortClosed { port }), "port {port} closed");
        assert_eq!(f.state(port), PortState::Free);
    }
    assert_eq!(f.ch.ports().in_use().count(), 0);
    assert_eq!(f.ipi(0), 1);
    assert!(f.ch.bind_virq(VIRQ_TIMER, 0, &mut f.out).is_ok());
}

#[test]
fn reset_of_another_domain_is_esrch_or_eperm() {
    let mut f = fixture();
    assert_eq!(errno_of(f.ch.reset(5, &*f.words, &mut f.out)), ESRCH);
    assert_eq!(errno_of(f.ch.reset(BACKEND, &*f.words, &mut f.out)), EPERM);
}
