//! Keeping the in-kernel send path coherent with the port table.
//!
//! A served port p (a port whose sends deliver to a port of this domain,
//! on a vCPU with a vcpu_info in shared_info) has:
//! - its entry in the BPF port map: the program runs the 2-level algorithm
//!   for served entries only;
//! - an ioeventfd on its doorbell (len 4, datamatch p: never on KVM's
//!   fast-MMIO bus, whose writes skip the program) signalling an eventfd
//!   that injects: the target vCPU's own E_v when the target is fixed (IPI
//!   ports), or an eventfd of the port's own, an irqfd on a route of its
//!   own, when the target can move (interdomain ports: their peer can be
//!   moved with EVTCHNOP_bind_vcpu).
//!
//! Moving a port is then a map store plus a route change: no ioeventfd
//! changes, which would make the moving vCPU wait for KVM's SRCU (tens of
//! ms). The order that loses no wakeup, for a move from v to w:
//! 1. store the new entry;
//! 2. wait for a grace period of the program (`DoorbellPath::grace_period`):
//!    no program still acts on the old entry, so none can mark v later;
//! 3. point the port's route at w (KVM_SET_GSI_ROUTING);
//! 4. raise v and w if their upcall is pending, and announce a pending,
//!    unmasked port on w (steps 4-5): a program that marked v before 2, or
//!    marked w but injected through the old route before 3, is covered
//!    here. Linux ignores a port on a vCPU it moved away from, so the
//!    announcement on w is what delivers it.
//!
//! While an ioeventfd is being registered, the entry is served but not
//! "armed": a write then both runs the program and exits to userspace,
//! which sends again and raises every pending upcall (an event announced
//! twice, never lost); the program counts those sends (`stat::UNARMED`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
};

use kvm_ioctls::{IoEventAddress, VmFd};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use xevtchn_common::{
    doorbell::{CANARY_PORT, PIO_DOORBELL_VALUE, PortEntry, doorbell, pio_doorbell},
    two_level::{SHARED_INFO_VCPUS, clear_pending, raise_on_vcpu, upcall_pending},
};

use super::{
    gsi_routes::MAX_ROUTES, guest_log::GuestLog, route_commit::RouteCommitter, shared_info::SharedInfoPage,
    upcalls::Upcalls,
};
use crate::{
    bpf::doorbell::{DoorbellCounts, DoorbellPath},
    service::protocol::Progress,
    vmm::canary::CanaryRun,
    xen::{Domain, PortInfo, PortState, SendTarget},
};

/// Where a served port's sends go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Target {
    deliver: u32,
    vcpu: u32,
}

/// What the port's ioeventfd signals.
enum Injector {
    /// The target vCPU's upcall eventfd E_v.
    Vcpu(Arc<EventFd>),
    /// An eventfd of the port's own, an irqfd on `gsi`, whose route follows
    /// the port.
    Own { eventfd: Arc<EventFd>, gsi: u32 },
}

impl Injector {
    fn eventfd(&self) -> &EventFd {
        match self {
            Self::Vcpu(e) | Self::Own { eventfd: e, .. } => e,
        }
    }
}

struct Served {
    target: Target,
    injector: Injector,
}

pub struct FastPath {
    vm: Arc<VmFd>,
    /// None: the bare chain (ioeventfds only, no BPF, no event state).
    doorbell: Option<DoorbellPath>,
    /// The canary doorbell's ioeventfd, until the canary has been judged.
    canary: Mutex<Option<EventFd>>,
    /// Ports whose doorbell has an ioeventfd.
    served: Mutex<HashMap<u32, Served>>,
    /// Commits the routes of moved ports (started at the first move).
    committer: OnceLock<Option<RouteCommitter>>,
    log: Arc<GuestLog>,
}

impl FastPath {
    /// Serves this VM's doorbells with `doorbell`'s program, and arms the
    /// canary's doorbell (run `vmm::canary`, then `judge_canary`).
    pub fn new(vm: Arc<VmFd>, doorbell: DoorbellPath, log: Arc<GuestLog>) -> Result<Self, FastPathError> {
        let canary = EventFd::new(EFD_NONBLOCK).map_err(FastPathError::Eventfd)?;
        register_ioevent(&vm, &canary, CANARY_PORT).map_err(FastPathError::Canary)?;
        Ok(Self {
            vm,
            doorbell: Some(doorbell),
            canary: Mutex::new(Some(canary)),
            served: Mutex::default(),
            committer: OnceLock::new(),
            log,
        })
    }

