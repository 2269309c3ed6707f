//! The report of a run: what `xevtchn run --json` prints.

use anyhow::Result;
use clap::ValueEnum;
use serde::Serialize;
use xevtchn_common::guest_abi::{self, error};

use super::{RunConfig, guest_report, latency};
use crate::{
    bpf::doorbell::DoorbellCounts,
    platform::{stats::PlatformCounts, upcalls::InjectCounts},
    schema::{self, Percentiles},
    vmm::{Vm, VmOutcome},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Every doorbell exits to the vCPU's thread, which sends and injects.
    Userspace,
    /// Doorbells of fast ports complete in the kernel: BPF on kvm_mmio sends,
    /// an ioeventfd + irqfd chain injects.
    Bpf,
    /// bpf when the kernel allows it, else userspace (saying why).
    Auto,
    /// Reference only, no Xen semantics: a bare ioeventfd + irqfd chain
    /// with no event-channel state (the guest runs in bare mode).
    Bare,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// vCPUs 0 and 1 answer each other over IPI ports (one-way latency).
    Pingpong,
    /// Every vCPU but the last sends as fast as it can to the last.
    Flood,
    /// Every vCPU sends to every other.
    Fanout,
    /// Sends to a masked port raise no upcall; the unmask raises exactly one.
    Mask,
    /// Ports move between vCPUs (EVTCHNOP_bind_vcpu) while being sent to.
    Rebind,
    /// vCPU 0 called back through a GSI, then a PCI INTx line.
    Callback,
    /// Invalid hypercalls, ops, ports, vCPUs, vectors and pointers; each errno checked.
    Hostile,
    /// vCPU 0 pings a host userspace backend (eventfd-woken) over an interdomain port.
    Backend,
    /// vCPU 0 fills the port table (alloc_unbound until -ENOSPC), then binds
    /// IPI and interdomain ports at its top (4090-4095) and sends on them.
    Ports,
    /// No Xen: vCPU 0 makes --count MMIO writes, counted by the VMM and by BPF on kvm_mmio.
    Smoke,
    /// vCPUs 0 and 1 play pingpong while the others throw random hypercalls,
    /// MSR accesses and MMIO at the hypervisor (--seed); every answer must
    /// be Xen's, and the pair must lose nothing.
    Fuzz,
}

impl Workload {
    /// The fewest vCPUs the workload can run on.
    pub fn min_vcpus(self) -> u32 {
        match self {
            Self::Hostile | Self::Backend | Self::Smoke => 1,
            Self::Fuzz => 3,
            _ => 2,
        }
    }

    pub fn number(self) -> u32 {
        use guest_abi::workload as w;
        match self {
            Self::Pingpong => w::PINGPONG,
            Self::Flood => w::FLOOD,
            Self::Fanout => w::FANOUT,
            Self::Mask => w::MASK,
            Self::Rebind => w::REBIND,
            Self::Callback => w::CALLBACK,
            Self::Hostile => w::HOSTILE,
            Self::Backend => w::BACKEND,
            Self::Ports => w::PORTS,
            Self::Smoke => w::SMOKE,
            Self::Fuzz => w::FUZZ,
        }
    }
}

