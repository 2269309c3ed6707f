//! What the platform counted: userspace exits, hypercalls, and the
//! outcomes of the sends it performed itself.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;
use xevtchn_common::{
    two_level::{OUTCOME_COUNT, Outcome},
    xen::{evtchn::EVTCHNOP_send, hypercall::__HYPERVISOR_event_channel_op},
};

#[derive(Debug, Default)]
pub struct PlatformStats {
    exits: AtomicU64,
    hypercalls: AtomicU64,
    sends: AtomicU64,
    smoke_writes: AtomicU64,
    stray_accesses: AtomicU64,
    outcomes: [AtomicU64; OUTCOME_COUNT],
}

/// A snapshot, for reports.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PlatformCounts {
    /// Exits handled by the VMM (MMIO and MSR), all vCPUs.
    pub userspace_exits: u64,
    /// Hypercalls performed in userspace (including sends).
    pub hypercalls: u64,
    /// EVTCHNOP_send performed in userspace (doorbell exits and general path).
    pub userspace_sends: u64,
    pub smoke_writes: u64,
    /// MMIO accesses to addresses nothing decodes (dropped; reads get ones).
    pub stray_accesses: u64,
    /// Userspace sends whose pending bit was already set.
    pub coalesced: u64,
    /// Userspace sends to a masked port.
    pub masked: u64,
    /// Userspace sends that raised an upcall.
    pub upcalls_raised: u64,
}

impl PlatformStats {
    pub fn count_exit(&self) {
        self.exits.fetch_add(1, Relaxed);
    }

    /// An MMIO access nothing decodes (the platform logs it, rate-limited).
    pub fn count_stray_access(&self) {
        self.stray_accesses.fetch_add(1, Relaxed);
    }

    pub fn count_smoke(&self) {
        self.smoke_writes.fetch_add(1, Relaxed);
    }

    pub fn count_hypercall(&self, nr: u64, cmd: u64) {
        self.hypercalls.fetch_add(1, Relaxed);
        if nr == u64::from(__HYPERVISOR_event_channel_op) && cmd == u64::from(EVTCHNOP_send) {
            self.sends.fetch_add(1, Relaxed);
        }
    }

    pub fn count_send(&self, outcome: Option<Outcome>) {
        if let Some(outcome) = outcome {
            self.outcomes[outcome as usize].fetch_add(1, Relaxed);
        }
    }

    pub fn snapshot(&self) -> PlatformCounts {
        let outcome = |o: Outcome| self.outcomes[o as usize].load(Relaxed);
        PlatformCounts {
            userspace_exits: self.exits.load(Relaxed),
            hypercalls: self.hypercalls.load(Relaxed),
            userspace_sends: self.sends.load(Relaxed),
            smoke_writes: self.smoke_writes.load(Relaxed),
            stray_accesses: self.stray_accesses.load(Relaxed),
            coalesced: outcome(Outcome::Coalesced),
            masked: outcome(Outcome::Masked),
            upcalls_raised: outcome(Outcome::UpcallRaised),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sends_by_outcome() {
        let stats = PlatformStats::default();
        stats.count_exit();
        stats.count_hypercall(u64::from(__HYPERVISOR_event_channel_op), u64::from(EVTCHNOP_send));
        stats.count_hypercall(17, 0);
        stats.count_send(Some(Outcome::Coalesced));
        stats.count_send(Some(Outcome::UpcallRaised));
        stats.count_send(None);
        let s = stats.snapshot();
        assert_eq!((s.userspace_exits, s.hypercalls, s.userspace_sends), (1, 2, 1));
        assert_eq!((s.coalesced, s.masked, s.upcalls_raised), (1, 0, 1));
    }
}
