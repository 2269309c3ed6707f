//! The Xen platform the vCPUs exit into: hypercalls through the MMIO
//! window, doorbells that exited to userspace, the hypercall-page MSR, and
//! the side effects of the hypervisor logic (`xen::Domain`) on the VM:
//! mapping shared_info, routing and raising upcalls.

pub mod shared_info;
pub mod stats;
pub mod upcalls;

use std::sync::{Arc, Mutex, MutexGuard};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{VcpuFd, VmFd};
use vm_memory::{Bytes, GuestAddress};
use xevtchn_common::{
    two_level::upcall_pending,
    xen::{
        evtchn::EVTCHNOP_send,
        hvm::{CallbackVia, pci_intx_gsi},
        hypercall::__HYPERVISOR_event_channel_op,
    },
};

use crate::{
    vmm::{
        exit::{Mmio, classify},
        guest_virtual::GuestVirtual,
        hypercall_page,
        memory::GuestRam,
        vcpu::{Platform, Stop},
        xen_cpuid::HYPERCALL_PAGE_MSR,
    },
    xen::{Action, Domain, GuestFault, GuestMemory, Hypercall},
};
use shared_info::SharedInfoPage;
use stats::PlatformStats;
use upcalls::{Route, Upcalls};

/// The memslot of the shared_info page (RAM is slot 0).
const SHARED_INFO_SLOT: u32 = 1;
/// Ports below this send through their doorbell (the rest through the
/// general hypercall path).
pub const FAST_PORTS: u32 = 1024;

pub struct XenPlatform {
    vm: Arc<VmFd>,
    ram: GuestRam,
    domain: Mutex<Domain>,
    shared_info: Arc<SharedInfoPage>,
    upcalls: Upcalls,
    pub stats: PlatformStats,
}

impl XenPlatform {
    pub fn new(vm: Arc<VmFd>, ram: GuestRam, domain: Domain, shared_info: SharedInfoPage) -> Self {
        let vcpus = domain.nr_vcpus();
        Self {
            upcalls: Upcalls::new(vm.clone(), vcpus),
            vm,
            ram,
            domain: Mutex::new(domain),
            shared_info: Arc::new(shared_info),
            stats: PlatformStats::default(),
        }
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
        let regs = fd
            .get_regs()
            .map_err(|e| Stop::Fault(format!("vCPU {vcpu}: KVM_GET_REGS: {e}")))?;
        let call = Hypercall {
            nr,
            args: [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8],
        };
        let memory = GuestPointers(GuestVirtual {
            vcpu: fd,
            ram: &self.ram,
        });
        self.stats.count_hypercall(nr, call.args[0]);
        let result = self
            .domain()
            .hypercall(&call, &memory, self.shared_info.words());
        self.apply(&result.actions);
        Ok(result.rax())
    }

    /// A doorbell write that reached userspace: EVTCHNOP_send on `port`.
    fn doorbell(&self, vcpu: u32, fd: &VcpuFd, port: u32) -> Result<(), Stop> {
        self.stats.count_hypercall(
            u64::from(__HYPERVISOR_event_channel_op),
            u64::from(EVTCHNOP_send),
        );
        let result = self
            .domain()
            .send_from_guest(port, self.shared_info.words());
        self.stats.count_send(result.outcome);
        self.apply(&result.actions);
        if result.ret != 0 {
            // The stub set rax to 0 before the write; give it the errno.
            let mut regs = fd
                .get_regs()
                .map_err(|e| Stop::Fault(format!("vCPU {vcpu}: KVM_GET_REGS: {e}")))?;
            regs.rax = result.ret as u64;
            fd.set_regs(&regs)
                .map_err(|e| Stop::Fault(format!("vCPU {vcpu}: KVM_SET_REGS: {e}")))?;
        }
        Ok(())
    }