    /// The bare ioeventfd + irqfd chain: doorbells inject with no
    /// event-channel bookkeeping at all (the kernel's own limit on this
    /// host, a benchmark reference; the guest must run in bare mode).
    pub fn bare(vm: Arc<VmFd>, log: Arc<GuestLog>) -> Self {
        Self { vm, doorbell: None, canary: Mutex::default(), served: Mutex::default(), committer: OnceLock::new(), log }
    }

    /// After the canary ran: Ok if the program saw its doorbell, which KVM
    /// completed in the kernel; otherwise why the fast path cannot be used
    /// (the program is then disabled). Disarms the canary's doorbell.
    pub fn judge_canary(&mut self, run: CanaryRun) -> Result<(), String> {
        let Some(canary) = self.canary.get_mut().unwrap_or_else(|p| p.into_inner()).take() else {
            return Ok(());
        };
        let completed = canary.read().unwrap_or(0);
        let _ = unregister_ioevent(&self.vm, &canary, CANARY_PORT);
        let seen = self.doorbell.as_ref().map_or(0, |d| d.counts().canary);
        let verdict = canary_verdict(run, completed, seen);
        if verdict.is_err()
            && let Some(doorbell) = self.doorbell.as_mut()
        {
            doorbell.report(&Progress { canary_passed: false, ..Progress::default() });
            doorbell.stop();
        }
        verdict
    }

    /// Brings `port`'s map entry, ioeventfd and route in line with the
    /// port table (read under the caller's lock of `domain`).
    pub fn sync_port(&self, port: u32, domain: &Domain, upcalls: &Upcalls, shared_info: &SharedInfoPage) {
        let info = domain.port_info(port);
        // A vCPU whose vcpu_info the guest moved into its RAM is out of
        // the program's reach, as is every vCPU from 32 on (`wanted`): their
        // ports are served in userspace.
        let wanted = wanted(port, info, upcalls.vcpus()).filter(|(t, _)| !shared_info.vcpu_info_moved(t.vcpu));
        let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
        match (served.remove(&port), wanted) {
            (None, None) => {}
            (None, Some((target, movable))) => {
                if let Some(s) = self.serve(port, target, movable, upcalls) {
                    served.insert(port, s);
                }
                self.announce(None, Some(target), upcalls, shared_info);
            }
            (Some(current), Some((target, _))) if current.target == target => {
                served.insert(port, current);
            }
            (Some(current), Some((target, movable))) => {
                if let Some(s) = self.retarget(port, current, (target, movable), upcalls, shared_info) {
                    served.insert(port, s);
                }
            }
            (Some(current), None) => {
                let deliverable = info.is_some_and(|i| matches!(i.send, SendTarget::Deliver { .. }));
                self.stop(port, current.injector, deliverable, upcalls);
                // A send that raced the close must not survive it.
                let deliver = current.target.deliver;
                if !domain.port_info(deliver).is_some_and(|i| i.state.in_use()) {
                    clear_pending(shared_info.words(), deliver);
                }
                self.announce(Some(current.target.vcpu), None, upcalls, shared_info);
            }
        }
    }

    /// Starts serving `port`; None leaves it to userspace (said why).
    fn serve(&self, port: u32, target: Target, movable: bool, upcalls: &Upcalls) -> Option<Served> {
        let injector = self.injector(port, target.vcpu, movable, upcalls)?;
        self.set_entry(port, PortEntry::served(target.deliver, target.vcpu, false));
        match register_ioevent(&self.vm, injector.eventfd(), port) {
            Ok(()) => {
                self.set_entry(port, PortEntry::served(target.deliver, target.vcpu, true));
                Some(Served { target, injector })
            }
            Err(e) => {
                self.log.warn(|| format!("port {port}: no ioeventfd on its doorbell ({e}): its sends take userspace"));
                self.set_entry(port, PortEntry::EMPTY);
                self.grace_period();
                self.drop_injector(injector, upcalls);
                None
            }
        }
    }