/// vCPU 0's callback (the others always use their per-vCPU vector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Callback {
    /// Per-vCPU LAPIC vector (HVMOP_set_evtchn_upcall_vector).
    Vector,
    /// HVM_PARAM_CALLBACK_IRQ: a GSI, level-triggered.
    Gsi,
    /// HVM_PARAM_CALLBACK_IRQ: a PCI INTx line.
    Intx,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// schema::RUN.
    pub schema: &'static str,
    pub backend: Backend,
    pub workload: Workload,
    pub vcpus: u32,
    pub callback: Callback,
    /// EVTCHNOP_send calls the guest made.
    pub sent: u64,
    /// Events the guest consumed with a new sequence number.
    pub delivered: u64,
    /// Sends whose port was already pending (counted by the host).
    pub coalesced: u64,
    /// Sends to a masked port (counted by the host).
    pub masked: u64,
    /// Upcalls that found nothing pending (counted by the guest).
    pub spurious_upcalls: u64,
    /// Events sent to an unmasked port that the guest never consumed.
    pub lost: u64,
    /// Protocol violations the guest detected.
    pub errors: u64,
    /// What the first one was, if any.
    pub first_error: Option<String>,
    /// Exits handled by the VMM's vCPU threads.
    pub userspace_exits: u64,
    /// Time of the workload's run phase (guest TSC), set-up excluded.
    pub duration_s: f64,
    pub sends_per_s: f64,
    /// One-way latency, send to the target's upcall handler (guest TSC).
    pub latency_ns: Percentiles,
    /// Upcall handler runs, and consumptions of an already-seen send.
    pub upcalls: u64,
    pub stale: u64,
    pub guest_status: u32,
    /// Sends completed in the kernel (BPF), and sends done in userspace.
    pub fast_sends: u64,
    pub fallback_sends: u64,
    /// Sends that neither path accounts for: `sent` against `fast_sends +
    /// fallback_sends`, beyond the sends a port being armed may have seen
    /// twice (`bpf.unarmed_sends`). Not 0: the program missed doorbells
    /// that KVM completed, or saw writes that were not this guest's sends.
    /// Always 0 on the bare chain, which counts nothing.
    pub unaccounted_sends: u64,
    /// Where fast sends are served: "embedded" (this process's own BPF
    /// program), or "none" (every send in userspace).
    pub fast_path: &'static str,
    /// Why the bpf backend was asked for and not used (the canary's verdict).
    pub fast_path_unavailable: Option<String>,
    /// What stopped the run before its count or duration ("SIGINT",
    /// "SIGTERM", "q"): the guest stopped sending and reported as usual.
    pub stopped_by: Option<&'static str>,
    /// Ports moved by EVTCHNOP_bind_vcpu (rebind workload), and per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moves: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moves_per_s: Option<f64>,
    /// Mean time the moving vCPU spent in one EVTCHNOP_bind_vcpu (guest TSC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub move_mean_ns: Option<u64>,
    /// Fuzz workload: its seed (`--seed` replays the run), the calls and
    /// accesses its fuzzing vCPUs made, the hypercalls among them that
    /// succeeded, and the MSR accesses refused with #GP (from which the
    /// guest recovered). Null for other workloads.
    pub seed: Option<u64>,
    pub fuzz_calls: Option<u64>,
    pub fuzz_accepted_calls: Option<u64>,
    pub fuzz_refused_msrs: Option<u64>,
    pub host: PlatformCounts,
    /// The doorbell program's counters (backend bpf).
    pub bpf: Option<DoorbellCounts>,
    /// How the VMM itself raised upcalls.
    pub injections: InjectCounts,
    /// KVM's own per-vCPU statistics (KVM_GET_STATS_FD), summed over vCPUs.
    pub kvm: std::collections::BTreeMap<String, u64>,
    /// Every latency sample in nanoseconds, for distributions (not printed).
    #[serde(skip)]
    pub latency_samples_ns: Vec<u64>,
}

impl RunReport {
    /// The run is clean: nothing lost, no errors, the guest exited with 0,
    /// and every send accounted for by one path.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.errors == 0 && self.guest_status == 0 && self.unaccounted_sends == 0
    }
}

