//! The hypervisor side against arbitrary guests, as a model that both
//! fuzzers drive: the proptest one in the unit tests (`domain_fuzz_tests`)
//! and the libFuzzer one (fuzz/fuzz_targets/domain.rs, `arbitrary`). A
//! guest's operations run against a `Domain` and after each call this
//! checks what must always hold:
//! - the return value is >= 0 or a Xen errno (no panic, ever);
//! - every action is one KVM can carry out (vCPUs that exist, ports of the
//!   table other than 0, vectors Xen accepts);
//! - the port table is consistent: port 0 reserved, a loopback port's peer
//!   is a loopback port back to it, every port notifies a vCPU that exists;
//! - pending bits only on ports in use, and every pending port (nothing is
//!   masked here: only the guest masks) announced on the vCPU it notifies,
//!   its selector bit and evtchn_upcall_pending set: no lost wakeup.

use xevtchn_common::{
    two_level::{AtomicPage, EventWords, NR_PORTS, is_pending, pending_sel_word, upcall_pending},
    xen::errno,
};

use crate::{Action, Domain, DomainConfig, Hypercall, PortState, test_support::TestMemory};

pub const VCPUS: u32 = 3;
pub const MEM_BASE: u64 = 0x10_0000;
pub const MEM_LEN: usize = 0x1000;

/// A pointer argument.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum Pointer {
    /// At this offset of guest memory (maybe across its end).
    Inside(u64),
    /// Nowhere a page table maps.
    Unmapped(u64),
}

impl Pointer {
    pub fn gva(&self) -> u64 {
        match self {
            // Wrapping: an arbitrary offset may point anywhere, like a guest's.
            Self::Inside(offset) => MEM_BASE.wrapping_add(*offset),
            Self::Unmapped(gva) => *gva,
        }
    }
}

/// One thing a guest (or the host's backend) does.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "fuzzing", derive(arbitrary::Arbitrary))]
pub enum Op {
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

/// A domain, the guest memory its pointers reach, and its shared_info words.
pub struct Guest {
    pub domain: Domain,
    pub mem: TestMemory,
    pub page: Box<AtomicPage>,
}

impl Default for Guest {
    fn default() -> Self {
        Self::new()
    }
}

impl Guest {
    pub fn new() -> Self {
        let config = DomainConfig { nr_vcpus: VCPUS, ..DomainConfig::default() };
        Self {
            domain: Domain::new(config).expect("a domain"),
            mem: TestMemory::new(MEM_BASE, MEM_LEN),
            page: Box::default(),
        }
    }

    /// Runs `op`; its return value (if it has one) and actions.
    pub fn run(&mut self, op: &Op) -> (Option<i64>, Vec<Action>) {
        match op {
            Op::Hypercall { nr, cmd, arg, words } => {
                for (i, w) in words.iter().enumerate() {
                    let gva = arg.gva().wrapping_add(4 * i as u64);
                    let _ = crate::guest_memory::GuestMemory::write(&self.mem, gva, &w.to_le_bytes());
                }
                let call = Hypercall { nr: *nr, args: [*cmd, arg.gva(), 0, 0, 0], ..Hypercall::default() };
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
    pub fn check(&self, ret: Option<i64>, actions: &[Action]) -> Result<(), String> {
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
                // A whole vcpu_info inside RAM (the model's domain has none).
                Action::VcpuInfoMoved { vcpu, gpa } => vcpu < VCPUS && gpa % 8 == 0 && gpa % 4096 <= 4096 - 64,
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

/// Runs `ops` on a fresh domain; the first violation, naming its op.
pub fn run_all(ops: &[Op]) -> Result<(), String> {
    let mut guest = Guest::new();
    for (i, op) in ops.iter().enumerate() {
        let (ret, actions) = guest.run(op);
        guest.check(ret, &actions).map_err(|e| format!("after op {i} {op:?}: {e}"))?;
    }
    Ok(())
}
