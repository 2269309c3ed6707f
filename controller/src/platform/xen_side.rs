//! The Xen side of a VM, without KVM: the domain (its lock), the
//! shared_info page, guest RAM (for the hypercall page and guest
//! pointers), what the platform counted, the guest's rate-limited log, its
//! console and its clock. Exit handling (`exits`) works on this alone, so
//! that tests can build one from anonymous memory.

use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicBool, Ordering},
};

use super::{
    clock::GuestClock, console::Console, guest_log::GuestLog, shared_info::SharedInfoPage, stats::PlatformStats,
    timers::Timers,
};
use crate::{
    vmm::{hypercall_page::UserMode, memory::GuestRam},
    xen::Domain,
};

pub struct XenSide {
    domain: Mutex<Domain>,
    pub shared_info: Arc<SharedInfoPage>,
    pub ram: GuestRam,
    pub stats: PlatformStats,
    /// Lines the guest can cause, rate-limited.
    pub log: Arc<GuestLog>,
    /// CONSOLEIO_write's output.
    pub console: Console,
    /// Xen system time (pvclock, SCHEDOP_poll timeouts).
    pub clock: GuestClock,
    /// What the hypercall page does at CPL3 (Refused unless the guest maps
    /// the VMM's MMIO window, as the built-in guest does).
    pub user_hypercalls: UserMode,
    /// Set when the VM stops: vCPUs waiting in SCHEDOP_block/poll return.
    pub stop: Arc<AtomicBool>,
    /// Each vCPU's singleshot timer (the platform runs its thread).
    pub timers: Arc<Timers>,
}

impl XenSide {
    pub fn new(
        domain: Domain,
        shared_info: Arc<SharedInfoPage>,
        ram: GuestRam,
        log: Arc<GuestLog>,
        tsc_khz: u32,
    ) -> Self {
        let nr_vcpus = domain.nr_vcpus();
        Self {
            domain: Mutex::new(domain),
            shared_info,
            ram,
            stats: PlatformStats::default(),
            log,
            console: Console::default(),
            clock: GuestClock::new(tsc_khz),
            user_hypercalls: UserMode::Refused,
            stop: Arc::default(),
            timers: Arc::new(Timers::new(nr_vcpus)),
        }
    }

    pub fn domain(&self) -> MutexGuard<'_, Domain> {
        // A panic while holding the lock is a bug; the state is still
        // consistent enough to report, so keep going.
        self.domain.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The VM is stopping: waits in hypercalls end.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}
