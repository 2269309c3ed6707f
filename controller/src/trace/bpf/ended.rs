//! VMs that end while traced. Their last counts are kept (they stay in the
//! totals, and leave the interval reports), and their slots are handed back
//! to the programs through `TRACE_ENDED_VMS`, which lets a CPU take a slot
//! over from an ended VM: a host that starts and stops VMs all day never
//! runs out of slots.
//!
//! A VM has ended when its process has gone from /proc: it has no thread
//! left to cause an event, so a read after that is its last. This needs
//! the tracer to see host PIDs (the initial PID namespace, as the programs
//! do); elsewhere slots are never handed back.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use aya::maps::{HashMap, MapData};
use xevtchn_common::trace::{IrqCounters, IrqKey, VmCounters};

use super::Snapshot;
use crate::bpf::BpfError;

pub(super) const MAP: &str = "TRACE_ENDED_VMS";

pub(super) struct EndedVms {
    map: HashMap<MapData, u32, u8>,
    /// Each ended VM's counts when it ended (added up, if its PID came back).
    vms: BTreeMap<u32, VmCounters>,
    irqs: BTreeMap<IrqKey, IrqCounters>,
    /// Ended VMs still in the programs' map: slots may still hold their
    /// stale counts, which reads ignore.
    in_map: BTreeSet<u32>,
    /// Whether /proc shows host PIDs (see the module's comment).
    host_pids: bool,
}

/// The overflow slots' tgid: never a process.
const OVERFLOW: u32 = u32::MAX;

impl EndedVms {
    pub(super) fn new(map: HashMap<MapData, u32, u8>) -> Self {
        Self { map, vms: BTreeMap::new(), irqs: BTreeMap::new(), in_map: BTreeSet::new(), host_pids: host_pids() }
    }

    /// A snapshot from `read` (a read of the programs' maps), with the
    /// ended VMs' kept counts in place of what their slots still hold.
    pub(super) fn settle(
        &mut self,
        mut read: impl FnMut() -> Result<Snapshot, BpfError>,
    ) -> Result<Snapshot, BpfError> {
        let mut raw = read()?;
        let gone: Vec<u32> = if self.host_pids {
            raw.vms.keys().copied().filter(|&t| t != OVERFLOW && !self.in_map.contains(&t) && !alive(t)).collect()
        } else {
            Vec::new()
        };
        if !gone.is_empty() {
            // Events of these VMs may have come after the first read.
            raw = read()?;
            for &tgid in &gone {
                self.keep(&raw, tgid);
                self.map.insert(&tgid, &1, 0).map_err(BpfError::map(MAP))?;
                self.in_map.insert(tgid);
            }
        }
        // What slots hold for ended VMs is stale (partly taken over): drop
        // it; a VM no slot holds any more leaves the programs' map.
        for tgid in self.in_map.clone() {
            let held = raw.vms.remove(&tgid).is_some() | remove_irqs(&mut raw, tgid);
            if !held {
                self.map.remove(&tgid).map_err(BpfError::map(MAP))?;
                self.in_map.remove(&tgid);
            }
        }
        for (&tgid, kept) in &self.vms {
            // A slot holding it now holds a new process with its PID.
            if !raw.vms.contains_key(&tgid) {
                raw.ended.insert(tgid);
            }
            let sum = raw.vms.entry(tgid).or_default();
            *sum = sum.zip_with(kept, u64::wrapping_add);
        }
        for (key, kept) in &self.irqs {
            let sum = raw.irqs.entry(*key).or_default();
            *sum = sum.zip_with(kept, u64::wrapping_add);
        }
        Ok(raw)
    }

    /// Keeps `tgid`'s last counts from `raw`.
    fn keep(&mut self, raw: &Snapshot, tgid: u32) {
        if let Some(counters) = raw.vms.get(&tgid) {
            let kept = self.vms.entry(tgid).or_default();
            *kept = kept.zip_with(counters, u64::wrapping_add);
        }
        for (key, counters) in raw.irqs.range(irq_keys(tgid)) {
            let kept = self.irqs.entry(*key).or_default();
            *kept = kept.zip_with(counters, u64::wrapping_add);
        }
    }
}

/// Removes `tgid`'s (APIC, vector) rows; whether there were any.
fn remove_irqs(raw: &mut Snapshot, tgid: u32) -> bool {
    let keys: Vec<IrqKey> = raw.irqs.range(irq_keys(tgid)).map(|(k, _)| *k).collect();
    for key in &keys {
        raw.irqs.remove(key);
    }
    !keys.is_empty()
}

/// Every IrqKey of `tgid` (keys order by tgid first).
fn irq_keys(tgid: u32) -> std::ops::RangeInclusive<IrqKey> {
    IrqKey { tgid, apicid: 0, vector: 0, _pad: 0 }..=IrqKey { tgid, apicid: u32::MAX, vector: u32::MAX, _pad: u32::MAX }
}

fn alive(tgid: u32) -> bool {
    Path::new("/proc").join(tgid.to_string()).exists()
}

/// Whether this process sees host PIDs: its NSpid has one level.
fn host_pids() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("NSpid:")).is_some_and(|pids| pids.split_whitespace().count() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_sees_host_pids_unless_in_a_pid_namespace() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let levels = status.lines().find_map(|l| l.strip_prefix("NSpid:")).unwrap().split_whitespace().count();
        assert_eq!(host_pids(), levels == 1);
    }

    #[test]
    fn irq_keys_of_one_vm_are_a_range() {
        let mut raw = Snapshot::default();
        for tgid in [6, 7, 8] {
            raw.irqs.insert(IrqKey { tgid, apicid: 1, vector: 0xf3, _pad: 0 }, IrqCounters::default());
            raw.irqs.insert(IrqKey { tgid, apicid: u32::MAX, vector: u32::MAX, _pad: 0 }, IrqCounters::default());
        }
        assert!(remove_irqs(&mut raw, 7));
        assert!(!remove_irqs(&mut raw, 7));
        assert_eq!(raw.irqs.keys().map(|k| k.tgid).collect::<Vec<_>>(), [6, 6, 8, 8]);
    }
}
