//! The tracing programs: attach, configure, and read their maps.

use std::collections::BTreeMap;

use aya::{
    Ebpf,
    maps::{Array, MapData, PerCpuArray, RingBuf},
};
use xevtchn_common::{
    layout,
    trace::{IRQ_SLOTS, IrqCounters, IrqKey, IrqSlot, TraceConfig, VM_SLOTS, VmCounters, VmSlot},
    two_level::NR_PORTS,
};

use super::{BpfError, load};

const CONFIG: &str = "TRACE_CONFIG";
const VMS: &str = "TRACE_VMS";
const IRQS: &str = "TRACE_IRQS";
const EVENTS: &str = "TRACE_EVENTS";
const DROPS: &str = "TRACE_DROPS";
const PORTS: &str = "TRACE_PORT_SENDS";

/// (program, tracepoint) pairs on the hot path: raw tracepoints.
const RAW_HOOKS: &[(&str, &str)] = &[
    ("trace_kvm_mmio", "kvm_mmio"),
    ("trace_kvm_userspace_exit", "kvm_userspace_exit"),
    ("trace_kvm_apic_accept_irq", "kvm_apic_accept_irq"),
    ("trace_kvm_msi_set_irq", "kvm_msi_set_irq"),
    ("trace_kvm_vcpu_wakeup", "kvm_vcpu_wakeup"),
    ("trace_kvm_pio", "kvm_pio"),
];
/// Classic tracepoints (category `kvm`), whose record layout these read.
const HOOKS: &[(&str, &str)] = &[("trace_kvm_eoi", "kvm_eoi"), ("trace_kvm_set_irq", "kvm_set_irq")];

/// Cumulative counters, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub vms: BTreeMap<u32, VmCounters>,
    pub irqs: BTreeMap<IrqKey, IrqCounters>,
    /// Sends per port (doorbell index), ports with none left out.
    pub ports: BTreeMap<u32, u64>,
}

pub struct Tracer {
    vms: PerCpuArray<MapData, VmSlot>,
    irqs: PerCpuArray<MapData, IrqSlot>,
    events: Option<RingBuf<MapData>>,
    drops: PerCpuArray<MapData, u64>,
    ports: PerCpuArray<MapData, u64>,
    _ebpf: Ebpf,
}

impl Tracer {
    /// Attaches every hook, tracing process `tgid` (0: every KVM process);
    /// `events` also streams one event per joined send and Xen hypercall.
    pub fn attach(tgid: u32, events: bool) -> Result<Self, BpfError> {
        let mut ebpf = load::load_object()?;
        let mut config: Array<MapData, TraceConfig> =
            Array::try_from(ebpf.take_map(CONFIG).ok_or(BpfError::NoMap(CONFIG))?).map_err(BpfError::map(CONFIG))?;
        let doorbell_end = layout::doorbell(NR_PORTS);
        let cfg = TraceConfig {
            tgid,
            enabled: 1,
            doorbell_base: layout::doorbell(0),
            doorbell_end,
            events: u32::from(events),
            _pad: 0,
        };
        config.set(0, &cfg, 0).map_err(BpfError::map(CONFIG))?;
        for (program, tracepoint) in RAW_HOOKS {
            load::attach_raw_tracepoint(&mut ebpf, program, tracepoint)?;
        }
        for (program, tracepoint) in HOOKS {
            load::attach_tracepoint(&mut ebpf, program, "kvm", tracepoint)?;
        }
        // Only hosts with KVM's Xen support have (and fire) this one.
        let xen_hypercalls = std::path::Path::new("/sys/kernel/tracing/events/kvm/kvm_xen_hypercall").is_dir();
        if xen_hypercalls {
            load::attach_tracepoint(&mut ebpf, "trace_kvm_xen_hypercall", "kvm", "kvm_xen_hypercall")?;
        }
        let events = ebpf.take_map(EVENTS).map(RingBuf::try_from).transpose().map_err(BpfError::map(EVENTS))?;
        let drops =
            PerCpuArray::try_from(ebpf.take_map(DROPS).ok_or(BpfError::NoMap(DROPS))?).map_err(BpfError::map(DROPS))?;
        let vms = PerCpuArray::try_from(ebpf.take_map(VMS).ok_or(BpfError::NoMap(VMS))?).map_err(BpfError::map(VMS))?;
        let irqs =
            PerCpuArray::try_from(ebpf.take_map(IRQS).ok_or(BpfError::NoMap(IRQS))?).map_err(BpfError::map(IRQS))?;
        let ports =
            PerCpuArray::try_from(ebpf.take_map(PORTS).ok_or(BpfError::NoMap(PORTS))?).map_err(BpfError::map(PORTS))?;
        Ok(Self { vms, irqs, events, drops, ports, _ebpf: ebpf })
    }

    /// The event stream, once (None after the first call).
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Events the ring buffer had no room for, so far.
    pub fn dropped_events(&self) -> Result<u64, BpfError> {
        Ok(self.drops.get(&0, 0).map_err(BpfError::map(DROPS))?.iter().sum())
    }

    pub fn snapshot(&self) -> Result<Snapshot, BpfError> {
        let mut snap = Snapshot::default();
        // Each CPU's copy of a slot names its own VM; u32::MAX is the
        // overflow slot (VMs whose slot another VM held on that CPU).
        for index in 0..=VM_SLOTS {
            for slot in self.vms.get(&index, 0).map_err(BpfError::map(VMS))?.iter() {
                if slot.tgid != 0 {
                    let sum = snap.vms.entry(slot.tgid).or_default();
                    *sum = add_vm(*sum, &slot.counters);
                }
            }
        }
        // As for the VMs: each CPU's copy of a slot names its own key; the
        // overflow slot (tgid u32::MAX) collects keys that found theirs taken.
        for index in 0..=IRQ_SLOTS {
            for slot in self.irqs.get(&index, 0).map_err(BpfError::map(IRQS))?.iter() {
                if slot.key.tgid != 0 {
                    let sum = snap.irqs.entry(slot.key).or_default();
                    *sum = add_irq(*sum, &slot.counters);
                }
            }
        }
        for port in 0..NR_PORTS {
            let sends: u64 = self.ports.get(&port, 0).map_err(BpfError::map(PORTS))?.iter().sum();
            if sends > 0 {
                snap.ports.insert(port, sends);
            }
        }
        Ok(snap)
    }
}

fn add_vm(a: VmCounters, b: &VmCounters) -> VmCounters {
    VmCounters {
        mmio: a.mmio + b.mmio,
        sends: a.sends + b.sends,
        sends_to_userspace: a.sends_to_userspace + b.sends_to_userspace,
        userspace_exits: a.userspace_exits + b.userspace_exits,
        msi_set_irq: a.msi_set_irq + b.msi_set_irq,
        set_irq: a.set_irq + b.set_irq,
        vcpu_wakeups: a.vcpu_wakeups + b.vcpu_wakeups,
        xen_hypercalls: a.xen_hypercalls + b.xen_hypercalls,
        pio: a.pio + b.pio,
    }
}

fn add_irq(mut a: IrqCounters, b: &IrqCounters) -> IrqCounters {
    a.injections += b.injections;
    a.eois += b.eois;
    for (x, y) in a.send_to_inject.iter_mut().zip(b.send_to_inject) {
        *x += y;
    }
    for (x, y) in a.inject_to_eoi.iter_mut().zip(b.inject_to_eoi) {
        *x += y;
    }
    a
}
