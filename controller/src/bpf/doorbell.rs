//! The in-kernel send path: the `kvm_mmio_doorbell` program and its maps
//! (layouts in `xevtchn_common::doorbell`).

use std::{
    os::fd::{AsFd, AsRawFd, OwnedFd},
    sync::atomic::Ordering::SeqCst,
    time::{Duration, Instant},
};

use xevtchn_common::{
    doorbell::{CpuActivity, PortEntry, VmState, VmStats, stat},
    two_level::{NR_PORTS, OUTCOME_COUNT, Outcome, SHARED_INFO_VCPUS},
};

use super::{
    BpfError,
    doorbell_host::{DoorbellHost, VmMaps},
    mapped::{MappedWords, ReadOnlyArray},
};
use crate::{
    platform::shared_info::SharedInfoPage,
    service::{client::Registration, protocol::Progress},
};

/// What the program counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DoorbellCounts {
    /// Sends completed in the kernel.
    pub fast_sends: u64,
    pub coalesced: u64,
    pub masked: u64,
    pub upcalls_raised: u64,
    /// Sends that found the target's selector bit or upcall already pending.
    pub already_pending: u64,
    /// Injections that announced nothing new: every fast send injects,
    /// and only `upcalls_raised` of them were needed.
    pub spurious_injections: u64,
    /// Doorbell writes to ports not served in the kernel (left to userspace).
    pub not_fast: u64,
    /// Writes in the doorbell window that are no doorbell (left to userspace).
    pub bad_writes: u64,
    /// Sends handled while the port's ioeventfd was being registered (such
    /// a write may also have exited to userspace and been sent again).
    pub unarmed_sends: u64,
    /// Canary doorbells seen (the start-up check: 1).
    pub canary: u64,
}

/// How fast sends ended, from the program's counts per `Outcome`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SendOutcomes {
    /// Sends completed in the kernel (each one's irqfd injected the vector).
    pub fast_sends: u64,
    /// Sends that raised the upcall (evtchn_upcall_pending went 0 -> 1).
    pub raised: u64,
    /// Sends to a port already pending.
    pub coalesced: u64,
    /// Sends to a masked port.
    pub masked: u64,
    /// Sends whose selector bit or upcall was already pending.
    pub already_pending: u64,
}

impl SendOutcomes {
    /// From counts indexed by `Outcome` (each fast send has one).
    pub fn from_counts(by_outcome: &[u64; OUTCOME_COUNT]) -> Self {
        let n = |o: Outcome| by_outcome[o as usize];
        Self {
            fast_sends: by_outcome.iter().sum(),
            raised: n(Outcome::UpcallRaised),
            coalesced: n(Outcome::Coalesced),
            masked: n(Outcome::Masked),
            already_pending: n(Outcome::SelectorAlreadySet) + n(Outcome::UpcallAlreadyPending),
        }
    }

    /// From the program's counter words, vCPU `vcpu`'s line.
    pub fn of_vcpu(word: impl Fn(u32) -> u64, vcpu: u32) -> Self {
        let mut by_outcome = [0u64; OUTCOME_COUNT];
        for (outcome, count) in by_outcome.iter_mut().enumerate().take(stat::LINE_WORDS as usize) {
            *count = word((1 + vcpu) * stat::LINE_WORDS + outcome as u32);
        }
        Self::from_counts(&by_outcome)
    }

    /// Injections that announced nothing new: every fast send injects, and
    /// only the raised ones were needed. Harmless (the guest finds nothing
    /// or merges them), but each costs the target an interrupt.
    pub fn spurious_injections(&self) -> u64 {
        self.fast_sends.saturating_sub(self.raised)
    }

    pub fn zip_with(&self, other: &Self, f: impl Fn(u64, u64) -> u64) -> Self {
        Self {
            fast_sends: f(self.fast_sends, other.fast_sends),
            raised: f(self.raised, other.raised),
            coalesced: f(self.coalesced, other.coalesced),
            masked: f(self.masked, other.masked),
            already_pending: f(self.already_pending, other.already_pending),
        }
    }
}

/// A VM's side of the in-kernel send path: its maps, mapped here (its
/// state read-write, its counters and the host's activity counts
/// read-only), and whoever serves it.
pub struct DoorbellPath {
    state: MappedWords,
    stats: ReadOnlyArray,
    active: ReadOnlyArray,
    state_fd: OwnedFd,
    vcpus: u32,
    server: Server,
}

/// Who keeps the program attached and the VM registered.
enum Server {
    /// This process: its own program, for its own VM.
    Embedded { host: Box<DoorbellHost>, host_tgid: u32 },
    /// The host's `xevtchn serve`, for as long as the registration is held.
    Service { registration: Registration },
    /// Nobody any more (the canary failed; the VM is unregistered).
    Stopped,
}

/// Words of `VmState` before the port entries.
const PORTS_WORD: usize = std::mem::offset_of!(VmState, ports) / 8;

impl DoorbellPath {
    /// Serves this process's VM of `vcpus` vCPUs with a program of its own
    /// (no service): loads and attaches it, and registers this process.
    pub fn embedded(vcpus: u32, tasks: &tokio::runtime::Handle) -> Result<Self, BpfError> {
        let mut host = DoorbellHost::start(tasks)?;
        let host_tgid = host.whoami()?;
        let maps = host.register(host_tgid)?;
        Self::from_maps(maps, host.cpus(), vcpus, Server::Embedded { host: Box::new(host), host_tgid })
    }

