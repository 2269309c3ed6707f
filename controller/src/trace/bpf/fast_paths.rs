//! What xevtchn's own fast paths decided: each VM on the bpf backend has a
//! doorbell program that counts, per target vCPU, how each send ended
//! (raised an upcall, coalesced, masked, found one pending). `xevtchn
//! trace` finds those programs in the kernel's list of loaded programs, so
//! it sees the VMs of any xevtchn process, and reads their counters.
//! Sends decided in a VMM's userspace leave no such record.

use std::collections::{BTreeMap, BTreeSet};

use std::{os::fd::AsFd, sync::atomic::Ordering::Relaxed};

use aya::{
    maps::{Array, Map, MapData},
    programs::{ProgramInfo, loaded_programs},
};
use xevtchn_common::doorbell::{DoorbellConfig, stat};

pub use crate::bpf::doorbell::SendOutcomes;
use crate::bpf::{
    doorbell::{CONFIG, PROGRAM, STATS},
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

struct Doorbell {
    tgid: u32,
    /// The program's counters, mapped (`doorbell::stat`).
    stats: MappedWords,
}

enum Known {
    /// Not read: its maps could not be opened, or its VM is not traced.
    Ignored,
    /// Loaded: the open map keeps its counts readable even after the
    /// program is gone.
    Open(Doorbell),
    /// Unloaded (its VM ended): the final counts, the map closed.
    Ended { tgid: u32, vcpus: BTreeMap<u32, SendOutcomes> },
}

/// Ended VMs kept (their counts stay in the totals); beyond, the oldest go.
const ENDED_KEPT: usize = 4096;

/// The doorbell programs of the traced VMs. `discover` must run while a VM
/// lives (see `discovery`): its maps go with its program.
pub struct FastPaths {
    /// The traced process; 0: every one.
    tgid: u32,
    /// By program id.
    known: BTreeMap<u32, Known>,
}

impl FastPaths {
    pub fn new(tgid: u32) -> Self {
        Self { tgid, known: BTreeMap::new() }
    }

    /// Opens the maps of doorbell programs loaded since the last call, and
    /// keeps the final counts of those unloaded since.
    pub fn discover(&mut self) {
        let mut listed = BTreeSet::new();
        for program in loaded_programs().filter_map(Result::ok) {
            if program.name_as_str() == Some(kernel_name(PROGRAM)) {
                let tgid = self.tgid;
                self.known
                    .entry(program.id())
                    .or_insert_with(|| open(&program, tgid).map_or(Known::Ignored, Known::Open));
                listed.insert(program.id());
            }
        }
        for (id, known) in &mut self.known {
            if let Known::Open(d) = known
                && !listed.contains(id)
            {
                // Gone, so nothing more is counted: keep the counts, close the map.
                *known = Known::Ended { tgid: d.tgid, vcpus: read_vcpus(&d.stats).unwrap_or_default() };
            }
        }
        self.known.retain(|id, k| listed.contains(id) || !matches!(k, Known::Ignored));
        let ended: Vec<u32> =
            self.known.iter().filter(|(_, k)| matches!(k, Known::Ended { .. })).map(|(&id, _)| id).collect();
        for id in ended.iter().take(ended.len().saturating_sub(ENDED_KEPT)) {
            self.known.remove(id);
        }
    }

    /// Every traced VM's outcomes so far, summed per process (a process may
    /// run several VMs), of the programs `discover` found.
    pub fn read(&self) -> BTreeMap<u32, FastPathOutcomes> {
        let mut out: BTreeMap<u32, FastPathOutcomes> = BTreeMap::new();
        for known in self.known.values() {
            let (tgid, vcpus) = match known {
                Known::Ignored => continue,
                Known::Open(d) => match read_vcpus(&d.stats) {
                    Some(vcpus) => (d.tgid, vcpus),
                    None => continue,
                },
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

/// The program's VM (from its config) and its counters; None if they
/// cannot be read or the VM is not `traced` (0: every one).
fn open(program: &ProgramInfo, traced: u32) -> Option<Doorbell> {
    let (mut tgid, mut stats) = (None, None);
    for id in program.map_ids().ok()??.into_iter() {
        let Ok(data) = MapData::from_id(id) else { continue };
        let info = data.info().ok();
        let name = info.as_ref().and_then(|i| i.name_as_str().map(str::to_owned));
        match name.as_deref() {
            Some(n) if n == kernel_name(CONFIG) => {
                let config: Array<MapData, DoorbellConfig> = Array::try_from(Map::Array(data)).ok()?;
                tgid = config.get(&0, 0).ok().map(|c| c.host_tgid);
            }
            Some(n) if n == kernel_name(STATS) => {
                let entries = info.map_or(0, |i| i.max_entries()) as usize;
                stats = MappedWords::map(data.fd().as_fd(), entries * 8).ok();
            }
            _ => {}
        }
    }
    let tgid = tgid.filter(|&t| t != 0 && (traced == 0 || t == traced))?;
    Some(Doorbell { tgid, stats: stats? })
}

fn read_vcpus(stats: &MappedWords) -> Option<BTreeMap<u32, SendOutcomes>> {
    let word = |i: u32| stats.word(i as usize).map_or(0, |w| w.load(Relaxed));
    let vcpus = (stats.words() as u32 / stat::LINE_WORDS).saturating_sub(1);
    let mut out = BTreeMap::new();
    for vcpu in 0..vcpus {
        let outcomes = SendOutcomes::of_vcpu(word, vcpu);
        if outcomes.fast_sends > 0 {
            out.insert(vcpu, outcomes);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_compared_as_the_kernel_keeps_them() {
        assert_eq!(kernel_name(PROGRAM), "kvm_mmio_doorbe");
        assert_eq!(kernel_name(CONFIG), "DOORBELL_CONFIG");
        assert_eq!(kernel_name(STATS), "DOORBELL_STATS");
    }
}
