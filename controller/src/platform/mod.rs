//! The Xen platform the vCPUs exit into: hypercalls through the MMIO
//! window, doorbells that exited to userspace, the hypercall-page MSR, and
//! the side effects of the hypervisor logic (`xen::Domain`) on the VM:
//! mapping shared_info, routing and raising upcalls.

pub mod backends;
pub mod eventfd_task;
pub mod fast_path;
pub mod gsi_routes;
pub mod guest_log;
pub mod route_commit;
pub mod shared_info;
pub mod stats;
pub mod upcalls;

use std::sync::{Arc, Mutex, MutexGuard};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{VcpuFd, VmFd};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryRegion};
use xevtchn_common::{
    doorbell::DOORBELL_WIDTH,
    two_level::upcall_pending,
    xen::{
        evtchn::EVTCHNOP_send,
        hvm::{CallbackVia, pci_intx_gsi},
        hypercall::__HYPERVISOR_event_channel_op,
    },
};

use crate::{
    vmm::{
        Vm,
        exit::{Mmio, classify},
        gate::VcpuGate,
        guest_virtual::GuestVirtual,
        hypercall_page,
        memory::{self, GuestRam},
        vcpu::{Platform, Stop},
        xen_cpuid::HYPERCALL_PAGE_MSR,
    },
    xen::{Action, Domain, GuestFault, GuestMemory, Hypercall},
};
use fast_path::FastPath;
use guest_log::GuestLog;
use shared_info::SharedInfoPage;
use stats::PlatformStats;
use upcalls::{Injection, Route, Upcalls};

