//! The Xen platform the vCPUs exit into: exits are handled by `exits` on
//! the Xen side alone (`xen_side`), and their side effects on the VM are
//! applied here: mapping shared_info, routing and raising upcalls, keeping
//! the fast path's kernel objects in line with the port table.

pub mod backends;
pub mod clock;
pub mod console;
pub mod eventfd_task;
pub mod exits;
pub mod fast_path;
pub mod gsi_routes;
pub mod guest_log;
pub mod route_commit;
pub mod shared_info;
pub mod stats;
pub mod timers;
pub mod upcalls;
pub mod xen_side;

use std::sync::{Arc, Mutex, MutexGuard};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::GuestMemoryBackend;
use vm_memory::GuestMemoryRegion;
use xevtchn_common::{
    two_level::{self, EventWords, upcall_pending},
    xen::hvm::{CallbackVia, pci_intx_gsi},
    xen::virq::VIRQ_TIMER,
};

use crate::{
    vmm::{
        Vm,
        exit::{Exit, Reply, VcpuState},
        gate::VcpuGate,
        hypercall_page::UserMode,
        memory,
        vcpu::Platform,
        vm::Boot,
    },
    xen::{Action, Domain},
};
use fast_path::FastPath;
use guest_log::GuestLog;
use shared_info::SharedInfoPage;
use stats::PlatformStats;
use upcalls::{Injection, Route, Upcalls};
use xen_side::XenSide;

pub struct XenPlatform {
    vm: Arc<VmFd>,
    gate: Arc<VcpuGate>,
    /// The RAM page shared_info covers, when the guest placed it in RAM.
    ram_hole: Mutex<Option<u64>>,
    /// The domain, shared_info, RAM, counters: what exits work on.
    xen: Arc<XenSide>,
    upcalls: Arc<Upcalls>,
    /// The singleshot timers' thread (see `timers`).
    timer_thread: Option<std::thread::JoinHandle<()>>,
    /// The in-kernel send path (backend `bpf`); None for `userspace`.
    fast: Option<FastPath>,
    backends: backends::Backends,
}

impl XenPlatform {
    /// `fast`: serve doorbells in the kernel (the BPF backend), with
    /// `shared_info` the BPF map's page; None delivers everything here.
    /// `tasks`: the runtime of the controller's background tasks.
    pub fn new(
        vm: &Vm,
        domain: Domain,
        shared_info: SharedInfoPage,
        fast: Option<FastPath>,
        log: Arc<GuestLog>,
        tasks: tokio::runtime::Handle,
    ) -> std::io::Result<Self> {
        let shared_info = Arc::new(shared_info);
        let injection = if fast.is_some() { Injection::Irqfd } else { Injection::Direct };
        let nr_vcpus = domain.nr_vcpus();
        let mut xen = XenSide::new(domain, shared_info.clone(), vm.ram().clone(), log, vm.tsc_khz());
        xen.stop = vm.stop_flag().clone();
        // Only the built-in guest maps the MMIO window its CPL3 code sends through.
        xen.user_hypercalls = match vm.boot() {
            Boot::BuiltIn => UserMode::Window,
            Boot::Pvh { .. } => UserMode::Refused,
        };
        let xen = Arc::new(xen);
        let upcalls = Arc::new(Upcalls::new(vm.fd().clone(), nr_vcpus, injection, shared_info.clone(), tasks)?);
        let timer_thread = Some(xen.timers.start(xen.clock, {
            let (xen, upcalls) = (xen.clone(), upcalls.clone());
            move |vcpu| timer_fired(&xen, &upcalls, vcpu)
        }));
        Ok(Self {
            upcalls,
            vm: vm.fd().clone(),
            gate: vm.gate().clone(),
            ram_hole: Mutex::new(None),
            xen,
            timer_thread,
            fast,
            backends: backends::Backends::default(),
        })
    }

    /// Offers the guest a port of a host backend (unbound, in the backend
    /// domain); guest sends on the connected port will signal `eventfd`.
    pub fn offer_backend_port(
        &self,
        eventfd: Arc<vmm_sys_util::eventfd::EventFd>,
    ) -> Result<u32, crate::xen::HostError> {
        let port = self.domain().host_alloc_unbound()?;
        self.backends.register(port, eventfd);
        Ok(port)
    }

    /// Connects a new channel between the guest and a host backend, as a
    /// toolstack does for the console or xenstore: an unbound guest port
    /// offered to the backend domain, to which the backend binds. Returns
    /// (guest port, backend port); guest sends signal `eventfd`.
    pub fn connect_backend(
        &self,
        eventfd: Arc<vmm_sys_util::eventfd::EventFd>,
    ) -> Result<(u32, u32), crate::xen::HostError> {
        let (guest_port, backend_port, actions) = self.domain().toolstack_connect()?;
        self.backends.register(backend_port, eventfd);
        self.apply(&actions);
        Ok((guest_port, backend_port))
    }

    /// Presets an HVM param the guest reads (HVM_PARAM_CONSOLE_PFN, ...).
    pub fn set_hvm_param(&self, index: u32, value: u64) -> Result<(), crate::xen::HvmError> {
        self.domain().set_hvm_param_from_host(index, value)
    }