pub fn build(
    config: &RunConfig,
    backend: Backend,
    vm: &Vm,
    outcome: &VmOutcome,
    host: &PlatformCounts,
    bpf: Option<DoorbellCounts>,
    injections: InjectCounts,
) -> Result<RunReport> {
    let mut reports = Vec::new();
    let mut samples = Vec::new();
    for vcpu in 0..vm.vcpus() {
        let r = guest_report::read_report(vm.ram(), vcpu)?;
        samples.extend(guest_report::read_samples(vm.ram(), vcpu, r.samples)?);
        reports.push(r);
    }
    let sum = |f: fn(&guest_abi::VcpuReport) -> u64| reports.iter().map(f).sum::<u64>();
    let start = reports.iter().map(|r| r.play_start_tsc).filter(|&t| t != 0).min().unwrap_or(0);
    let end = reports.iter().map(|r| r.play_end_tsc).max().unwrap_or(0);
    let duration_s = end.saturating_sub(start) as f64 / (f64::from(vm.tsc_khz()) * 1000.0);
    let sent = sum(|r| r.sent);
    let first_error = first_error(outcome.status, &reports);
    let mut errors = sum(|r| r.errors);
    if outcome.status != 0 && errors == 0 {
        // The guest failed outside any counted check (an exception, a set-up failure).
        errors = 1;
    }
    let latency_samples_ns: Vec<u64> = samples.iter().map(|&t| latency::ticks_to_ns(t, vm.tsc_khz())).collect();
    Ok(RunReport {
        schema: schema::RUN,
        backend,
        workload: config.workload,
        vcpus: config.vcpus,
        // The callback workload starts on a GSI (then switches to PCI INTx).
        callback: if config.workload == Workload::Callback { Callback::Gsi } else { config.callback },
        sent,
        delivered: sum(|r| r.delivered),
        coalesced: host.coalesced + bpf.map_or(0, |b| b.coalesced),
        masked: host.masked + bpf.map_or(0, |b| b.masked),
        spurious_upcalls: sum(|r| r.spurious_upcalls),
        lost: sum(|r| r.lost),
        errors,
        first_error,
        userspace_exits: host.userspace_exits,
        duration_s,
        sends_per_s: if duration_s > 0.0 { sent as f64 / duration_s } else { 0.0 },
        latency_ns: Percentiles::of_samples(latency_samples_ns.clone()),
        latency_samples_ns,
        upcalls: sum(|r| r.upcalls),
        stale: sum(|r| r.stale),
        guest_status: outcome.status,
        fast_sends: bpf.map_or(0, |b| b.fast_sends),
        fallback_sends: host.userspace_sends,
        unaccounted_sends: if backend == Backend::Bare { 0 } else { unaccounted(sent, host.userspace_sends, bpf) },
        fast_path: if bpf.is_some() { "embedded" } else { "none" },
        fast_path_unavailable: None,
        stopped_by: None,
        moves: (config.workload == Workload::Rebind).then(|| sum(|r| r.moves)),
        moves_per_s: (config.workload == Workload::Rebind)
            .then(|| if duration_s > 0.0 { sum(|r| r.moves) as f64 / duration_s } else { 0.0 }),
        move_mean_ns: (config.workload == Workload::Rebind && sum(|r| r.moves) > 0)
            .then(|| latency::ticks_to_ns(sum(|r| r.move_tsc) / sum(|r| r.moves).max(1), vm.tsc_khz())),
        seed: config.seed,
        fuzz_calls: (config.workload == Workload::Fuzz).then(|| sum(|r| r.fuzz_calls)),
        fuzz_accepted_calls: (config.workload == Workload::Fuzz).then(|| sum(|r| r.fuzz_accepted)),
        fuzz_refused_msrs: (config.workload == Workload::Fuzz).then(|| sum(|r| r.fuzz_faults)),
        host: *host,
        bpf,
        injections,
        kvm: vm.kvm_counters(),
    })
}

/// Sends not accounted for by exactly one path (see `RunReport`).
fn unaccounted(sent: u64, userspace: u64, bpf: Option<DoorbellCounts>) -> u64 {
    let fast = bpf.map_or(0, |b| b.fast_sends);
    let may_double = bpf.map_or(0, |b| b.unarmed_sends);
    let seen = fast + userspace;
    if seen < sent { sent - seen } else { (seen - sent).saturating_sub(may_double) }
}

/// The first error a vCPU recorded, else what the exit status says.
fn first_error(status: u32, reports: &[guest_abi::VcpuReport]) -> Option<String> {
    if let Some(code) = reports.iter().map(|r| r.first_error as u32).find(|&c| c != 0) {
        return Some(describe(code));
    }
    if status & error::EXIT_ERROR != 0 {
        return Some(describe(status & !error::EXIT_ERROR));
    }
    if status & error::EXIT_EXCEPTION != 0 {
        let rip = reports.iter().map(|r| r.fault_rip).find(|&r| r != 0).unwrap_or(0);
        return Some(format!("guest exception {} at rip {rip:#x}", status & 0xff));
    }
    None
}

fn describe(code: u32) -> String {
    let op = code >> 16;
    if op != 0 {
        format!("{} (operation {op}, Xen errno {})", error::describe(code), code & 0xffff)
    } else {
        error::describe(code).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_send_is_accounted_for_by_one_path() {
        let bpf = |fast_sends, unarmed_sends| Some(DoorbellCounts { fast_sends, unarmed_sends, ..Default::default() });
        assert_eq!(unaccounted(100, 100, None), 0, "userspace: every send exited");
        assert_eq!(unaccounted(100, 10, bpf(90, 0)), 0);
        assert_eq!(unaccounted(100, 10, bpf(80, 0)), 10, "doorbells nobody saw");
        assert_eq!(unaccounted(100, 12, bpf(90, 0)), 2, "writes that were not sends");
        assert_eq!(unaccounted(100, 12, bpf(90, 2)), 0, "two sends on a port being armed, seen twice");
    }
}
