//! The Xen side of a VM, without KVM: the domain (its lock), the
//! shared_info page, guest RAM (for the hypercall page and guest
//! pointers), what the platform counted and the guest's rate-limited log.
//! Exit handling (`exits`) works on this alone, so that tests can build
//! one from anonymous memory.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{guest_log::GuestLog, shared_info::SharedInfoPage, stats::PlatformStats};
use crate::{vmm::memory::GuestRam, xen::Domain};

pub struct XenSide {
    domain: Mutex<Domain>,
    pub shared_info: Arc<SharedInfoPage>,
    pub ram: GuestRam,
    pub stats: PlatformStats,
    /// Lines the guest can cause, rate-limited.
    pub log: Arc<GuestLog>,
}

impl XenSide {
    pub fn new(domain: Domain, shared_info: Arc<SharedInfoPage>, ram: GuestRam, log: Arc<GuestLog>) -> Self {
        Self { domain: Mutex::new(domain), shared_info, ram, stats: PlatformStats::default(), log }
    }

    pub fn domain(&self) -> MutexGuard<'_, Domain> {
        // A panic while holding the lock is a bug; the state is still
        // consistent enough to report, so keep going.
        self.domain.lock().unwrap_or_else(|p| p.into_inner())
    }
}
