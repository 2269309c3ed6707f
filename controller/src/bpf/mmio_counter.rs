//! Counting one VMM's MMIO writes in a guest-physical window with the
//! `kvm_mmio_count` program: the smoke test of the whole BPF chain.

use aya::{
    Ebpf,
    maps::{Array, PerCpuArray},
};
use xevtchn_common::wire::MmioFilter;

use super::{BpfError, load, whoami};

const PROGRAM: &str = "kvm_mmio_count";
const FILTER: &str = "MMIO_FILTER";
const COUNT: &str = "MMIO_WRITES";

pub struct MmioCounter {
    ebpf: Ebpf,
}

impl MmioCounter {
    /// Loads the object and attaches to `kvm:kvm_mmio`, counting this
    /// process's writes to guest-physical `[start, end)`.
    pub fn attach(start: u64, end: u64) -> Result<Self, BpfError> {
        let mut ebpf = load::load_object(load::Object::Smoke)?;
        let tgid = whoami::host_tgid(&mut ebpf)?;
        let mut filter: Array<_, MmioFilter> =
            Array::try_from(ebpf.map_mut(FILTER).ok_or(BpfError::NoMap(FILTER))?).map_err(BpfError::map(FILTER))?;
        filter
            .set(0, &MmioFilter { tgid, _pad: 0, gpa_start: start, gpa_end: end }, 0)
            .map_err(BpfError::map(FILTER))?;
        load::attach_tracepoint(&mut ebpf, PROGRAM, "kvm", "kvm_mmio")?;
        Ok(Self { ebpf })
    }

    /// Writes counted so far, summed over CPUs.
    pub fn count(&self) -> Result<u64, BpfError> {
        let map: PerCpuArray<_, u64> =
            PerCpuArray::try_from(self.ebpf.map(COUNT).ok_or(BpfError::NoMap(COUNT))?).map_err(BpfError::map(COUNT))?;
        let values = map.get(&0, 0).map_err(BpfError::map(COUNT))?;
        Ok(values.iter().sum())
    }
}
