//! The in-kernel send path: the `kvm_mmio_doorbell` program and its maps.

use std::os::fd::{AsFd, AsRawFd};

use aya::{
    Ebpf,
    maps::{Array, Map, MapData, PerCpuArray},
};
use xevtchn_common::{
    two_level::{OUTCOME_COUNT, Outcome},
    wire::{DoorbellConfig, PortEntry, doorbell_stat},
};

use super::{BpfError, load};
use crate::platform::shared_info::SharedInfoPage;

pub(crate) const PROGRAM: &str = "kvm_mmio_doorbell";
pub(crate) const CONFIG: &str = "DOORBELL_CONFIG";
/// Per target vCPU and outcome (read by `xevtchn trace`).
pub(crate) const VCPU_STATS: &str = "DOORBELL_VCPU_STATS";
const PORTS: &str = "DOORBELL_PORTS";
const SHARED_INFO: &str = "SHARED_INFO";
const STATS: &str = "DOORBELL_STATS";

/// What the program counted, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DoorbellCounts {
    /// Sends completed in the kernel.
    pub fast_sends: u64,
    pub coalesced: u64,
    pub masked: u64,
    pub upcalls_raised: u64,
    /// Sends that found the target's upcall already pending or its
    /// selector set: the irqfd injects anyway, a spurious upcall.
    pub spurious_injections: u64,
    /// Doorbell writes to ports not marked fast (left to userspace).
    pub not_fast: u64,
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

pub struct DoorbellPath {
    ports: Array<MapData, PortEntry>,
    config: Array<MapData, DoorbellConfig>,
    stats: PerCpuArray<MapData, u64>,
    shared_info: MapData,
    // Keeps the program attached for as long as the path exists.
    _ebpf: Ebpf,
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, BpfError> {
    ebpf.take_map(name).ok_or(BpfError::NoMap(name))
}

impl DoorbellPath {
    /// Loads the program and attaches it to `kvm:kvm_mmio`, serving the
    /// doorbells of process `tgid` (disabled until `enable`).
    pub fn attach(tgid: u32, tasks: &tokio::runtime::Handle) -> Result<Self, BpfError> {
        let mut ebpf = load::load_object()?;
        forward_logs(&mut ebpf, tasks);
        let mut config: Array<MapData, DoorbellConfig> =
            Array::try_from(take(&mut ebpf, CONFIG)?).map_err(BpfError::map(CONFIG))?;
        config.set(0, &DoorbellConfig { tgid, ..Default::default() }, 0).map_err(BpfError::map(CONFIG))?;
        let ports = Array::try_from(take(&mut ebpf, PORTS)?).map_err(BpfError::map(PORTS))?;
        let stats = PerCpuArray::try_from(take(&mut ebpf, STATS)?).map_err(BpfError::map(STATS))?;
        let shared_info = match take(&mut ebpf, SHARED_INFO)? {
            Map::Array(data) => data,
            _ => return Err(BpfError::NoMap(SHARED_INFO)),
        };
        load::attach_raw_tracepoint(&mut ebpf, PROGRAM, "kvm_mmio")?;
        Ok(Self { ports, config, stats, shared_info, _ebpf: ebpf })
    }

    /// The map's page, mapped here, to be mapped into the guest too.
    pub fn shared_info_page(&self) -> std::io::Result<SharedInfoPage> {
        SharedInfoPage::map_shared(self.shared_info.fd().as_fd().as_raw_fd())
    }

    /// Starts serving doorbells of ports below `fast_ports`.
    pub fn enable(&mut self, tgid: u32, fast_ports: u32, doorbell_base: u64) -> Result<(), BpfError> {
        let config = DoorbellConfig { tgid, fast_ports, doorbell_base, enabled: 1, _pad: 0 };
        self.config.set(0, &config, 0).map_err(BpfError::map(CONFIG))
    }

    pub fn set_port(&mut self, port: u32, entry: PortEntry) -> Result<(), BpfError> {
        self.ports.set(port, &entry, 0).map_err(BpfError::map(PORTS))
    }

    pub fn counts(&self) -> Result<DoorbellCounts, BpfError> {
        let stat = |index: u32| -> Result<u64, BpfError> {
            Ok(self.stats.get(&index, 0).map_err(BpfError::map(STATS))?.iter().sum())
        };
        let mut by_outcome = [0u64; OUTCOME_COUNT];
        for (outcome, count) in by_outcome.iter_mut().enumerate() {
            *count = stat(outcome as u32)?;
        }
        let outcomes = SendOutcomes::from_counts(&by_outcome);
        Ok(DoorbellCounts {
            fast_sends: stat(doorbell_stat::FAST_SENDS)?,
            coalesced: outcomes.coalesced,
            masked: outcomes.masked,
            upcalls_raised: outcomes.raised,
            spurious_injections: outcomes.already_pending,
            not_fast: stat(doorbell_stat::NOT_FAST)?,
        })
    }
}

/// Forwards the program's aya-log records (diagnostics off the hot path)
/// to the controller's logger, from a Tokio task.
fn forward_logs(ebpf: &mut Ebpf, tasks: &tokio::runtime::Handle) {
    let logger = match aya_log::EbpfLogger::init(ebpf) {
        Ok(logger) => logger,
        Err(e) => {
            log::debug!("no BPF log forwarding: {e}");
            return;
        }
    };
    let _entered = tasks.enter();
    // SAFETY: the logger owns its ring buffer's fd and flushing neither
    // closes nor replaces it, as AsyncFd::register_with_interest requires.
    let registered = unsafe { tokio::io::unix::AsyncFd::register_with_interest(logger, tokio::io::Interest::READABLE) };
    match registered {
        Ok(mut logger) => {
            tasks.spawn(async move {
                while let Ok(mut ready) = logger.readable_mut().await {
                    ready.get_inner_mut().flush();
                    ready.clear_ready();
                }
            });
        }
        Err(e) => log::warn!("BPF log forwarding unavailable: {e}"),
    }
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
}