    /// Sends of `port` now go to `target`.
    fn retarget(
        &self,
        port: u32,
        current: Served,
        (target, movable): (Target, bool),
        upcalls: &Upcalls,
        shared_info: &SharedInfoPage,
    ) -> Option<Served> {
        let from = current.target.vcpu;
        if let Injector::Own { gsi, .. } = current.injector
            && movable
        {
            self.set_entry(port, PortEntry::served(target.deliver, target.vcpu, true));
            self.grace_period();
            if target.vcpu == from {
                self.announce(None, Some(target), upcalls, shared_info);
                return Some(Served { target, injector: current.injector });
            }
            if upcalls.routes().edit().move_port(gsi, target.vcpu) {
                // Steps 4-5 on the new vCPU now (a program that read the old
                // entry may have set the port pending after the hypervisor
                // announced it); the rest once the route is in (see
                // route_commit): until then the port's injections reach
                // the old vCPU, so both are raised then if pending.
                announce_on(target, upcalls, shared_info);
                self.commit_move(upcalls, shared_info, [from, target.vcpu]);
                return Some(Served { target, injector: current.injector });
            }
        }
        // Another eventfd: the ioeventfd is registered again. Meanwhile the
        // entry already has the new target and writes exit to userspace too.
        self.set_entry(port, PortEntry::served(target.deliver, target.vcpu, false));
        self.grace_period();
        let _ = unregister_ioevent(&self.vm, current.injector.eventfd(), port);
        self.drop_injector(current.injector, upcalls);
        let served = self.serve(port, target, movable, upcalls);
        if served.is_none() {
            self.set_entry(port, PortEntry::EMPTY);
        }
        self.announce(Some(from), Some(target), upcalls, shared_info);
        served
    }

    /// Stops serving `port`. `deliverable`: its sends still deliver (in
    /// userspace from now on).
    fn stop(&self, port: u32, injector: Injector, deliverable: bool, upcalls: &Upcalls) {
        if deliverable {
            // Writes exit first, so that none completes unseen in between.
            let _ = unregister_ioevent(&self.vm, injector.eventfd(), port);
            self.set_entry(port, PortEntry::EMPTY);
            self.grace_period();
        } else {
            // The program first: a write in between completes in the kernel
            // and is dropped, as Xen drops a send racing a close.
            self.set_entry(port, PortEntry::EMPTY);
            self.grace_period();
            let _ = unregister_ioevent(&self.vm, injector.eventfd(), port);
        }
        self.drop_injector(injector, upcalls);
    }

    /// The eventfd `port`'s ioeventfd will signal: one of its own on a
    /// route of its own if its target can move and KVM's routes allow,
    /// else the target vCPU's.
    fn injector(&self, port: u32, vcpu: u32, movable: bool, upcalls: &Upcalls) -> Option<Injector> {
        if movable {
            match self.own_injector(vcpu, upcalls) {
                Ok(Some(injector)) => return Some(injector),
                Ok(None) => {}
                Err(e) => {
                    self.log.warn(|| format!("port {port}: no injector of its own ({e}); moving it will be slower"));
                }
            }
        }
        upcalls.eventfd(vcpu).map(Injector::Vcpu)
    }

    /// None: `vcpu` has no upcall vector yet, or KVM's routes are spent.
    fn own_injector(&self, vcpu: u32, upcalls: &Upcalls) -> std::io::Result<Option<Injector>> {
        let routes = upcalls.routes();
        let gsi = {
            let mut table = routes.edit();
            if table.vector(vcpu).is_none() {
                return Ok(None);
            }
            let Some(gsi) = table.add_port(vcpu) else {
                let in_use = table.port_routes();
                drop(table);
                self.log.warn(|| {
                    format!(
                        "KVM's {MAX_ROUTES} interrupt routes of this VM are spent ({in_use} port routes): ports bound \
                         from now on move slower (their doorbells are registered again on each move)"
                    )
                });
                return Ok(None);
            };
            gsi
        };
        let wired = (|| {
            let eventfd = EventFd::new(EFD_NONBLOCK)?;
            routes.commit(&self.vm)?;
            self.vm.register_irqfd(&eventfd, gsi).map_err(|e| std::io::Error::from_raw_os_error(e.errno()))?;
            Ok(eventfd)
        })();
        match wired {
            Ok(eventfd) => Ok(Some(Injector::Own { eventfd: Arc::new(eventfd), gsi })),
            Err(e) => {
                routes.edit().remove_port(gsi);
                let _ = routes.commit(&self.vm);
                Err(e)
            }
        }
    }

    /// Has the route change of a moved port committed, then raises `vcpus`
    /// if pending: by the route-commit thread (started on first use), or
    /// here if it could not start.
    fn commit_move(&self, upcalls: &Upcalls, shared_info: &SharedInfoPage, vcpus: [u32; 2]) {
        let committer = self.committer.get_or_init(|| {
            RouteCommitter::start(upcalls.committing())
                .map_err(|e| log::warn!("no route-commit thread ({e}): moves commit their routes themselves"))
                .ok()
        });
        match committer {
            Some(committer) => committer.request(vcpus),
            None => {
                if let Err(e) = upcalls.routes().commit(&self.vm) {
                    log::error!("committing the VM's interrupt routes: {e}");
                }
                for vcpu in vcpus {
                    raise_if_pending(upcalls, shared_info, vcpu);
                }
            }
        }
    }