    /// Bytes for the guest's console (CONSOLEIO_write's, the PV console's).
    pub fn console_write(&self, bytes: &[u8]) {
        self.xen.console.write(bytes, &self.xen.log);
    }

    /// A host backend sends to the guest on `backend_port`.
    pub fn backend_send(&self, backend_port: u32) -> Result<(), crate::xen::HostError> {
        let (outcome, actions) = self.domain().host_send(backend_port, self.xen.shared_info.words())?;
        self.xen.stats.count_send(outcome);
        self.apply(&actions);
        Ok(())
    }

    /// The backend domain's id, as the guest names it in bind_interdomain.
    pub fn backend_domid(&self) -> u16 {
        self.domain().ids().backend_domid
    }

    /// Where the in-kernel path's program runs, if there is one.
    pub fn fast_path_kind(&self) -> Option<&'static str> {
        self.fast.as_ref().and_then(FastPath::kind)
    }

    /// Tells the service serving this VM, if any, what the VMM counted.
    pub fn report_progress(&self) {
        if let Some(fast) = &self.fast {
            let counts = self.xen.stats.snapshot();
            fast.report(&crate::service::protocol::Progress {
                userspace_sends: counts.userspace_sends,
                userspace_upcalls: counts.upcalls_raised,
                canary_passed: true,
            });
        }
    }

    /// What the in-kernel path counted, if there is one.
    pub fn fast_counts(&self) -> Option<crate::bpf::doorbell::DoorbellCounts> {
        self.fast.as_ref().and_then(FastPath::counts)
    }

    fn domain(&self) -> MutexGuard<'_, Domain> {
        self.xen.domain()
    }

    pub fn shared_info(&self) -> &SharedInfoPage {
        &self.xen.shared_info
    }

    pub fn upcalls(&self) -> &Upcalls {
        &self.upcalls
    }

    /// Where `vcpu`'s vcpu_info lives, if the guest moved it into its RAM.
    pub fn vcpu_info(&self, vcpu: u32) -> Option<u64> {
        self.domain().vcpu_info(vcpu)
    }

    /// Where the guest's console output goes, and how much it wrote.
    pub fn console(&self) -> &console::Console {
        &self.xen.console
    }

    /// What the platform counted (exits, hypercalls, sends in userspace).
    pub fn stats(&self) -> &PlatformStats {
        &self.xen.stats
    }

    /// Carries out the hypervisor's side effects, in order.
    fn apply(&self, actions: &[Action]) {
        for action in actions {
            match *action {
                Action::RaiseUpcall { vcpu } => self.upcalls.raise(vcpu),
                // Followed by a RaiseUpcall: Xen injects at once.
                Action::UpcallVectorSet { vcpu, vector } => self.set_route(vcpu, Route::Vector(vector)),
                Action::CallbackChanged { callback } => self.set_callback(callback),
                Action::SharedInfoPlaced { gfn } => self.place_shared_info(gfn),
                Action::VcpuInfoMoved { vcpu, gpa } => self.move_vcpu_info(vcpu, gpa),
                Action::PortBound { port, .. }
                | Action::PortUpdated { port, .. }
                | Action::PortMoved { port, .. }
                | Action::PortClosed { port } => {
                    if let Some(fast) = &self.fast {
                        // Read the port under the domain lock, so that two
                        // vCPUs changing one port converge on its last state.
                        let domain = self.domain();
                        fast.sync_port(port, &domain, &self.upcalls, &self.xen.shared_info);
                    }
                }
                Action::NotifyBackend { backend_port, .. } => self.backends.notify(backend_port),
                Action::BackendUnbound { .. } => {}
            }
        }
    }

    /// vCPU 0's callback, unless its per-vCPU vector takes precedence.
    fn set_callback(&self, callback: CallbackVia) {
        let gsi = match callback {
            CallbackVia::Gsi(gsi) => u32::try_from(gsi).ok(),
            CallbackVia::PciIntx { devfn, pin, .. } => Some(pci_intx_gsi(devfn >> 3, pin)),
            // The global VECTOR callback bypasses the LAPIC: impossible
            // without CONFIG_KVM_XEN (the guest should use per-vCPU vectors).
            CallbackVia::Vector(vector) => {
                self.xen.log.warn(|| {
                    format!(
                        "the guest asked for the global VECTOR callback ({vector:#x}): it needs an injection that \
                         bypasses the LAPIC, which only KVM's Xen support (CONFIG_KVM_XEN) has; vCPUs without a \
                         per-vCPU upcall vector (HVMOP_set_evtchn_upcall_vector) get no upcall"
                    )
                });
                None
            }
            CallbackVia::None | CallbackVia::Unknown { .. } => None,
        };
        // The per-vCPU vector takes precedence; the actions that follow
        // raise the upcall wherever it is pending.
        if !matches!(self.upcalls.route(0), Route::Vector(_)) {
            self.set_route(0, gsi.map_or(Route::None, Route::Level));
        }
    }

    fn set_route(&self, vcpu: u32, route: Route) {
        if let Err(e) = self.upcalls.set_route(vcpu, route) {
            self.xen.log.warn(|| format!("vCPU {vcpu}: routing its upcall to {route:?}: {e}"));
        }
    }

    /// VCPUOP_register_vcpu_info (map_vcpu_info): `vcpu`'s vcpu_info moves
    /// to `gpa` in RAM. The in-kernel path sees only the shared_info page,
    /// so the vCPU's ports leave it (its sends are served here); then, as
    /// Xen does, everything is marked pending on the new vcpu_info and the
    /// upcall raised: a spurious event at worst, none lost.
    fn move_vcpu_info(&self, vcpu: u32, gpa: u64) {
        let words = self.xen.shared_info.words();
        if !self.xen.shared_info.move_vcpu_info(vcpu, &self.xen.ram, gpa) {
            self.xen
                .log
                .warn(|| format!("vCPU {vcpu}: no whole vcpu_info of RAM at {gpa:#x}: it stays in shared_info"));
            return;
        }
        self.xen.clock.write_time_info(words, self.upcalls.vcpus());
        if let Some(fast) = &self.fast {
            let domain = self.domain();
            let ports: Vec<u32> = domain.bound_ports().map(|(port, _)| port).collect();
            for port in ports {
                fast.sync_port(port, &domain, &self.upcalls, &self.xen.shared_info);
            }
        }
        words.swap(two_level::pending_sel_word(vcpu), u64::MAX);
        words.fetch_or(two_level::upcall_word(vcpu), two_level::UPCALL_PENDING_BIT);
        self.upcalls.raise(vcpu);
    }

    /// Maps the shared_info page at `gfn`: its own memslot, over a hole
    /// punched in RAM's memslots when the guest chose a RAM page (as Xen
    /// replaces the guest's page), with every vCPU paused meanwhile.
    fn place_shared_info(&self, gfn: u64) {
        let gpa = gfn << 12;
        let ram_size: u64 = self.xen.ram.iter().map(|r| r.len()).sum();
        let hole = (gpa < ram_size).then_some(gpa);
        let mut current = self.ram_hole.lock().unwrap_or_else(|p| p.into_inner());
        let page = kvm_userspace_memory_region {
            slot: memory::PAGE_SLOT,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: shared_info::PAGE_SIZE as u64,
            userspace_addr: self.xen.shared_info.host_address(),
        };
        let result = self.gate.paused(|| -> Result<(), crate::vmm::VmmError> {
            let delete = kvm_userspace_memory_region { memory_size: 0, ..page };
            // SAFETY: deleting the page's slot; the page itself stays mapped.
            let _ = unsafe { self.vm.set_user_memory_region(delete) };
            if *current != hole {
                memory::set_ram_hole(&self.vm, &self.xen.ram, hole)?;
                *current = hole;
            }
            // SAFETY: the page outlives the VM fd's use of it: the platform
            // owns it and is dropped after the vCPUs stopped.
            unsafe { self.vm.set_user_memory_region(page) }
                .map_err(crate::vmm::VmmError::kvm("KVM_SET_USER_MEMORY_REGION"))
        });
        if let Err(e) = result {
            self.xen.log.warn(|| format!("mapping shared_info at gfn {gfn:#x}: {:#}", anyhow::Error::from(e)));
        }
        // The pvclock fields of the vcpu_infos in it.
        self.xen.clock.write_time_info(self.xen.shared_info.words(), self.upcalls.vcpus());
    }
}

