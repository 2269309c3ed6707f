//! The hypervisor side against arbitrary guests: proptest drives a
//! `Domain` through random sequences of hypercalls (every number and
//! sub-op, in range and not; argument structs of random and boundary
//! values; pointers inside guest memory, across its end, unaligned and
//! unmapped), doorbell sends and host-backend calls, and checks after each
//! call what must always hold:
//! - the return value is >= 0 or a Xen errno (no panic, ever);
//! - every action is one KVM can carry out (vCPUs that exist, ports of the
//!   table other than 0, vectors Xen accepts);
//! - the port table is consistent: port 0 reserved, a loopback port's peer
//!   is a loopback port back to it, every port notifies a vCPU that exists;
//! - pending bits only on ports in use, and every pending port (nothing is
//!   masked here: only the guest masks) announced on the vCPU it notifies,
//!   its selector bit and evtchn_upcall_pending set: no lost wakeup.
//!
//! Cases that once failed are kept at the end, as regression tests.

use proptest::prelude::*;
use xevtchn_common::{
    two_level::{AtomicPage, EventWords, NR_PORTS, is_pending, pending_sel_word, upcall_pending},
    xen::{errno, hypercall::*},
};

use super::{Action, Domain, DomainConfig, Hypercall, PortState, test_support::TestMemory};

const VCPUS: u32 = 3;
const MEM_BASE: u64 = 0x10_0000;
const MEM_LEN: usize = 0x1000;

#[derive(Clone, Debug)]
enum Pointer {
    /// At this offset of guest memory (maybe across its end).
    Inside(u64),
    /// Nowhere a page table maps.
    Unmapped(u64),
}

impl Pointer {
    fn gva(&self) -> u64 {
        match self {
            Self::Inside(offset) => MEM_BASE + offset,
            Self::Unmapped(gva) => *gva,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// A hypercall: its number, first argument (the sub-op), the pointer
    /// argument, and the u32 words written there first.
    Hypercall {
        nr: u64,
        cmd: u64,
        arg: Pointer,
        words: Vec<u32>,
    },
    Doorbell(u32),
    HostAllocUnbound,
    HostBindInterdomain(u32),
    HostSend(u32),
    HostClose(u32),
}

/// Mostly small values (ports, vCPUs, domids, sub-ops that exist), some
/// boundaries, some anything.
fn word() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..8,
        // DOMID_SELF, alone and in both halves ({dom, remote_dom}).
        1 => prop_oneof![Just(0x7ff0), Just(0x7ff0_7ff0)],
        1 => prop_oneof![Just(NR_PORTS - 1), Just(NR_PORTS), Just(u32::MAX), Just(0x10), Just(0xf3)],
        1 => any::<u32>(),
    ]
}

