//! Keeping the in-kernel send path coherent with the port table.
//!
//! A fast port p (below FAST_PORTS, delivering to a port of this domain)
//! has two kernel objects: its entry in the BPF port map (the program runs
//! the 2-level algorithm only for entries marked fast) and an ioeventfd on
//! its doorbell that signals E_v of the target vCPU v (which injects).
//! Both must change in an order that never loses an event:
//! - never an ioeventfd without a fast map entry while the port is served:
//!   the doorbell would complete in the kernel with nobody setting the port
//!   pending (a port being closed is the exception: its sends may be
//!   dropped, as Xen drops sends that race a close);
//! - a fast entry without an ioeventfd is fine: the BPF program sets the
//!   port pending and the write exits to userspace, which raises the upcall
//!   (see `XenPlatform::doorbell`).
//!
//! So: to serve or move a port, unregister the old ioeventfd, write the
//! entry, register the new ioeventfd; to stop serving it, clear the entry,
//! then unregister (KVM's SRCU wait drains programs that read the entry).
//! A send racing with a move may still mark the old vCPU: the program
//! re-reads the entry after sending, and `sync_port` re-raises on the new
//! vCPU after the change, so one of them always announces it there.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use kvm_ioctls::{IoEventAddress, NoDatamatch, VmFd};
use vmm_sys_util::eventfd::EventFd;
use xevtchn_common::{
    layout,
    two_level::{clear_pending, raise_on_vcpu, upcall_pending},
    wire::PortEntry,
};

use super::{FAST_PORTS, shared_info::SharedInfoPage, upcalls::Upcalls};
use crate::{
    bpf::doorbell::{DoorbellCounts, DoorbellPath},
    xen::{PortInfo, SendTarget},
};

/// Where a fast port's doorbell currently goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Served {
    deliver: u32,
    vcpu: u32,
}

pub struct FastPath {
    vm: Arc<VmFd>,
    state: Mutex<State>,
}

struct State {
    /// None: the bare chain (ioeventfds only, no BPF, no event state).
    doorbell: Option<DoorbellPath>,
    /// Ports whose doorbell has an ioeventfd, and the eventfd it signals.
    served: HashMap<u32, (Served, Arc<EventFd>)>,
}

impl FastPath {
    pub fn new(vm: Arc<VmFd>, mut doorbell: DoorbellPath) -> Result<Self, crate::bpf::BpfError> {
        doorbell.enable(std::process::id(), FAST_PORTS, layout::doorbell(0))?;
        Ok(Self { vm, state: Mutex::new(State { doorbell: Some(doorbell), served: HashMap::new() }) })
    }

    /// The bare ioeventfd + irqfd chain: doorbells inject with no
    /// event-channel bookkeeping at all (the kernel's own limit on this
    /// host, a benchmark reference; the guest must run in bare mode).
    pub fn bare(vm: Arc<VmFd>) -> Self {
        Self { vm, state: Mutex::new(State { doorbell: None, served: HashMap::new() }) }
    }

    /// Brings `port`'s map entry and ioeventfd in line with `info` (the
    /// port table's view, read under the caller's lock of the domain).
    pub fn sync_port(&self, port: u32, info: Option<PortInfo>, upcalls: &Upcalls, shared_info: &SharedInfoPage) {
        let wanted = match info.map(|i| i.send) {
            Some(SendTarget::Deliver { port: deliver, vcpu }) if port < FAST_PORTS => Some(Served { deliver, vcpu }),
            _ => None,
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let current = state.served.get(&port).map(|(s, _)| *s);
        if current == wanted {
            return;
        }
        let doorbell = IoEventAddress::Mmio(layout::doorbell(port));
        let Some(served) = wanted else {
            // Stop serving: the entry first, so the program stops setting
            // the port pending; unregistering the ioeventfd then waits
            // (KVM's SRCU) for any program still running on the old entry.
            self.set_entry(&mut state, port, PortEntry::default());
            if let Some((_, eventfd)) = state.served.remove(&port) {
                let _ = self.vm.unregister_ioevent(&eventfd, &doorbell, NoDatamatch);
            }
            if let Some(old) = current {
                // A send that raced the close must not survive it.
                if old.deliver == port && info.is_some_and(|i| !i.state.in_use()) {
                    clear_pending(shared_info.words(), port);
                }
                raise_if_pending(upcalls, shared_info, old.vcpu);
            }
            return;
        };
        // Serve or move: never an ioeventfd without a fast entry.
        if let Some((_, eventfd)) = state.served.remove(&port) {
            let _ = self.vm.unregister_ioevent(&eventfd, &doorbell, NoDatamatch);
        }
        self.set_entry(&mut state, port, PortEntry { fast: 1, vcpu: served.vcpu, deliver: served.deliver, _pad: 0 });
        if let Some(eventfd) = upcalls.eventfd(served.vcpu) {
            match self.vm.register_ioevent(&eventfd, &doorbell, NoDatamatch) {
                Ok(()) => {
                    state.served.insert(port, (served, eventfd));
                }
                // Still correct: the entry is fast, so doorbells exit and userspace raises.
                Err(e) => log::warn!("port {port}: no ioeventfd ({e}); its sends will exit to userspace"),
            }
        }
        // Registering waited (KVM's SRCU) for programs that read the old
        // entry. One may have marked the old vCPU: interrupt it, since its
        // upcall_pending would otherwise silence its next events. And
        // announce a pending event on the new vCPU (steps 4-5), as the
        // hypervisor did when it moved the port.
        if let Some(old) = current.filter(|old| old.vcpu != served.vcpu) {
            raise_if_pending(upcalls, shared_info, old.vcpu);
        }
        if raise_on_vcpu(shared_info.words(), served.deliver, served.vcpu).must_raise() {
            upcalls.raise(served.vcpu);
        }
    }

    fn set_entry(&self, state: &mut State, port: u32, entry: PortEntry) {
        if let Some(doorbell) = state.doorbell.as_mut()
            && let Err(e) = doorbell.set_port(port, entry)
        {
            log::error!("port {port}: updating the BPF port map: {e}");
        }
    }

    /// The BPF program's counters (None for the bare chain).
    pub fn counts(&self) -> Option<DoorbellCounts> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let doorbell = state.doorbell.as_ref()?;
        Some(doorbell.counts().unwrap_or_else(|e| {
            log::error!("reading the doorbell counters: {e}");
            DoorbellCounts::default()
        }))
    }

    /// Unregisters every ioeventfd (before the VM goes away).
    pub fn shut_down(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (port, (_, eventfd)) in state.served.drain() {
            let _ = self.vm.unregister_ioevent(&eventfd, &IoEventAddress::Mmio(layout::doorbell(port)), NoDatamatch);
        }
    }
}

/// Interrupts `vcpu` if its evtchn_upcall_pending is set (spurious at worst).
fn raise_if_pending(upcalls: &Upcalls, shared_info: &SharedInfoPage, vcpu: u32) {
    if upcall_pending(shared_info.words(), vcpu) {
        upcalls.raise(vcpu);
    }
}
