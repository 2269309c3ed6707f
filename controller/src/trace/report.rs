//! Turning two snapshots of the tracing maps into a report: rates over the
//! interval, percentiles from log2 histograms. Pure functions.

use std::collections::BTreeMap;

use serde::Serialize;
use xevtchn_common::trace::{BUCKETS, IrqCounters, VmCounters};

use crate::bpf::trace::Snapshot;

/// A percentile from a log2 histogram: the upper bound of the bucket that
/// holds it (bucket b covers [2^b, 2^(b+1)) ns). None without samples.
pub fn histogram_percentile(histogram: &[u64; BUCKETS], p: f64) -> Option<u64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (b, &n) in histogram.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(1u64 << (b + 1).min(63));
        }
    }
    None
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub samples: u64,
    /// Upper bounds of the log2 buckets holding p50 and p99, in ns.
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
}

fn latency(h: &[u64; BUCKETS]) -> Latency {
    Latency { samples: h.iter().sum(), p50_ns: histogram_percentile(h, 50.0), p99_ns: histogram_percentile(h, 99.0) }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VectorRow {
    /// The histograms themselves, for the live view.
    #[serde(skip)]
    pub send_to_inject_histogram: [u64; BUCKETS],
    #[serde(skip)]
    pub inject_to_eoi_histogram: [u64; BUCKETS],
    pub apicid: u32,
    pub vector: u32,
    pub injections: u64,
    pub eois: u64,
    pub injections_per_s: f64,
    pub send_to_inject: Latency,
    pub inject_to_eoi: Latency,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VmRow {
    pub pid: u32,
    /// Doorbell writes (EVTCHNOP_send on fast ports), and their split by path.
    pub sends: u64,
    pub sends_in_kernel: u64,
    pub sends_to_userspace: u64,
    pub sends_per_s: f64,
    pub userspace_exits: u64,
    pub mmio: u64,
    pub msi_set_irq: u64,
    pub set_irq: u64,
    pub vcpu_wakeups: u64,
    /// kvm_xen_hypercall events (hosts with CONFIG_KVM_XEN only).
    pub xen_hypercalls: u64,
    /// Port I/O (kvm_pio).
    pub pio: u64,
    pub vectors: Vec<VectorRow>,
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

fn diff_vm(now: &VmCounters, before: Option<&VmCounters>) -> VmCounters {
    let b = before.copied().unwrap_or_default();
    VmCounters {
        mmio: now.mmio - b.mmio,
        sends: now.sends - b.sends,
        sends_to_userspace: now.sends_to_userspace - b.sends_to_userspace,
        userspace_exits: now.userspace_exits - b.userspace_exits,
        msi_set_irq: now.msi_set_irq - b.msi_set_irq,
        set_irq: now.set_irq - b.set_irq,
        vcpu_wakeups: now.vcpu_wakeups - b.vcpu_wakeups,
        xen_hypercalls: now.xen_hypercalls - b.xen_hypercalls,
        pio: now.pio - b.pio,
    }
}

fn diff_irq(now: &IrqCounters, before: Option<&IrqCounters>) -> IrqCounters {
    let b = before.copied().unwrap_or_default();
    let mut d = IrqCounters { injections: now.injections - b.injections, eois: now.eois - b.eois, ..*now };
    for i in 0..BUCKETS {
        d.send_to_inject[i] = now.send_to_inject[i] - b.send_to_inject[i];
        d.inject_to_eoi[i] = now.inject_to_eoi[i] - b.inject_to_eoi[i];
    }
    d
}

/// What happened between `before` and `now` (cumulative snapshots).
pub fn interval(before: &Snapshot, now: &Snapshot, seconds: f64) -> Interval {
    let per_s = |n: u64| if seconds > 0.0 { n as f64 / seconds } else { 0.0 };
    let mut vectors: BTreeMap<u32, Vec<VectorRow>> = BTreeMap::new();
    for (key, counters) in &now.irqs {
        let d = diff_irq(counters, before.irqs.get(key));
        vectors.entry(key.tgid).or_default().push(VectorRow {
            send_to_inject_histogram: d.send_to_inject,
            inject_to_eoi_histogram: d.inject_to_eoi,
            apicid: key.apicid,
            vector: key.vector,
            injections: d.injections,
            eois: d.eois,
            injections_per_s: per_s(d.injections),
            send_to_inject: latency(&d.send_to_inject),
            inject_to_eoi: latency(&d.inject_to_eoi),
        });
    }
    let vms = now
        .vms
        .iter()
        .map(|(&pid, counters)| {
            let d = diff_vm(counters, before.vms.get(&pid));
            VmRow {
                pid,
                sends: d.sends,
                sends_in_kernel: d.sends.saturating_sub(d.sends_to_userspace),
                sends_to_userspace: d.sends_to_userspace,
                sends_per_s: per_s(d.sends),
                userspace_exits: d.userspace_exits,
                mmio: d.mmio,
                msi_set_irq: d.msi_set_irq,
                set_irq: d.set_irq,
                vcpu_wakeups: d.vcpu_wakeups,
                xen_hypercalls: d.xen_hypercalls,
                pio: d.pio,
                vectors: vectors.remove(&pid).unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use xevtchn_common::trace::IrqKey;

    #[test]
    fn percentile_is_the_upper_bound_of_its_bucket() {
        let mut h = [0u64; BUCKETS];
        h[10] = 50; // [1024, 2048)
        h[14] = 49; // [16384, 32768)
        h[20] = 1;
        assert_eq!(histogram_percentile(&h, 50.0), Some(2048));
        assert_eq!(histogram_percentile(&h, 99.0), Some(32768));
        assert_eq!(histogram_percentile(&h, 100.0), Some(1 << 21));
        assert_eq!(histogram_percentile(&[0; BUCKETS], 50.0), None);
    }

    #[test]
    fn an_interval_is_the_difference_of_two_snapshots() {
        let key = IrqKey { tgid: 7, apicid: 1, vector: 0xf3, _pad: 0 };
        let mut before = Snapshot::default();
        before.vms.insert(7, VmCounters { sends: 10, sends_to_userspace: 4, ..Default::default() });
        before.irqs.insert(key, IrqCounters { injections: 3, ..Default::default() });
        let mut now = before.clone();
        now.vms.insert(7, VmCounters { sends: 30, sends_to_userspace: 4, ..Default::default() });
        let mut irq = IrqCounters { injections: 13, eois: 10, ..Default::default() };
        irq.inject_to_eoi[12] = 10;
        now.irqs.insert(key, irq);
        let i = interval(&before, &now, 2.0);
        let vm = &i.vms[0];
        assert_eq!((vm.pid, vm.sends, vm.sends_in_kernel, vm.sends_to_userspace), (7, 20, 20, 0));
        assert!(i.ports.is_empty());
        assert_eq!(vm.sends_per_s, 10.0);
        let v = &vm.vectors[0];
        assert_eq!((v.injections, v.eois, v.injections_per_s), (10, 10, 5.0));
        assert_eq!(v.inject_to_eoi.p50_ns, Some(8192));
        assert_eq!(v.send_to_inject.samples, 0);
    }
}