    /// Serves this process's VM with the host's service: the maps its
    /// registration handed over (see `service::client`).
    pub fn from_service(registration: Registration, maps: VmMaps, cpus: u32, vcpus: u32) -> Result<Self, BpfError> {
        Self::from_maps(maps, cpus, vcpus, Server::Service { registration })
    }

    fn from_maps(maps: VmMaps, cpus: u32, vcpus: u32, server: Server) -> Result<Self, BpfError> {
        let state = MappedWords::map(maps.state.as_fd(), size_of::<VmState>())
            .map_err(|source| BpfError::Mmap { map: "VM state", source })?;
        Ok(Self {
            state,
            stats: ReadOnlyArray::new(maps.stats, size_of::<VmStats>(), 1),
            active: ReadOnlyArray::new(maps.active, size_of::<CpuActivity>(), cpus),
            state_fd: maps.state,
            vcpus,
            server,
        })
    }

    /// Where the program runs: "embedded" (this process) or "service".
    pub fn kind(&self) -> &'static str {
        match self.server {
            Server::Embedded { .. } | Server::Stopped => "embedded",
            Server::Service { .. } => "service",
        }
    }

    /// The state map's first page (shared_info), mapped here, to be mapped
    /// into the guest too.
    pub fn shared_info_page(&self) -> std::io::Result<SharedInfoPage> {
        SharedInfoPage::map_shared(self.state_fd.as_raw_fd())
    }

    /// Tells the service (if one serves this VM) what only the VMM counts.
    pub fn report(&self, progress: &Progress) {
        if let Server::Service { registration } = &self.server {
            registration.report(progress);
        }
    }

    /// Stops serving this VM's doorbells (the canary failed).
    pub fn stop(&mut self) {
        if let Server::Embedded { host, host_tgid } = &mut self.server {
            host.unregister(*host_tgid);
        }
        self.server = Server::Stopped;
    }

    /// Stores `port`'s entry; the program's next load sees it whole.
    pub fn set_port(&self, port: u32, entry: PortEntry) {
        if (port as usize) < NR_PORTS as usize
            && let Some(word) = self.state.word(PORTS_WORD + port as usize)
        {
            word.store(entry.0, SeqCst);
        }
    }

    /// Waits until no program that may have read a replaced entry still
    /// runs: each CPU that was inside the program (odd count) has left it.
    /// Programs run with preemption off and take about a microsecond.
    pub fn grace_period(&self) {
        let before = words(&self.active, size_of::<CpuActivity>());
        let start = Instant::now();
        loop {
            let now = words(&self.active, size_of::<CpuActivity>());
            let inside = before.iter().zip(&now).any(|(&was, &is)| was % 2 == 1 && was == is);
            if !inside {
                return;
            }
            if start.elapsed() > Duration::from_millis(1) {
                std::thread::yield_now();
            }
        }
    }

    pub fn counts(&self) -> DoorbellCounts {
        let words = words(&self.stats, 8);
        let stat = |index: u32| words.get(index as usize).copied().unwrap_or(0);
        let outcomes = (0..self.vcpus.min(SHARED_INFO_VCPUS))
            .map(|v| SendOutcomes::of_vcpu(stat, v))
            .fold(SendOutcomes::default(), |a, b| a.zip_with(&b, u64::wrapping_add));
        DoorbellCounts {
            fast_sends: outcomes.fast_sends,
            coalesced: outcomes.coalesced,
            masked: outcomes.masked,
            upcalls_raised: outcomes.raised,
            already_pending: outcomes.already_pending,
            spurious_injections: outcomes.spurious_injections(),
            not_fast: stat(stat::NOT_FAST),
            bad_writes: stat(stat::BAD_WRITE),
            unarmed_sends: stat(stat::UNARMED),
            canary: stat(stat::CANARY),
        }
    }
}

/// The first u64 of every `stride` bytes of `array`'s values (empty if
/// it cannot be read).
fn words(array: &ReadOnlyArray, stride: usize) -> Vec<u64> {
    let bytes = array.read().unwrap_or_default();
    bytes.chunks_exact(stride).map(|c| u64::from_ne_bytes(c[..8].try_into().unwrap_or_default())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spurious_injections_are_the_sends_that_raised_nothing() {
        let o = SendOutcomes { fast_sends: 10, raised: 3, coalesced: 6, masked: 1, already_pending: 0 };
        assert_eq!(o.spurious_injections(), 7);
        assert_eq!(o.zip_with(&o, u64::saturating_sub), SendOutcomes::default());
    }

    #[test]
    fn a_vcpus_outcomes_come_from_its_own_line() {
        let word = |i: u32| if i / stat::LINE_WORDS == 2 { u64::from(i % stat::LINE_WORDS) } else { 100 };
        let o = SendOutcomes::of_vcpu(word, 1);
        assert_eq!(o.raised, Outcome::UpcallRaised as u64);
        assert_eq!(o.coalesced, Outcome::Coalesced as u64);
        assert_eq!(o.fast_sends, (0..stat::LINE_WORDS as u64).sum::<u64>());
    }
}