fn pointer() -> impl Strategy<Value = Pointer> {
    prop_oneof![
        8 => (0u64..64).prop_map(|o| Pointer::Inside(o * 8)),
        1 => (0u64..MEM_LEN as u64 + 16).prop_map(Pointer::Inside),
        1 => prop_oneof![Just(0u64), Just(u64::MAX), Just(0x10_0000_0000)].prop_map(Pointer::Unmapped),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let nr = prop_oneof![
        6 => Just(u64::from(__HYPERVISOR_event_channel_op)),
        2 => Just(u64::from(__HYPERVISOR_hvm_op)),
        1 => Just(u64::from(__HYPERVISOR_memory_op)),
        1 => Just(u64::from(__HYPERVISOR_xen_version)),
        1 => 0u64..80,
    ];
    let cmd = prop_oneof![6 => 0u64..16, 1 => 16u64..40, 1 => any::<u64>()];
    prop_oneof![
        8 => (nr, cmd, pointer(), prop::collection::vec(word(), 8))
            .prop_map(|(nr, cmd, arg, words)| Op::Hypercall { nr, cmd, arg, words }),
        2 => word().prop_map(Op::Doorbell),
        1 => Just(Op::HostAllocUnbound),
        1 => word().prop_map(Op::HostBindInterdomain),
        1 => word().prop_map(Op::HostSend),
        1 => word().prop_map(Op::HostClose),
    ]
}

struct Guest {
    domain: Domain,
    mem: TestMemory,
    page: Box<AtomicPage>,
}

impl Guest {
    fn new() -> Self {
        let config = DomainConfig { nr_vcpus: VCPUS, ..DomainConfig::default() };
        Self {
            domain: Domain::new(config).expect("a domain"),
            mem: TestMemory::new(MEM_BASE, MEM_LEN),
            page: Box::default(),
        }
    }

    /// Runs `op`; its return value (if it has one) and actions.
    fn run(&mut self, op: &Op) -> (Option<i64>, Vec<Action>) {
        match op {
            Op::Hypercall { nr, cmd, arg, words } => {
                for (i, w) in words.iter().enumerate() {
                    let gva = arg.gva().wrapping_add(4 * i as u64);
                    let _ = super::guest_memory::GuestMemory::write(&self.mem, gva, &w.to_le_bytes());
                }
                let call = Hypercall { nr: *nr, args: [*cmd, arg.gva(), 0, 0, 0] };
                let r = self.domain.hypercall(&call, &self.mem, &*self.page);
                (Some(r.ret), r.actions)
            }
            Op::Doorbell(port) => {
                let r = self.domain.doorbell_send(*port, &*self.page);
                (Some(r.ret), r.actions)
            }
            Op::HostAllocUnbound => (None, self.domain.host_alloc_unbound().map(|_| Vec::new()).unwrap_or_default()),
            Op::HostBindInterdomain(port) => {
                (None, self.domain.host_bind_interdomain(*port).map(|(_, a)| a).unwrap_or_default())
            }
            Op::HostSend(port) => (None, self.domain.host_send(*port, &*self.page).map(|(_, a)| a).unwrap_or_default()),
            Op::HostClose(port) => (None, self.domain.host_close(*port).unwrap_or_default()),
        }
    }

    /// Everything that must hold after any call; the first violation.
    fn check(&self, ret: Option<i64>, actions: &[Action]) -> Result<(), String> {
        if let Some(ret) = ret
            && ret < 0
            && errno::name(ret).is_none()
        {
            return Err(format!("{ret} is no Xen errno"));
        }
        for action in actions {
            let ok = match *action {
                Action::RaiseUpcall { vcpu } => vcpu < VCPUS,
                Action::PortBound { port, info } | Action::PortUpdated { port, info } => {
                    (1..NR_PORTS).contains(&port) && info.vcpu < VCPUS
                }
                Action::PortMoved { port, from, to } => (1..NR_PORTS).contains(&port) && from < VCPUS && to < VCPUS,
                Action::PortClosed { port } => (1..NR_PORTS).contains(&port),
                Action::UpcallVectorSet { vcpu, vector } => vcpu < VCPUS && vector >= 0x10,
                Action::SharedInfoPlaced { .. }
                | Action::CallbackChanged { .. }
                | Action::NotifyBackend { .. }
                | Action::BackendUnbound { .. } => true,
            };
            if !ok {
                return Err(format!("an action KVM cannot carry out: {action:?}"));
            }
        }
        if self.domain.port_info(0).is_some_and(|i| i.state != PortState::Reserved) {
            return Err("port 0 is not reserved".into());
        }
        for port in 1..NR_PORTS {
            let Some(info) = self.domain.port_info(port) else {
                return Err(format!("port {port} has no entry"));
            };
            if info.vcpu >= VCPUS {
                return Err(format!("port {port} notifies vCPU {}", info.vcpu));
            }
            if let PortState::Loopback { peer } = info.state {
                let back = self.domain.port_info(peer).map(|i| i.state);
                if peer == port || back != Some(PortState::Loopback { peer: port }) {
                    return Err(format!("port {port}'s peer {peer} is {back:?}"));
                }
            }
            if !is_pending(&*self.page, port) {
                continue;
            }
            if !info.state.in_use() {
                return Err(format!("free port {port} is pending"));
            }
            let selected = self.page.load(pending_sel_word(info.vcpu)) & (1 << (port / 64)) != 0;
            if !selected || !upcall_pending(&*self.page, info.vcpu) {
                return Err(format!("pending port {port} is not announced on vCPU {}: lost wakeup", info.vcpu));
            }
        }
        Ok(())
    }
}

fn run_all(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut guest = Guest::new();
    for (i, op) in ops.iter().enumerate() {
        let (ret, actions) = guest.run(op);
        guest.check(ret, &actions).map_err(|e| TestCaseError::fail(format!("after op {i} {op:?}: {e}")))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_calls_keeps_the_domain_sound(ops in prop::collection::vec(op(), 1..60)) {
        run_all(&ops)?;
    }
}

/// The harness reaches what it is meant to check: ports bound, events
/// pending and announced, and a violation is seen when there is one.
#[test]
fn the_harness_binds_sends_and_sees_a_violation() {
    use xevtchn_common::xen::evtchn::{EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_bind_ipi};
    let evtchn = |cmd: u32, words: Vec<u32>| Op::Hypercall {
        nr: u64::from(__HYPERVISOR_event_channel_op),
        cmd: u64::from(cmd),
        arg: Pointer::Inside(0),
        words,
    };
    let mut guest = Guest::new();
    for op in [
        evtchn(EVTCHNOP_bind_ipi, vec![2, 0]),
        evtchn(EVTCHNOP_alloc_unbound, vec![0x7ff0_7ff0, 0]),
        evtchn(EVTCHNOP_bind_interdomain, vec![0x7ff0, 2, 0]),
        Op::Doorbell(1),
        Op::Doorbell(3),
    ] {
        let (ret, actions) = guest.run(&op);
        assert_eq!(ret, Some(0), "{op:?}");
        guest.check(ret, &actions).unwrap();
    }
    assert_eq!(guest.domain.port_info(1).map(|i| i.state), Some(PortState::Ipi));
    assert_eq!(guest.domain.port_info(3).map(|i| i.state), Some(PortState::Loopback { peer: 2 }));
    assert!(is_pending(&*guest.page, 1) && is_pending(&*guest.page, 2) && upcall_pending(&*guest.page, 2));
    // A pending bit nobody announced: the checker names it.
    xevtchn_common::two_level::set_pending(&*guest.page, 9, 1);
    assert!(guest.check(None, &[]).unwrap_err().contains("free port 9 is pending"));
}