pub struct XenPlatform {
    vm: Arc<VmFd>,
    ram: GuestRam,
    gate: Arc<VcpuGate>,
    /// The RAM page shared_info covers, when the guest placed it in RAM.
    ram_hole: Mutex<Option<u64>>,
    domain: Mutex<Domain>,
    shared_info: Arc<SharedInfoPage>,
    upcalls: Upcalls,
    /// The in-kernel send path (backend `bpf`); None for `userspace`.
    fast: Option<FastPath>,
    backends: backends::Backends,
    /// Lines the guest can cause, rate-limited.
    log: Arc<GuestLog>,
    pub stats: PlatformStats,
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
        Ok(Self {
            upcalls: Upcalls::new(vm.fd().clone(), domain.nr_vcpus(), injection, shared_info.clone(), tasks)?,
            vm: vm.fd().clone(),
            ram: vm.ram().clone(),
            gate: vm.gate().clone(),
            ram_hole: Mutex::new(None),
            domain: Mutex::new(domain),
            shared_info,
            fast,
            backends: backends::Backends::default(),
            log,
            stats: PlatformStats::default(),
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

    /// A host backend sends to the guest on `backend_port`.
    pub fn backend_send(&self, backend_port: u32) -> Result<(), crate::xen::HostError> {
        let (outcome, actions) = self.domain().host_send(backend_port, self.shared_info.words())?;
        self.stats.count_send(outcome);
        self.apply(&actions);
        Ok(())
    }

    /// The backend domain's id, as the guest names it in bind_interdomain.
    pub fn backend_domid(&self) -> u16 {
        self.domain().ids().backend_domid
    }

    /// What the in-kernel path counted, if there is one.
    pub fn fast_counts(&self) -> Option<crate::bpf::doorbell::DoorbellCounts> {
        self.fast.as_ref().and_then(FastPath::counts)
    }

    fn domain(&self) -> MutexGuard<'_, Domain> {
        // A panic while holding the lock is a bug; the state is still
        // consistent enough to report, so keep going.
        self.domain.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn shared_info(&self) -> &SharedInfoPage {
        &self.shared_info
    }

    pub fn upcalls(&self) -> &Upcalls {
        &self.upcalls
    }

    fn hypercall(&self, vcpu: u32, fd: &VcpuFd, nr: u64) -> Result<u64, Stop> {
        let regs = fd.get_regs().map_err(|e| Stop::Fault(format!("vCPU {vcpu}: KVM_GET_REGS: {e}")))?;
        let call = Hypercall { nr, args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8] };
        let memory = GuestPointers(GuestVirtual { vcpu: fd, ram: &self.ram });
        self.stats.count_hypercall(nr, call.args[0]);
        let result = self.domain().hypercall(&call, &memory, self.shared_info.words());
        self.apply(&result.actions);
        Ok(result.rax())
    }

    /// A doorbell write that reached userspace: EVTCHNOP_send on `port`.
    fn doorbell(&self, vcpu: u32, fd: &VcpuFd, port: u32) -> Result<(), Stop> {
        self.stats.count_hypercall(u64::from(__HYPERVISOR_event_channel_op), u64::from(EVTCHNOP_send));
        let result = self.domain().send_from_guest(port, self.shared_info.words());
        self.stats.count_send(result.outcome);
        self.apply(&result.actions);
        if self.fast.is_some() {
            // The BPF program may have run the algorithm for this write
            // already (its port entry was fast while its ioeventfd was being
            // moved), leaving an upcall pending that nobody injected. Raise
            // every pending upcall: a spurious one is harmless. (The send
            // above then ran a second time: at worst the guest sees the
            // event twice, never zero times; skipping it could lose one.)
            for vcpu in 0..self.upcalls.vcpus() {
                if upcall_pending(self.shared_info.words(), vcpu) {
                    self.upcalls.raise(vcpu);
                }
            }
        }
        if result.ret != 0 {
            // The stub set rax to 0 before the write; give it the errno.
            let mut regs = fd.get_regs().map_err(|e| Stop::Fault(format!("vCPU {vcpu}: KVM_GET_REGS: {e}")))?;
            regs.rax = result.ret as u64;
            fd.set_regs(&regs).map_err(|e| Stop::Fault(format!("vCPU {vcpu}: KVM_SET_REGS: {e}")))?;
        }
        Ok(())
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
                Action::PortBound { port, .. }
                | Action::PortUpdated { port, .. }
                | Action::PortMoved { port, .. }
                | Action::PortClosed { port } => {
                    if let Some(fast) = &self.fast {
                        // Read the port under the domain lock, so that two
                        // vCPUs changing one port converge on its last state.
                        let domain = self.domain();
                        fast.sync_port(port, &domain, &self.upcalls, &self.shared_info);
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
                self.log.warn(|| {
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
            self.log.warn(|| format!("vCPU {vcpu}: routing its upcall to {route:?}: {e}"));
        }
    }

    /// Maps the shared_info page at `gfn`: its own memslot, over a hole
    /// punched in RAM's memslots when the guest chose a RAM page (as Xen
    /// replaces the guest's page), with every vCPU paused meanwhile.
    fn place_shared_info(&self, gfn: u64) {
        let gpa = gfn << 12;
        let ram_size: u64 = self.ram.iter().map(|r| r.len()).sum();
        let hole = (gpa < ram_size).then_some(gpa);
        let mut current = self.ram_hole.lock().unwrap_or_else(|p| p.into_inner());
        let page = kvm_userspace_memory_region {
            slot: memory::PAGE_SLOT,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: shared_info::PAGE_SIZE as u64,
            userspace_addr: self.shared_info.host_address(),
        };
        let result = self.gate.paused(|| -> Result<(), crate::vmm::VmmError> {
            let delete = kvm_userspace_memory_region { memory_size: 0, ..page };
            // SAFETY: deleting the page's slot; the page itself stays mapped.
            let _ = unsafe { self.vm.set_user_memory_region(delete) };
            if *current != hole {
                memory::set_ram_hole(&self.vm, &self.ram, hole)?;
                *current = hole;
            }
            // SAFETY: the page outlives the VM fd's use of it: the platform
            // owns it and is dropped after the vCPUs stopped.
            unsafe { self.vm.set_user_memory_region(page) }
                .map_err(crate::vmm::VmmError::kvm("KVM_SET_USER_MEMORY_REGION"))
        });
        if let Err(e) = result {
            self.log.warn(|| format!("mapping shared_info at gfn {gfn:#x}: {:#}", anyhow::Error::from(e)));
        }
    }

    /// An MMIO access nothing decodes: counted, and logged (rate-limited).
    fn stray_access(&self, vcpu: u32, addr: u64, what: &str) {
        self.stats.count_stray_access();
        self.log.warn(|| format!("vCPU {vcpu}: {what} of MMIO address {addr:#x}, which nothing decodes (ignored)"));
    }

    /// Writes the hypercall page into guest RAM (the hypercall-page MSR).
    fn write_hypercall_page(&self, value: u64) -> bool {
        let gpa = value & !0xfff;
        // Bits 11:0 select the page of a multi-page area; there is one.
        value & 0xfff == 0 && self.ram.write_slice(&hypercall_page::build(), GuestAddress(gpa)).is_ok()
    }
}

impl Platform for XenPlatform {
    fn mmio_read(&self, vcpu: u32, fd: &VcpuFd, addr: u64) -> Result<u64, Stop> {
        self.stats.count_exit();
        match classify(addr) {
            Mmio::Hypercall(nr) => self.hypercall(vcpu, fd, nr),
            // Like an unclaimed bus: all ones. The guest runs on.
            _ => {
                self.stray_access(vcpu, addr, "read");
                Ok(u64::MAX)
            }
        }
    }

    fn mmio_write(&self, vcpu: u32, fd: &VcpuFd, addr: u64, value: u64, len: usize) -> Result<(), Stop> {
        self.stats.count_exit();
        match classify(addr) {
            Mmio::Exit => Err(Stop::GuestExit(value as u32)),
            Mmio::Smoke => {
                self.stats.count_smoke();
                Ok(())
            }
            // A doorbell is exactly what its ioeventfd would match (see
            // xevtchn_common::doorbell); the program ignores the rest too.
            Mmio::Doorbell(port) if len == DOORBELL_WIDTH as usize && value == u64::from(port) => {
                self.doorbell(vcpu, fd, port)
            }
            // Dropped, like a write nothing claims. The guest runs on.
            Mmio::Doorbell(_) | Mmio::Hypercall(_) | Mmio::Unknown => {
                self.stray_access(vcpu, addr, "write");
                Ok(())
            }
        }
    }

    fn msr_write(&self, _vcpu: u32, index: u32, value: u64) -> bool {
        self.stats.count_exit();
        index == HYPERCALL_PAGE_MSR && self.write_hypercall_page(value)
    }

    fn msr_read(&self, _vcpu: u32, _index: u32) -> Option<u64> {
        self.stats.count_exit();
        None
    }
}

impl Drop for XenPlatform {
    fn drop(&mut self) {
        if let Some(fast) = &self.fast {
            fast.shut_down(&self.upcalls);
        }
        self.upcalls.shut_down();
    }
}

/// Hypercall pointer arguments, followed through the calling vCPU's page tables.
struct GuestPointers<'a>(GuestVirtual<'a>);

impl GuestMemory for GuestPointers<'_> {
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        self.0.read(gva, buf).map_err(|_| GuestFault { gva, len: buf.len() })
    }

    fn write(&self, gva: u64, data: &[u8]) -> Result<(), GuestFault> {
        self.0.write(gva, data).map_err(|_| GuestFault { gva, len: data.len() })
    }
}
