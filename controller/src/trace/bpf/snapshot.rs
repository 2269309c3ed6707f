//! Reading the tracing maps: per-CPU slots summed into one snapshot. Only
//! the slots the programs marked used are read (a few, of thousands).

use std::collections::{BTreeMap, BTreeSet};

use aya::{
    Ebpf,
    maps::{Array, MapData, PerCpuArray},
};
use xevtchn_common::trace::{
    IRQ_SLOTS, IrqCounters, IrqKey, IrqSlot, PORT_SLOTS, VM_SLOTS, VmCounters, VmSlot, bitmap_words,
};

use super::FastPathOutcomes;
use crate::bpf::BpfError;

const VMS: &str = "TRACE_VMS";
const IRQS: &str = "TRACE_IRQS";
const PORTS: &str = "TRACE_PORT_SENDS";
const VMS_USED: &str = "TRACE_VMS_USED";
const IRQS_USED: &str = "TRACE_IRQS_USED";
const PORTS_USED: &str = "TRACE_PORTS_USED";
const DROPS: &str = "TRACE_DROPS";

/// Cumulative counters, summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub vms: BTreeMap<u32, VmCounters>,
    pub irqs: BTreeMap<IrqKey, IrqCounters>,
    /// Sends per port (doorbell index), ports with none left out.
    pub ports: BTreeMap<u32, u64>,
    /// Per traced xevtchn VM on the bpf backend (by tgid): what its
    /// doorbell program decided, per target vCPU.
    pub fast_paths: BTreeMap<u32, FastPathOutcomes>,
    /// Whether kvm_msi_set_irq was counted (`TraceOptions::msi`).
    pub msis_counted: bool,
    /// VMs whose process has ended (their counts are final).
    pub ended: BTreeSet<u32>,
    /// VMs known to be xevtchn's: served by a doorbell program, or run by
    /// an `xevtchn` process. Only their doorbell writes are sends.
    pub xevtchn: BTreeSet<u32>,
}

pub(super) struct Maps {
    vms: PerCpuArray<MapData, VmSlot>,
    irqs: PerCpuArray<MapData, IrqSlot>,
    ports: PerCpuArray<MapData, u64>,
    vms_used: Array<MapData, u64>,
    irqs_used: Array<MapData, u64>,
    ports_used: Array<MapData, u64>,
    drops: PerCpuArray<MapData, u64>,
}

fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<T, BpfError> {
    T::try_from(ebpf.take_map(name).ok_or(BpfError::NoMap(name))?).map_err(BpfError::map(name))
}

/// The slots whose bit is set in `bitmap` (of `slots` bits).
fn used(bitmap: &Array<MapData, u64>, name: &'static str, slots: u32) -> Result<Vec<u32>, BpfError> {
    let mut out = Vec::new();
    for word in 0..bitmap_words(slots) {
        let bits = bitmap.get(&word, 0).map_err(BpfError::map(name))?;
        out.extend((0..64).filter(|b| bits & (1 << b) != 0).map(|b| word * 64 + b).filter(|&s| s < slots));
    }
    Ok(out)
}

impl Maps {
    pub(super) fn take(ebpf: &mut Ebpf) -> Result<Self, BpfError> {
        Ok(Self {
            vms: take(ebpf, VMS)?,
            irqs: take(ebpf, IRQS)?,
            ports: take(ebpf, PORTS)?,
            vms_used: take(ebpf, VMS_USED)?,
            irqs_used: take(ebpf, IRQS_USED)?,
            ports_used: take(ebpf, PORTS_USED)?,
            drops: take(ebpf, DROPS)?,
        })
    }

    pub(super) fn dropped_events(&self) -> Result<u64, BpfError> {
        Ok(self.drops.get(&0, 0).map_err(BpfError::map(DROPS))?.iter().sum())
    }

    pub(super) fn read(&self) -> Result<Snapshot, BpfError> {
        let mut snap = Snapshot::default();
        // Each CPU's copy of a slot names its own VM; u32::MAX is the
        // overflow slot (VMs whose slot another VM held on that CPU).
        for index in used(&self.vms_used, VMS_USED, VM_SLOTS + 1)? {
            for slot in self.vms.get(&index, 0).map_err(BpfError::map(VMS))?.iter() {
                if slot.tgid != 0 {
                    let sum = snap.vms.entry(slot.tgid).or_default();
                    *sum = sum.zip_with(&slot.counters, u64::wrapping_add);
                }
            }
        }
        // As for the VMs: each CPU's copy of a slot names its own key; the
        // overflow slot (tgid u32::MAX) collects keys that found theirs taken.
        for index in used(&self.irqs_used, IRQS_USED, IRQ_SLOTS + 1)? {
            for slot in self.irqs.get(&index, 0).map_err(BpfError::map(IRQS))?.iter() {
                if slot.key.tgid != 0 {
                    let sum = snap.irqs.entry(slot.key).or_default();
                    *sum = sum.zip_with(&slot.counters, u64::wrapping_add);
                }
            }
        }
        for port in used(&self.ports_used, PORTS_USED, PORT_SLOTS)? {
            let sends: u64 = self.ports.get(&port, 0).map_err(BpfError::map(PORTS))?.iter().sum();
            if sends > 0 {
                snap.ports.insert(port, sends);
            }
        }
        Ok(snap)
    }
}