    fn drop_injector(&self, injector: Injector, upcalls: &Upcalls) {
        if let Injector::Own { eventfd, gsi } = injector {
            let _ = self.vm.unregister_irqfd(&eventfd, gsi);
            upcalls.routes().edit().remove_port(gsi);
            let _ = upcalls.routes().commit(&self.vm);
        }
    }

    /// Raises `old` if its upcall is pending, and announces `new`'s port on
    /// its vCPU (steps 4-5), raising it if its upcall is pending: spurious
    /// at worst, and it covers every program that raced the change.
    fn announce(&self, old: Option<u32>, new: Option<Target>, upcalls: &Upcalls, shared_info: &SharedInfoPage) {
        if let Some(vcpu) = old {
            raise_if_pending(upcalls, shared_info, vcpu);
        }
        if let Some(t) = new {
            let _ = raise_on_vcpu(shared_info.words(), t.deliver, t.vcpu);
            raise_if_pending(upcalls, shared_info, t.vcpu);
        }
    }

    fn set_entry(&self, port: u32, entry: PortEntry) {
        if let Some(doorbell) = &self.doorbell {
            doorbell.set_port(port, entry);
        }
    }

    fn grace_period(&self) {
        if let Some(doorbell) = &self.doorbell {
            doorbell.grace_period();
        }
    }

    /// Tells the service serving this VM, if any, what the VMM counted.
    pub fn report(&self, progress: &Progress) {
        if let Some(doorbell) = &self.doorbell {
            doorbell.report(progress);
        }
    }

    /// Where the program runs ("embedded" or "service"; None: bare chain).
    pub fn kind(&self) -> Option<&'static str> {
        self.doorbell.as_ref().map(DoorbellPath::kind)
    }

    /// The BPF program's counters (None for the bare chain).
    pub fn counts(&self) -> Option<DoorbellCounts> {
        self.doorbell.as_ref().map(DoorbellPath::counts)
    }

    /// Unregisters every ioeventfd and own irqfd (before the VM goes away).
    pub fn shut_down(&self, upcalls: &Upcalls) {
        if let Some(Some(committer)) = self.committer.get() {
            committer.flush();
        }
        let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
        for (port, s) in served.drain() {
            let _ = unregister_ioevent(&self.vm, s.injector.eventfd(), port);
            if let Injector::Own { eventfd, gsi } = s.injector {
                let _ = self.vm.unregister_irqfd(&eventfd, gsi);
                upcalls.routes().edit().remove_port(gsi);
            }
        }
    }
}

/// What `port` should be served as: its target, and whether that target
/// can move (None: not served in the kernel). The program sees only the
/// shared_info page, so a target vCPU must have its vcpu_info there: one
/// below 32.
fn wanted(port: u32, info: Option<PortInfo>, vcpus: u32) -> Option<(Target, bool)> {
    let info = info?;
    match info.send {
        SendTarget::Deliver { port: deliver, vcpu }
            if port != CANARY_PORT && deliver != 0 && vcpu < vcpus.min(SHARED_INFO_VCPUS) =>
        {
            Some((Target { deliver, vcpu }, matches!(info.state, PortState::Loopback { .. })))
        }
        _ => None,
    }
}

/// The canary's verdict from what it did: whether one of its doorbells
/// (MMIO, then port I/O) exited to userspace, how many times KVM completed
/// them in the kernel (the canary eventfd's count) and how many times the
/// program saw them. Both must reach both.
pub fn canary_verdict(run: CanaryRun, completed_in_kernel: u64, seen_by_program: u64) -> Result<(), String> {
    match (run.doorbell_exited, completed_in_kernel, seen_by_program) {
        (false, 2, 2) => Ok(()),
        (true, ..) => Err("a canary doorbell exited to userspace: KVM's ioeventfd did not take it".into()),
        (false, 2, 0) => Err("KVM completed the canary doorbells in the kernel without the doorbell program seeing \
                              them: on this host, kvm_mmio and kvm_pio do not fire for ioeventfd writes, or fire in \
                              another process's name"
            .into()),
        (false, 2, 1) => Err("the doorbell program saw one of the two canary doorbells (MMIO and port I/O): its \
                              port-I/O program is missing (a service started by an older xevtchn?) or kvm_pio does \
                              not fire for ioeventfd writes here"
            .into()),
        (_, completed, seen) => Err(format!(
            "the canary doorbells reached their ioeventfd {completed} times and the doorbell program {seen} times \
             (twice each was expected: MMIO and port I/O)"
        )),
    }
}

