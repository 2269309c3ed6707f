//! Raising the upcall on a vCPU, the way its callback is configured:
//! - a per-vCPU LAPIC vector (HVMOP_set_evtchn_upcall_vector): an edge,
//!   fixed MSI to the vCPU's APIC, sent with KVM_SIGNAL_MSI;
//! - vCPU 0's GSI / PCI INTx callback (HVM_PARAM_CALLBACK_IRQ): a level
//!   line, asserted through a resample irqfd. KVM deasserts it when the
//!   guest EOIs and signals the resample eventfd; the line is re-asserted
//!   while vCPU 0's evtchn_upcall_pending is still set (DESIGN.md: the
//!   per-vCPU eventfd the LKML thread asks for, instead of QEMU's polling).
//! - the global VECTOR callback cannot be delivered without CONFIG_KVM_XEN
//!   (it bypasses the LAPIC); vCPUs with only that get no upcall.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
};

use kvm_bindings::kvm_msi;
use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};
use xevtchn_common::two_level::upcall_pending;

use super::shared_info::SharedInfoPage;

/// Where a vCPU's upcall goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Route {
    /// No callback configured (or only the undeliverable global VECTOR).
    #[default]
    None,
    Vector(u8),
    /// vCPU 0's level-triggered GSI (also for PCI INTx, mapped by Xen's swizzle).
    Level(u32),
}

/// Injection counters.
#[derive(Debug, Default)]
pub struct InjectStats {
    pub msis: AtomicU64,
    pub level_asserts: AtomicU64,
    pub level_reasserts: AtomicU64,
    pub undeliverable: AtomicU64,
}

struct LevelLine {
    gsi: u32,
    trigger: Arc<EventFd>,
    resample: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

pub struct Upcalls {
    vm: Arc<VmFd>,
    routes: Mutex<Vec<Route>>,
    level: Mutex<Option<LevelLine>>,
    pub stats: Arc<InjectStats>,
}

impl Upcalls {
    pub fn new(vm: Arc<VmFd>, vcpus: u32) -> Self {
        Self {
            vm,
            routes: Mutex::new(vec![Route::None; vcpus as usize]),
            level: Mutex::new(None),
            stats: Arc::default(),
        }
    }

    pub fn route(&self, vcpu: u32) -> Route {
        self.routes
            .lock()
            .expect("routes lock")
            .get(vcpu as usize)
            .copied()
            .unwrap_or_default()
    }

    pub fn set_route(&self, vcpu: u32, route: Route) {
        if let Some(r) = self
            .routes
            .lock()
            .expect("routes lock")
            .get_mut(vcpu as usize)
        {
            *r = route;
        }
    }

    /// Raises the upcall on `vcpu`. Spurious raises are harmless.
    pub fn raise(&self, vcpu: u32) {
        match self.route(vcpu) {
            Route::Vector(vector) => {
                let msi = kvm_msi {
                    // Physical destination: the vCPU's APIC ID (its index).
                    address_lo: 0xfee0_0000 | (vcpu << 12),
                    address_hi: 0,
                    data: u32::from(vector),
                    ..Default::default()
                };
                if self.vm.signal_msi(msi).is_ok() {
                    self.stats.msis.fetch_add(1, Ordering::Relaxed);
                }
            }
            Route::Level(_) => {
                if let Some(line) = self.level.lock().expect("level lock").as_ref() {
                    let _ = line.trigger.write(1);
                    self.stats.level_asserts.fetch_add(1, Ordering::Relaxed);
                }
            }
            Route::None => {
                self.stats.undeliverable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Connects vCPU 0's level callback to `gsi` (replacing any previous
    /// line), or disconnects it with `None`.
    pub fn set_level_line(
        &self,
        gsi: Option<u32>,
        shinfo: Arc<SharedInfoPage>,
    ) -> std::io::Result<()> {
        let mut level = self.level.lock().expect("level lock");
        if let Some(old) = level.take() {
            old.shut_down(&self.vm);
        }
        let Some(gsi) = gsi else { return Ok(()) };
        let trigger = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let resample = Arc::new(EventFd::new(0)?);
        self.vm
            .register_irqfd_with_resample(&trigger, &resample, gsi)
            .map_err(|e| std::io::Error::from_raw_os_error(e.errno()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (trigger, resample, stop, stats) = (
                trigger.clone(),
                resample.clone(),
                stop.clone(),
                self.stats.clone(),
            );
            thread::Builder::new()
                .name(format!("gsi{gsi}-resample"))
                .spawn(move || {
                    // Each EOI of the line: re-assert while vCPU 0 still has an
                    // upcall pending (it may have been set after the guest's scan).
                    while resample.read().is_ok() && !stop.load(Ordering::Acquire) {
                        if upcall_pending(shinfo.words(), 0) {
                            let _ = trigger.write(1);
                            stats.level_reasserts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })?
        };
        *level = Some(LevelLine {
            gsi,
            trigger,
            resample,
            stop,
            thread: Some(thread),
        });
        Ok(())
    }

    /// Stops the resample thread (at VM shutdown).
    pub fn shut_down(&self) {
        if let Some(line) = self.level.lock().expect("level lock").take() {
            line.shut_down(&self.vm);
        }
    }
}

impl LevelLine {
    fn shut_down(mut self, vm: &VmFd) {
        let _ = vm.unregister_irqfd(&self.trigger, self.gsi);
        self.stop.store(true, Ordering::Release);
        let _ = self.resample.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
