//! Raising the upcall on a vCPU, the way its callback is configured.
//!
//! Every vCPU v has an eventfd E_v; what writing it does depends on v's route:
//! - a per-vCPU LAPIC vector (HVMOP_set_evtchn_upcall_vector): with
//!   `Injection::Irqfd`, E_v is an irqfd on an MSI route to v's APIC with the
//!   vector (edge, fixed), so an ioeventfd signalling E_v injects with no
//!   userspace at all; with `Injection::Direct` the VMM sends the MSI itself
//!   with KVM_SIGNAL_MSI (the userspace backend);
//! - vCPU 0's GSI / PCI INTx callback (HVM_PARAM_CALLBACK_IRQ): E_0 is a
//!   resample irqfd on the GSI (level). KVM deasserts the line when the guest
//!   EOIs and signals the resample eventfd; a Tokio task re-asserts while vCPU
//!   0's evtchn_upcall_pending is still set (the per-vCPU eventfd the LKML
//!   thread asks for, instead of QEMU's polling on every exit);
//! - the global VECTOR callback cannot be delivered without CONFIG_KVM_XEN
//!   (it bypasses the LAPIC): such a vCPU gets no upcall, counted as
//!   undeliverable.

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicU64, Ordering},
};

use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use xevtchn_common::two_level::upcall_pending;

use super::{
    eventfd_task,
    gsi_routes::{IOAPIC_PINS, Routes, msi, vcpu_gsi},
    route_commit::Committing,
    shared_info::SharedInfoPage,
};

/// Where a vCPU's upcall goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Route {
    /// No callback configured (or only the undeliverable global VECTOR).
    #[default]
    None,
    Vector(u8),
    /// vCPU 0's level-triggered GSI (also for PCI INTx, after Xen's swizzle).
    Level(u32),
}

/// How a vector upcall is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// KVM_SIGNAL_MSI from the thread that raises it.
    Direct,
    /// Writing E_v, an irqfd on an MSI route (what ioeventfds can do in-kernel).
    Irqfd,
}

#[derive(Debug, Default)]
pub struct InjectStats {
    pub msis: AtomicU64,
    pub eventfd_writes: AtomicU64,
    pub level_reasserts: AtomicU64,
    pub undeliverable: AtomicU64,
}

/// A snapshot of `InjectStats`, for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InjectCounts {
    /// KVM_SIGNAL_MSI sent by the VMM (backend userspace).
    pub msis: u64,
    /// Upcall eventfds written by the VMM (irqfd routes, level lines).
    pub eventfd_writes: u64,
    /// Level lines re-asserted after an EOI.
    pub level_reasserts: u64,
    /// Raises for a vCPU with no deliverable callback.
    pub undeliverable: u64,
}

impl InjectStats {
    pub fn snapshot(&self) -> InjectCounts {
        InjectCounts {
            msis: self.msis.load(Ordering::Relaxed),
            eventfd_writes: self.eventfd_writes.load(Ordering::Relaxed),
            level_reasserts: self.level_reasserts.load(Ordering::Relaxed),
            undeliverable: self.undeliverable.load(Ordering::Relaxed),
        }
    }
}

struct VcpuUpcall {
    route: Route,
    eventfd: Arc<EventFd>,
    /// The GSI E_v is registered on as an irqfd, if any.
    irqfd_gsi: Option<u32>,
}

/// The task re-asserting vCPU 0's level line (aborted on drop).
struct LevelLine(tokio::task::JoinHandle<()>);

impl Drop for LevelLine {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct Upcalls {
    vm: Arc<VmFd>,
    tasks: tokio::runtime::Handle,
    injection: Injection,
    shared_info: Arc<SharedInfoPage>,
    vcpus: RwLock<Vec<VcpuUpcall>>,
    /// The VM's routing table (also holds the fast path's port routes).
    routes: Arc<Routes>,
    level: RwLock<Option<LevelLine>>,
    pub stats: Arc<InjectStats>,
}

impl Upcalls {
    pub fn new(
        vm: Arc<VmFd>,
        vcpus: u32,
        injection: Injection,
        shared_info: Arc<SharedInfoPage>,
        tasks: tokio::runtime::Handle,
    ) -> std::io::Result<Self> {
        let routes = Arc::new(Routes::new(vcpus));
        let vcpus = (0..vcpus)
            .map(|_| {
                Ok(VcpuUpcall { route: Route::None, eventfd: Arc::new(EventFd::new(EFD_NONBLOCK)?), irqfd_gsi: None })
            })
            .collect::<std::io::Result<_>>()?;
        Ok(Self {
            vm,
            tasks,
            injection,
            shared_info,
            vcpus: RwLock::new(vcpus),
            routes,
            level: RwLock::new(None),
            stats: Arc::default(),
        })
    }

    pub fn vcpus(&self) -> u32 {
        self.vcpus.read().expect("upcalls lock").len() as u32
    }

    pub fn route(&self, vcpu: u32) -> Route {
        self.vcpus.read().expect("upcalls lock").get(vcpu as usize).map_or(Route::None, |v| v.route)
    }

    /// E_v: what an ioeventfd for a port bound to `vcpu` signals.
    pub fn eventfd(&self, vcpu: u32) -> Option<Arc<EventFd>> {
        self.vcpus.read().expect("upcalls lock").get(vcpu as usize).map(|v| v.eventfd.clone())
    }