impl Platform for XenPlatform {
    fn handle_exit(&self, vcpu: u32, state: &mut dyn VcpuState, exit: Exit) -> Reply {
        let handled = exits::handle_exit(&self.xen, vcpu, state, exit);
        self.apply(&handled.actions);
        if handled.doorbell && self.fast.is_some() {
            // The program may have handled this write too, on a port whose
            // ioeventfd was being registered, leaving an upcall pending that
            // nobody injected. Raise every pending upcall: a spurious one is
            // harmless. (The send then ran twice: at worst the guest sees
            // the event twice, never zero times; skipping it could lose one.)
            for vcpu in 0..self.upcalls.vcpus() {
                if upcall_pending(self.xen.shared_info.words(), vcpu) {
                    self.upcalls.raise(vcpu);
                }
            }
        }
        handled.reply
    }
}

/// `vcpu`'s singleshot timer fired: Xen sends its VIRQ_TIMER
/// (send_timer_event), if the guest bound one.
fn timer_fired(xen: &XenSide, upcalls: &Upcalls, vcpu: u32) {
    let sent = xen.domain().send_virq(VIRQ_TIMER, vcpu, xen.shared_info.words());
    if let Ok((outcome, actions)) = sent {
        xen.stats.count_send(outcome);
        for action in actions {
            if let Action::RaiseUpcall { vcpu } = action {
                upcalls.raise(vcpu);
            }
        }
    }
}

impl Drop for XenPlatform {
    fn drop(&mut self) {
        self.xen.timers.stop();
        if let Some(thread) = self.timer_thread.take() {
            let _ = thread.join();
        }
        if let Some(fast) = &self.fast {
            fast.shut_down(&self.upcalls);
        }
        self.upcalls.shut_down();
    }
}
