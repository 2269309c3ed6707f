//! What xevtchn's own fast paths decided: the doorbell program counts,
//! for each VM it serves and per target vCPU, how each send ended (raised
//! an upcall, coalesced, masked, found one pending), in that VM's counter
//! map. `xevtchn trace` finds the doorbell programs in the kernel's list
//! of loaded programs (one per host with `xevtchn serve`, one per VM
//! without), and each VM's counters in the program's `VM_STATS` map, so it
//! sees the VMs of any xevtchn process. Sends decided in a VMM's userspace
//! leave no such record.

use std::collections::{BTreeMap, BTreeSet};

use std::{os::fd::AsFd, sync::atomic::Ordering::Relaxed};

use aya::{
    maps::{HashOfMaps, Map, MapData},
    programs::loaded_programs,
};
use xevtchn_common::doorbell::{VmStats, stat};

pub use crate::bpf::doorbell::SendOutcomes;
// PROGRAMS[0]: the MMIO doorbell program (the port-I/O one shares its maps).
use crate::bpf::{
    doorbell_host::{PROGRAMS, VM_STATS},
    mapped::MappedWords,
};

/// The kernel keeps 15 bytes of a program's or map's name.
fn kernel_name(name: &str) -> &str {
    &name[..name.len().min(15)]
}

/// One VM's fast-path outcomes, by target vCPU (vCPUs with no send left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FastPathOutcomes {
    pub vcpus: BTreeMap<u32, SendOutcomes>,
}

enum Known {
    /// Registered: its counter map, mapped (which keeps it readable after
    /// the VM is gone).
    Open { tgid: u32, stats: MappedWords },
    /// Unregistered (its VM ended): the final counts, the map let go.
    Ended { tgid: u32, vcpus: BTreeMap<u32, SendOutcomes> },
}

/// Ended VMs kept (their counts stay in the totals); beyond, the oldest go.
const ENDED_KEPT: usize = 4096;

/// The fast paths of the traced VMs. `discover` must run while a VM is
/// registered (see `discovery`): its counters go with its registration.
pub struct FastPaths {
    /// The traced process; 0: every one.
    tgid: u32,
    /// By the id of the VM's counter map.
    known: BTreeMap<u32, Known>,
}

impl FastPaths {
    pub fn new(tgid: u32) -> Self {
        Self { tgid, known: BTreeMap::new() }
    }

    /// Maps the counters of VMs registered since the last call, and keeps
    /// the final counts of those unregistered since.
    pub fn discover(&mut self) {
        let mut listed = BTreeSet::new();
        for program in loaded_programs().filter_map(Result::ok) {
            if program.name_as_str() != Some(kernel_name(PROGRAMS[0].0)) {
                continue;
            }
            for id in program.map_ids().ok().flatten().unwrap_or_default() {
                let Ok(data) = MapData::from_id(id) else { continue };
                let named = data.info().ok().and_then(|i| i.name_as_str().map(str::to_owned));
                if named.as_deref() != Some(kernel_name(VM_STATS)) {
                    continue;
                }
                let Ok(vms) = HashOfMaps::<_, u32, MapData>::try_from(Map::HashOfMaps(data)) else { continue };
                for tgid in vms.keys().filter_map(Result::ok).filter(|&t| self.tgid == 0 || t == self.tgid) {
                    let Ok(stats) = vms.get(&tgid, 0) else { continue };
                    let Ok(info) = stats.info() else { continue };
                    listed.insert(info.id());
                    if !self.known.contains_key(&info.id())
                        && let Ok(mapped) = MappedWords::map_read_only(stats.fd().as_fd(), size_of::<VmStats>())
                    {
                        self.known.insert(info.id(), Known::Open { tgid, stats: mapped });
                    }
                }
            }
        }
        for (id, known) in &mut self.known {
            if let Known::Open { tgid, stats } = known
                && !listed.contains(id)
            {
                // Unregistered, so nothing more is counted: keep the counts.
                *known = Known::Ended { tgid: *tgid, vcpus: read_vcpus(stats) };
            }
        }
        let ended: Vec<u32> =
            self.known.iter().filter(|(_, k)| matches!(k, Known::Ended { .. })).map(|(&id, _)| id).collect();
        for id in ended.iter().take(ended.len().saturating_sub(ENDED_KEPT)) {
            self.known.remove(id);
        }
    }

    /// Every traced VM's outcomes so far, summed per process, of the VMs
    /// `discover` found.
    pub fn read(&self) -> BTreeMap<u32, FastPathOutcomes> {
        let mut out: BTreeMap<u32, FastPathOutcomes> = BTreeMap::new();
        for known in self.known.values() {
            let (tgid, vcpus) = match known {
                Known::Open { tgid, stats } => (*tgid, read_vcpus(stats)),
                Known::Ended { tgid, vcpus } => (*tgid, vcpus.clone()),
            };
            let sums = &mut out.entry(tgid).or_default().vcpus;
            for (vcpu, outcomes) in vcpus {
                let sum = sums.entry(vcpu).or_default();
                *sum = sum.zip_with(&outcomes, u64::wrapping_add);
            }
        }
        out
    }
}

fn read_vcpus(stats: &MappedWords) -> BTreeMap<u32, SendOutcomes> {
    let word = |i: u32| stats.word(i as usize).map_or(0, |w| w.load(Relaxed));
    let vcpus = (stats.words() as u32 / stat::LINE_WORDS).saturating_sub(1);
    (0..vcpus)
        .map(|vcpu| (vcpu, SendOutcomes::of_vcpu(word, vcpu)))
        .filter(|(_, outcomes)| outcomes.fast_sends > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_as_the_kernel_keeps_them() {
        assert_eq!(kernel_name(PROGRAMS[0].0), "kvm_mmio_doorbe");
        assert_eq!(kernel_name(VM_STATS), "VM_STATS");
    }
}