/// Both of `port`'s doorbells (xevtchn_common::doorbell) signal `eventfd`.
fn register_ioevent(vm: &VmFd, eventfd: &EventFd, port: u32) -> Result<(), kvm_ioctls::Error> {
    // Datamatch on the port's number: len 4, so never KVM's fast-MMIO bus.
    vm.register_ioevent(eventfd, &IoEventAddress::Mmio(doorbell(port)), port)?;
    let pio = IoEventAddress::Pio(u64::from(pio_doorbell(port)));
    vm.register_ioevent(eventfd, &pio, PIO_DOORBELL_VALUE).inspect_err(|_| {
        let _ = vm.unregister_ioevent(eventfd, &IoEventAddress::Mmio(doorbell(port)), port);
    })
}

fn unregister_ioevent(vm: &VmFd, eventfd: &EventFd, port: u32) -> Result<(), kvm_ioctls::Error> {
    let pio = vm.unregister_ioevent(eventfd, &IoEventAddress::Pio(u64::from(pio_doorbell(port))), PIO_DOORBELL_VALUE);
    vm.unregister_ioevent(eventfd, &IoEventAddress::Mmio(doorbell(port)), port).and(pio)
}

/// Steps 4-5 of `target`'s port on its vCPU, raising it if they say so.
fn announce_on(target: Target, upcalls: &Upcalls, shared_info: &SharedInfoPage) {
    if raise_on_vcpu(shared_info.words(), target.deliver, target.vcpu).must_raise() {
        upcalls.raise(target.vcpu);
    }
}

/// Interrupts `vcpu` if its evtchn_upcall_pending is set (spurious at worst).
fn raise_if_pending(upcalls: &Upcalls, shared_info: &SharedInfoPage, vcpu: u32) {
    if upcall_pending(shared_info.words(), vcpu) {
        upcalls.raise(vcpu);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FastPathError {
    #[error("creating the canary's eventfd")]
    Eventfd(#[source] std::io::Error),
    #[error("registering the canary's ioeventfd")]
    Canary(#[source] kvm_ioctls::Error),
}

#[cfg(test)]
#[path = "move_protocol_tests.rs"]
mod move_protocol_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn run(exited: bool) -> CanaryRun {
        CanaryRun { doorbell_exited: exited }
    }

    #[test]
    fn the_canary_passes_only_when_the_kernel_completed_it_and_the_program_saw_it() {
        assert_eq!(canary_verdict(run(false), 2, 2), Ok(()));
        assert!(canary_verdict(run(false), 2, 0).unwrap_err().contains("without the doorbell program seeing them"));
        assert!(canary_verdict(run(false), 2, 1).unwrap_err().contains("port-I/O program is missing"));
        assert!(canary_verdict(run(true), 0, 1).unwrap_err().contains("exited to userspace"));
        assert!(canary_verdict(run(false), 0, 0).unwrap_err().contains("0 times"));
        assert!(canary_verdict(run(false), 2, 3).is_err(), "seen thrice: someone else's write");
    }

    #[test]
    fn interdomain_ports_can_move_ipi_ports_cannot_and_other_ports_are_not_served() {
        let info = |state, send| Some(PortInfo { state, vcpu: 0, send });
        let ipi = info(PortState::Ipi, SendTarget::Deliver { port: 3, vcpu: 1 });
        assert_eq!(wanted(3, ipi, 2), Some((Target { deliver: 3, vcpu: 1 }, false)));
        let loopback = info(PortState::Loopback { peer: 4 }, SendTarget::Deliver { port: 4, vcpu: 1 });
        assert_eq!(wanted(5, loopback, 2), Some((Target { deliver: 4, vcpu: 1 }, true)));
        assert_eq!(wanted(5, loopback, 1), None, "vCPU 1 does not exist");
        assert_eq!(wanted(CANARY_PORT, ipi, 2), None);
        assert_eq!(wanted(6, info(PortState::Unbound { remote_dom: 0 }, SendTarget::Drop), 2), None);
        assert_eq!(wanted(7, None, 2), None);
        let to_31 = info(PortState::Loopback { peer: 4 }, SendTarget::Deliver { port: 4, vcpu: 31 });
        assert!(wanted(5, to_31, 34).is_some());
        let to_32 = info(PortState::Loopback { peer: 4 }, SendTarget::Deliver { port: 4, vcpu: 32 });
        assert_eq!(wanted(5, to_32, 34), None, "vCPU 32's vcpu_info is never in the program's page");
    }
}