    /// Carries out the hypervisor's side effects, in order.
    fn apply(&self, actions: &[Action]) {
        for action in actions {
            match *action {
                Action::RaiseUpcall { vcpu } => self.upcalls.raise(vcpu),
                // Followed by a RaiseUpcall: Xen injects at once.
                Action::UpcallVectorSet { vcpu, vector } => {
                    self.upcalls.set_route(vcpu, Route::Vector(vector))
                }
                Action::CallbackChanged { callback } => self.set_callback(callback),
                Action::SharedInfoPlaced { gfn } => self.place_shared_info(gfn),
                Action::PortBound { .. }
                | Action::PortUpdated { .. }
                | Action::PortMoved { .. }
                | Action::PortClosed { .. }
                | Action::NotifyBackend { .. }
                | Action::BackendUnbound { .. } => {}
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
            CallbackVia::Vector(_) | CallbackVia::None | CallbackVia::Unknown { .. } => None,
        };
        if let Err(e) = self.upcalls.set_level_line(gsi, self.shared_info.clone()) {
            log::error!("connecting the callback GSI {gsi:?}: {e}");
        }
        if !matches!(self.upcalls.route(0), Route::Vector(_)) {
            self.upcalls
                .set_route(0, gsi.map_or(Route::None, Route::Level));
            if upcall_pending(self.shared_info.words(), 0) {
                self.upcalls.raise(0);
            }
        }
    }

    fn place_shared_info(&self, gfn: u64) {
        let region = kvm_userspace_memory_region {
            slot: SHARED_INFO_SLOT,
            flags: 0,
            guest_phys_addr: gfn << 12,
            memory_size: shared_info::PAGE_SIZE as u64,
            userspace_addr: self.shared_info.host_address(),
        };
        let delete = kvm_userspace_memory_region {
            memory_size: 0,
            ..region
        };
        // SAFETY: the page outlives the VM (the platform is dropped after
        // the VM fd's users, and the slot is deleted and re-added whole).
        let placed = unsafe {
            let _ = self.vm.set_user_memory_region(delete);
            self.vm.set_user_memory_region(region)
        };
        if let Err(e) = placed {
            log::error!("mapping shared_info at gfn {gfn:#x}: {e}");
        }
    }

    /// Writes the hypercall page into guest RAM (the hypercall-page MSR).
    fn write_hypercall_page(&self, value: u64) -> bool {
        let gpa = value & !0xfff;
        // Bits 11:0 select the page of a multi-page area; there is one.
        value & 0xfff == 0
            && self
                .ram
                .write_slice(&hypercall_page::build(FAST_PORTS), GuestAddress(gpa))
                .is_ok()
    }
}

impl Platform for XenPlatform {
    fn mmio_read(&self, vcpu: u32, fd: &VcpuFd, addr: u64) -> Result<u64, Stop> {
        self.stats.count_exit();
        match classify(addr) {
            Mmio::Hypercall(nr) => self.hypercall(vcpu, fd, nr),
            _ => Err(Stop::Fault(format!(
                "vCPU {vcpu}: read of unknown MMIO address {addr:#x}"
            ))),
        }
    }

    fn mmio_write(&self, vcpu: u32, fd: &VcpuFd, addr: u64, value: u64) -> Result<(), Stop> {
        self.stats.count_exit();
        match classify(addr) {
            Mmio::Exit => Err(Stop::GuestExit(value as u32)),
            Mmio::Smoke => {
                self.stats.count_smoke();
                Ok(())
            }
            Mmio::Doorbell(port) => self.doorbell(vcpu, fd, port),
            Mmio::Hypercall(_) | Mmio::Unknown => Err(Stop::Fault(format!(
                "vCPU {vcpu}: write of {value:#x} to unknown MMIO address {addr:#x}"
            ))),
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
        self.upcalls.shut_down();
    }
}

/// Hypercall pointer arguments, followed through the calling vCPU's page tables.
struct GuestPointers<'a>(GuestVirtual<'a>);

impl GuestMemory for GuestPointers<'_> {
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        self.0.read(gva, buf).map_err(|_| GuestFault {
            gva,
            len: buf.len(),
        })
    }

    fn write(&self, gva: u64, data: &[u8]) -> Result<(), GuestFault> {
        self.0.write(gva, data).map_err(|_| GuestFault {
            gva,
            len: data.len(),
        })
    }
}
