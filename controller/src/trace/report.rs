//! Turning two snapshots of the tracing maps into a report: rates over the
//! interval, percentiles from log2 histograms. Pure functions.

use std::collections::BTreeMap;

use serde::Serialize;
use xevtchn_common::trace::BUCKETS;

use crate::{
    schema::{Bucket, Percentiles, buckets},
    trace::bpf::{Snapshot, fast_paths::SendOutcomes},
};

/// A log2 latency histogram as printed: its percentiles (upper bounds of
/// the buckets holding them) and its non-empty buckets.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LatencyHistogram {
    /// The counts themselves (bucket b: [2^b, 2^(b+1)) ns), for the live view.
    #[serde(skip)]
    pub counts: [u64; BUCKETS],
    #[serde(flatten)]
    pub percentiles: Percentiles,
    pub buckets: Vec<Bucket>,
}

impl LatencyHistogram {
    pub fn of(counts: [u64; BUCKETS]) -> Self {
        Self { counts, percentiles: Percentiles::of_log2_histogram(&counts), buckets: buckets(&counts) }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VectorRow {
    #[serde(serialize_with = "max_is_null")]
    pub apicid: u32,
    /// u32::MAX (null in JSON): EOIs with no vector in service (kvm_eoi's -1).
    #[serde(serialize_with = "max_is_null")]
    pub vector: u32,
    pub injections: u64,
    pub eois: u64,
    pub injections_per_s: f64,
    pub send_to_inject_ns: LatencyHistogram,
    pub inject_to_eoi_ns: LatencyHistogram,
}

/// u32::MAX marks "none" in the programs' keys (no vector in service; the
/// overflow slot): null in JSON, never a fake number.
fn max_is_null<S: serde::Serializer>(value: &u32, s: S) -> Result<S::Ok, S::Error> {
    if *value == u32::MAX { s.serialize_none() } else { s.serialize_u32(*value) }
}

/// How one vCPU's in-kernel sends ended (xevtchn VMs on the bpf backend).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VcpuRow {
    pub vcpu: u32,
    pub fast_sends_per_s: f64,
    #[serde(flatten)]
    pub outcomes: SendOutcomes,
    /// Injections that announced nothing new (fast sends - raised).
    pub spurious_injections: u64,
}

/// The pid of the row that counts VMs whose tracer slots were all taken.
pub const OVERFLOW_PID: u32 = u32::MAX;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VmRow {
    /// u32::MAX (null in JSON): VMs that found every tracer slot they may
    /// use taken on some CPU, counted together (OVERFLOW_PID).
    #[serde(serialize_with = "max_is_null")]
    pub pid: u32,
    /// Doorbell writes (EVTCHNOP_send on fast ports), and their split by
    /// path: only for xevtchn VMs (null for other VMMs, whose writes there
    /// are MMIO like any other, and for the overflow row).
    pub sends: Option<u64>,
    pub sends_in_kernel: Option<u64>,
    pub sends_to_userspace: Option<u64>,
    /// Of the sends through userspace: answered by an injection in the
    /// same thread (the VMM raised an upcall), or not (it coalesced, was
    /// masked or found an upcall pending: the VMM decided, unseen).
    pub userspace_sends_injected: Option<u64>,
    pub userspace_sends_not_injected: Option<u64>,
    pub sends_per_s: Option<f64>,
    pub userspace_exits: u64,
    pub mmio: u64,
    /// kvm_msi_set_irq events; null unless counted (`--msi`).
    pub msi_set_irq: Option<u64>,
    pub set_irq: u64,
    pub vcpu_wakeups: u64,
    /// kvm_xen_hypercall events (hosts with CONFIG_KVM_XEN only).
    pub xen_hypercalls: u64,
    /// Port I/O (kvm_pio).
    pub pio: u64,
    pub vectors: Vec<VectorRow>,
    /// Per target vCPU, what the fast path decided (empty unless this is
    /// an xevtchn VM on the bpf backend).
    pub fast_path: Vec<VcpuRow>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PortRow {
    pub port: u32,
    pub sends: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Interval {
    pub seconds: f64,
    pub vms: Vec<VmRow>,
    /// Sends per port in the interval (all traced VMs together), busiest first.
    pub ports: Vec<PortRow>,
}

/// What happened between `before` and `now` (cumulative snapshots).
pub fn interval(before: &Snapshot, now: &Snapshot, seconds: f64) -> Interval {
    let per_s = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
    let mut vectors: BTreeMap<u32, Vec<VectorRow>> = BTreeMap::new();
    for (key, counters) in &now.irqs {
        let d = counters.zip_with(&before.irqs.get(key).copied().unwrap_or_default(), u64::wrapping_sub);
        vectors.entry(key.tgid).or_default().push(VectorRow {
            apicid: key.apicid,
            vector: key.vector,
            injections: d.injections,
            eois: d.eois,
            injections_per_s: per_s(d.injections),
            send_to_inject_ns: LatencyHistogram::of(d.send_to_inject),
            inject_to_eoi_ns: LatencyHistogram::of(d.inject_to_eoi),
        });
    }
    let vms = now
        .vms
        .iter()
        // A VM that ended before this interval leaves it (not the totals).
        .filter(|&(pid, counters)| !(now.ended.contains(pid) && before.vms.get(pid) == Some(counters)))
        .map(|(&pid, counters)| {
            let d = counters.zip_with(&before.vms.get(&pid).copied().unwrap_or_default(), u64::wrapping_sub);
            let sends = |n: u64| now.xevtchn.contains(&pid).then_some(n);
            VmRow {
                pid,
                sends: sends(d.sends),
                sends_in_kernel: sends(d.sends.saturating_sub(d.sends_to_userspace)),
                sends_to_userspace: sends(d.sends_to_userspace),
                userspace_sends_injected: sends(d.userspace_sends_injected),
                userspace_sends_not_injected: sends(d.sends_to_userspace.saturating_sub(d.userspace_sends_injected)),
                sends_per_s: now.xevtchn.contains(&pid).then(|| per_s(d.sends)),
                userspace_exits: d.userspace_exits,
                mmio: d.mmio,
                msi_set_irq: now.msis_counted.then_some(d.msi_set_irq),
                set_irq: d.set_irq,
                vcpu_wakeups: d.vcpu_wakeups,
                xen_hypercalls: d.xen_hypercalls,
                pio: d.pio,
                vectors: vectors.remove(&pid).unwrap_or_default(),
                fast_path: fast_path_rows(before, now, pid, per_s),
            }
        })
        .collect();
    let mut ports: Vec<PortRow> = now
        .ports
        .iter()
        .map(|(&port, &n)| PortRow { port, sends: n - before.ports.get(&port).copied().unwrap_or(0) })
        .filter(|p| p.sends > 0)
        .collect();
    ports.sort_by(|a, b| b.sends.cmp(&a.sends).then(a.port.cmp(&b.port)));
    Interval { seconds, vms, ports }
}

fn fast_path_rows(before: &Snapshot, now: &Snapshot, pid: u32, per_s: impl Fn(u64) -> f64) -> Vec<VcpuRow> {
    let Some(vm) = now.fast_paths.get(&pid) else { return Vec::new() };
    vm.vcpus
        .iter()
        .map(|(&vcpu, counts)| {
            let earlier = before.fast_paths.get(&pid).and_then(|b| b.vcpus.get(&vcpu)).copied().unwrap_or_default();
            // Saturating: counts only grow while kept, but an ended VM's go
            // once more than FastPaths keeps have ended.
            let d = counts.zip_with(&earlier, u64::saturating_sub);
            VcpuRow {
                vcpu,
                fast_sends_per_s: per_s(d.fast_sends),
                outcomes: d,
                spurious_injections: d.spurious_injections(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xevtchn_common::trace::{IrqCounters, IrqKey, VmCounters};

    #[test]
    fn an_eoi_with_no_vector_in_service_has_a_null_vector() {
        let latency = LatencyHistogram::of([0; BUCKETS]);
        let row = |vector| VectorRow {
            apicid: 0,
            vector,
            injections: 0,
            eois: 1,
            injections_per_s: 0.0,
            send_to_inject_ns: latency.clone(),
            inject_to_eoi_ns: latency.clone(),
        };
        assert_eq!(serde_json::to_value(row(u32::MAX)).unwrap()["vector"], serde_json::Value::Null);
        assert_eq!(serde_json::to_value(row(0xf3)).unwrap()["vector"], 0xf3);
    }

    #[test]
    fn an_interval_is_the_difference_of_two_snapshots() {
        let key = IrqKey { tgid: 7, apicid: 1, vector: 0xf3, _pad: 0 };
        let mut before = Snapshot::default();
        before.xevtchn.insert(7);
        before.vms.insert(7, VmCounters { sends: 10, sends_to_userspace: 4, ..Default::default() });
        before.irqs.insert(key, IrqCounters { injections: 3, ..Default::default() });
        let mut now = before.clone();
        now.vms.insert(7, VmCounters { sends: 30, sends_to_userspace: 4, ..Default::default() });
        let mut irq = IrqCounters { injections: 13, eois: 10, ..Default::default() };
        irq.inject_to_eoi[12] = 10;
        now.irqs.insert(key, irq);
        let i = interval(&before, &now, 2.0);
        let vm = &i.vms[0];
        assert_eq!((vm.pid, vm.sends, vm.sends_in_kernel, vm.sends_to_userspace), (7, Some(20), Some(20), Some(0)));
        assert!(i.ports.is_empty());
        assert_eq!(vm.sends_per_s, Some(10.0));
        let v = &vm.vectors[0];
        assert_eq!((v.injections, v.eois, v.injections_per_s), (10, 10, 5.0));
        assert_eq!(v.inject_to_eoi_ns.percentiles.p50, Some(8192));
        assert_eq!(v.inject_to_eoi_ns.buckets, [Bucket { upper_ns: 8192, n: 10 }]);
        assert_eq!(v.send_to_inject_ns.percentiles.n, 0);
    }

    #[test]
    fn userspace_sends_split_and_fast_path_rows_are_differences_too() {
        use crate::trace::bpf::FastPathOutcomes;
        let outcomes =
            |fast_sends, raised, coalesced| SendOutcomes { fast_sends, raised, coalesced, ..Default::default() };
        let mut before = Snapshot::default();
        before.xevtchn.insert(9);
        before.vms.insert(
            9,
            VmCounters { sends: 5, sends_to_userspace: 5, userspace_sends_injected: 2, ..Default::default() },
        );
        before.fast_paths.insert(9, FastPathOutcomes { vcpus: [(1, outcomes(100, 10, 90))].into() });
        let mut now = before.clone();
        now.vms.insert(
            9,
            VmCounters {
                sends: 45,
                sends_to_userspace: 15,
                userspace_sends_injected: 6,
                msi_set_irq: 3,
                ..Default::default()
            },
        );
        now.fast_paths.insert(9, FastPathOutcomes { vcpus: [(1, outcomes(130, 15, 115))].into() });
        let vm = interval(&before, &now, 1.0).vms.remove(0);
        assert_eq!(
            (vm.sends_to_userspace, vm.userspace_sends_injected, vm.userspace_sends_not_injected),
            (Some(10), Some(4), Some(6))
        );
        assert_eq!(vm.msi_set_irq, None, "not counted unless asked");
        let row = &vm.fast_path[0];
        assert_eq!((row.vcpu, row.outcomes.fast_sends, row.outcomes.raised, row.spurious_injections), (1, 30, 5, 25));
        assert_eq!(row.fast_sends_per_s, 30.0);
        now.msis_counted = true;
        assert_eq!(interval(&before, &now, 1.0).vms[0].msi_set_irq, Some(3));
        // A VM's fast-path counts may leave the sum (FastPaths keeps so many).
        now.fast_paths.insert(9, FastPathOutcomes { vcpus: [(1, outcomes(20, 1, 19))].into() });
        assert_eq!(interval(&before, &now, 1.0).vms[0].fast_path[0].outcomes.fast_sends, 0);
    }

    #[test]
    fn only_xevtchn_vms_have_sends() {
        let mut before = Snapshot::default();
        before.vms.insert(5, VmCounters { sends: 10, mmio: 10, ..Default::default() });
        let mut now = before.clone();
        now.vms.insert(5, VmCounters { sends: 30, mmio: 30, ..Default::default() });
        let vm = interval(&before, &now, 1.0).vms.remove(0);
        assert_eq!((vm.sends, vm.sends_per_s, vm.mmio), (None, None, 20), "another VMM's MMIO is no send");
        now.xevtchn.insert(5);
        assert_eq!(interval(&before, &now, 1.0).vms[0].sends, Some(20));
    }

    #[test]
    fn an_ended_vm_leaves_the_intervals_and_stays_in_the_totals() {
        let first = Snapshot::default();
        let mut before = Snapshot::default();
        before.vms.insert(5, VmCounters { mmio: 10, ..Default::default() });
        let mut now = before.clone();
        now.ended.insert(5);
        assert!(interval(&before, &now, 1.0).vms.is_empty(), "nothing since it ended");
        assert_eq!(interval(&first, &now, 2.0).vms[0].mmio, 10, "its counts in the totals");
        now.vms.insert(5, VmCounters { mmio: 12, ..Default::default() });
        assert_eq!(interval(&before, &now, 1.0).vms[0].mmio, 2, "its last interval");
    }
}
