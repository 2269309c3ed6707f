//! What the service knows of its VMs, and its OpenMetrics (Prometheus
//! text) rendering, for the fleet's monitoring to scrape: per VM, sends by
//! path (in the kernel, by outcome; in the VMM) and upcalls; registrations
//! and canary failures. In-kernel counts come from the VMs' counter maps at
//! each scrape (the VMM cannot write them); the VMM's own come from its
//! progress reports.

use std::{collections::BTreeMap, fmt::Write};

use super::protocol::Progress;
use crate::bpf::doorbell::SendOutcomes;

/// In-kernel counts of one VM (from its counter map).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounts {
    pub outcomes: SendOutcomes,
    pub bad_writes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct VmRecord {
    pub vcpus: u32,
    pub progress: Progress,
    /// Frozen when the VM ends (its map goes).
    pub kernel: KernelCounts,
    pub ended: bool,
    canary_failed: bool,
}

/// Ended VMs kept for scrapes after their end; beyond, the oldest go.
const ENDED_KEPT: usize = 256;

#[derive(Debug, Default)]
pub struct Records {
    pub registrations: u64,
    pub canary_failures: u64,
    /// By the VMM's host tgid, in registration order within a pid.
    pub vms: BTreeMap<u32, VmRecord>,
    ended_order: std::collections::VecDeque<u32>,
}

impl Records {
    pub fn registered(&mut self, pid: u32, vcpus: u32) {
        self.registrations += 1;
        self.vms.insert(pid, VmRecord { vcpus, ..VmRecord::default() });
    }

    pub fn progress(&mut self, pid: u32, progress: Progress) {
        if let Some(vm) = self.vms.get_mut(&pid) {
            if !progress.canary_passed && !vm.canary_failed {
                vm.canary_failed = true;
                self.canary_failures += 1;
            }
            vm.progress = progress;
        }
    }

    pub fn ended(&mut self, pid: u32, kernel: KernelCounts) {
        if let Some(vm) = self.vms.get_mut(&pid) {
            vm.kernel = kernel;
            vm.ended = true;
            self.ended_order.push_back(pid);
        }
        while self.ended_order.len() > ENDED_KEPT {
            if let Some(old) = self.ended_order.pop_front()
                && self.vms.get(&old).is_some_and(|vm| vm.ended)
            {
                self.vms.remove(&old);
            }
        }
    }
}

/// The OpenMetrics text of `records`, live VMs' kernel counts from `live`.
pub fn render(records: &Records, live: impl Fn(u32) -> Option<KernelCounts>) -> String {
    let mut out = String::new();
    let live_vms = records.vms.values().filter(|vm| !vm.ended).count() as u64;
    let counts: Vec<(u32, &VmRecord, KernelCounts)> = records
        .vms
        .iter()
        .map(|(&pid, vm)| (pid, vm, if vm.ended { vm.kernel } else { live(pid).unwrap_or(vm.kernel) }))
        .collect();
    let labels = |pid: u32, more: &str| format!("{{pid=\"{pid}\"{more}}}");
    family(
        &mut out,
        "xevtchn_registrations",
        "counter",
        "VMs registered since the service started.",
        [(String::new(), records.registrations)],
    );
    family(
        &mut out,
        "xevtchn_canary_failures",
        "counter",
        "VMs whose canary failed (delivered in userspace).",
        [(String::new(), records.canary_failures)],
    );
    family(&mut out, "xevtchn_vms", "gauge", "VMs registered now.", [(String::new(), live_vms)]);
    let sends = counts.iter().flat_map(|&(pid, vm, k)| {
        let o = k.outcomes;
        [("raised", o.raised), ("coalesced", o.coalesced), ("masked", o.masked), ("already_pending", o.already_pending)]
            .map(|(outcome, n)| (labels(pid, &format!(",path=\"kernel\",outcome=\"{outcome}\"")), n))
            .into_iter()
            .chain([(labels(pid, ",path=\"userspace\",outcome=\"any\""), vm.progress.userspace_sends)])
    });
    family(
        &mut out,
        "xevtchn_sends",
        "counter",
        "Event-channel sends per VM: in the kernel by outcome, or in the VMM (fallback).",
        sends,
    );
    let upcalls = counts.iter().flat_map(|&(pid, vm, k)| {
        [
            (labels(pid, ",path=\"kernel\""), k.outcomes.raised),
            (labels(pid, ",path=\"userspace\""), vm.progress.userspace_upcalls),
        ]
    });
    family(
        &mut out,
        "xevtchn_upcalls",
        "counter",
        "Upcalls raised per VM (evtchn_upcall_pending 0 -> 1), by path.",
        upcalls,
    );
    let bad = counts.iter().map(|&(pid, _, k)| (labels(pid, ""), k.bad_writes));
    family(
        &mut out,
        "xevtchn_bad_doorbell_writes",
        "counter",
        "Writes in a VM's doorbell window that were no doorbell.",
        bad,
    );
    let vcpus = counts.iter().map(|&(pid, vm, _)| (labels(pid, ""), u64::from(vm.vcpus)));
    family(&mut out, "xevtchn_vcpus", "gauge", "vCPUs of each VM.", vcpus);
    out.push_str("# EOF\n");
    out
}

/// One metric family: its TYPE and HELP lines, then its samples (labels,
/// value); counters' samples are named with `_total`.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, u64)>) {
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "# HELP {name} {help}");
    let suffix = if kind == "counter" { "_total" } else { "" };
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{suffix}{labels} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_typed_and_the_text_ends_with_eof() {
        let mut r = Records::default();
        r.registered(7, 2);
        r.progress(7, Progress { userspace_sends: 5, userspace_upcalls: 2, canary_passed: true });
        let text = render(&r, |_| {
            Some(KernelCounts {
                outcomes: SendOutcomes { fast_sends: 10, raised: 3, coalesced: 7, ..Default::default() },
                bad_writes: 1,
            })
        });
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("xevtchn_sends_total{pid=\"7\",path=\"kernel\",outcome=\"coalesced\"} 7\n"));
        assert!(text.contains("xevtchn_sends_total{pid=\"7\",path=\"userspace\",outcome=\"any\"} 5\n"));
        assert!(text.contains("xevtchn_vms 1\n") && text.contains("xevtchn_registrations_total 1\n"));
        for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = family.split_whitespace().next().unwrap();
            assert!(text.lines().any(|l| l.starts_with(name) && !l.starts_with('#')), "{name} has samples");
        }
    }

    #[test]
    fn a_failed_canary_is_counted_once_and_ended_vms_keep_their_last_counts() {
        let mut r = Records::default();
        r.registered(9, 1);
        r.progress(9, Progress { canary_passed: false, ..Progress::default() });
        r.progress(9, Progress { canary_passed: false, userspace_sends: 4, ..Progress::default() });
        assert_eq!(r.canary_failures, 1);
        let frozen = KernelCounts { bad_writes: 2, ..KernelCounts::default() };
        r.ended(9, frozen);
        let text = render(&r, |_| None);
        assert!(text.contains("xevtchn_bad_doorbell_writes_total{pid=\"9\"} 2\n"));
        assert!(text.contains("xevtchn_vms 0\n"));
    }
}