    /// The VM's routing table. Lock order: the vCPU table, then this.
    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    /// What a thread committing routes off the vCPUs' paths needs.
    pub fn committing(&self) -> Committing {
        let vcpus = self.vcpus.read().expect("upcalls lock");
        Committing {
            vm: self.vm.clone(),
            routes: self.routes.clone(),
            upcall_eventfds: vcpus.iter().map(|v| v.eventfd.clone()).collect(),
            shared_info: self.shared_info.clone(),
            stats: self.stats.clone(),
        }
    }

    /// Raises the upcall on `vcpu`. Spurious raises are harmless.
    pub fn raise(&self, vcpu: u32) {
        let vcpus = self.vcpus.read().expect("upcalls lock");
        let Some(v) = vcpus.get(vcpu as usize) else {
            return;
        };
        match (v.route, self.injection) {
            (Route::Vector(vector), Injection::Direct) => {
                if self.vm.signal_msi(msi(vcpu, vector)).is_ok() {
                    self.stats.msis.fetch_add(1, Ordering::Relaxed);
                }
            }
            (Route::Vector(_), Injection::Irqfd) | (Route::Level(_), _) => {
                let _ = v.eventfd.write(1);
                self.stats.eventfd_writes.fetch_add(1, Ordering::Relaxed);
            }
            (Route::None, _) => {
                self.stats.undeliverable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Points `vcpu`'s upcall at `route`, rewiring E_v.
    pub fn set_route(&self, vcpu: u32, route: Route) -> std::io::Result<()> {
        let mut vcpus = self.vcpus.write().expect("upcalls lock");
        let Some(v) = vcpus.get_mut(vcpu as usize) else {
            return Ok(());
        };
        if v.route == route {
            return Ok(());
        }
        if let (Route::Vector(_), Route::Vector(vector), Injection::Irqfd) = (v.route, route, self.injection) {
            // A new vector: the same irqfd, on a route that changes.
            v.route = route;
            self.routes.edit().set_vector(vcpu, Some(vector));
            return self.routes.commit(&self.vm);
        }
        if matches!(v.route, Route::Vector(_)) {
            // Xen never takes a per-vCPU vector back; keep the table true anyway.
            self.routes.edit().set_vector(vcpu, None);
        }
        if let Some(gsi) = v.irqfd_gsi.take() {
            let _ = self.vm.unregister_irqfd(&v.eventfd, gsi);
        }
        let was_level = matches!(v.route, Route::Level(_));
        v.route = route;
        if was_level {
            self.stop_level_line();
        }
        let wired = match (route, self.injection) {
            (Route::Vector(vector), Injection::Irqfd) => (|| {
                self.routes.edit().set_vector(vcpu, Some(vector));
                self.routes.commit(&self.vm)?;
                let v = &mut vcpus[vcpu as usize];
                let gsi = vcpu_gsi(vcpu);
                self.vm.register_irqfd(&v.eventfd, gsi).map_err(io)?;
                v.irqfd_gsi = Some(gsi);
                Ok(())
            })(),
            // KVM's IOAPIC has 24 pins; a Xen PCI INTx GSI may be higher.
            (Route::Level(gsi), _) if gsi >= IOAPIC_PINS => {
                Err(std::io::Error::other(format!("GSI {gsi} is beyond the {IOAPIC_PINS} pins of KVM's IOAPIC")))
            }
            (Route::Level(gsi), _) => (|| {
                let v = &mut vcpus[vcpu as usize];
                let resample = Arc::new(EventFd::new(EFD_NONBLOCK)?);
                self.vm.register_irqfd_with_resample(&v.eventfd, &resample, gsi).map_err(io)?;
                v.irqfd_gsi = Some(gsi);
                let line = self.start_level_line(v.eventfd.clone(), resample)?;
                *self.level.write().expect("level lock") = Some(line);
                Ok(())
            })(),
            (Route::Vector(_), Injection::Direct) | (Route::None, _) => Ok(()),
        };
        if wired.is_err() {
            // Not wired: count raises as undeliverable rather than lose them quietly.
            vcpus[vcpu as usize].route = Route::None;
        }
        wired
    }

    fn start_level_line(&self, trigger: Arc<EventFd>, resample: Arc<EventFd>) -> std::io::Result<LevelLine> {
        let (shared_info, stats) = (self.shared_info.clone(), self.stats.clone());
        // Each EOI of the line: re-assert while vCPU 0 still has an upcall
        // pending (set again after the guest's scan).
        let task = eventfd_task::watch(&self.tasks, resample, move || {
            if upcall_pending(shared_info.words(), 0) {
                let _ = trigger.write(1);
                stats.level_reasserts.fetch_add(1, Ordering::Relaxed);
            }
        })?;
        Ok(LevelLine(task))
    }

    fn stop_level_line(&self) {
        self.level.write().expect("level lock").take();
    }

    /// Unwires every irqfd and stops the resample task (VM shutdown).
    pub fn shut_down(&self) {
        let mut vcpus = self.vcpus.write().expect("upcalls lock");
        for v in vcpus.iter_mut() {
            if let Some(gsi) = v.irqfd_gsi.take() {
                let _ = self.vm.unregister_irqfd(&v.eventfd, gsi);
            }
        }
        drop(vcpus);
        self.stop_level_line();
    }
}

fn io(e: kvm_ioctls::Error) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.errno())
}
