//! The smoke run: the guest makes MMIO writes that the VMM and a BPF
//! program on `kvm:kvm_mmio` both count. It proves the whole chain (BPF
//! object built and embedded, loaded, attached; KVM; the guest).

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result};
use serde::Serialize;
use xevtchn_common::{
    guest_abi::{Params, workload},
    layout::CONTROL_SMOKE,
};

use super::{Backend, Workload};
use crate::{
    bpf::mmio_counter::MmioCounter,
    platform::{XenPlatform, eventfd_task, shared_info::SharedInfoPage},
    schema,
    vmm::{Vm, VmConfig},
    xen::{Domain, DomainConfig},
};

#[derive(Debug, Serialize)]
pub struct SmokeReport {
    /// schema::SMOKE.
    pub schema: &'static str,
    pub workload: Workload,
    /// None: smoke runs no event channels, so no backend delivers them.
    pub backend: Option<Backend>,
    pub vcpus: u32,
    pub guest_status: u32,
    /// Writes the guest was asked to make.
    pub requested_writes: u64,
    /// Writes the VMM saw as MMIO exits.
    pub vmm_writes: u64,
    /// Writes the BPF program on kvm:kvm_mmio counted.
    pub bpf_writes: u64,
    pub duration_s: f64,
}

impl SmokeReport {
    pub fn agrees(&self) -> bool {
        self.guest_status == 0 && self.vmm_writes == self.requested_writes && self.bpf_writes == self.requested_writes
    }
}

pub fn run(vcpus: u32, writes: u64, timeout: Duration) -> Result<SmokeReport> {
    // The filter is this process: two VMs in one process would add up.
    let counter = MmioCounter::attach(CONTROL_SMOKE, CONTROL_SMOKE + 4).context("attaching the kvm_mmio counter")?;
    let tasks = eventfd_task::runtime()?;
    let params = Params { workload: workload::SMOKE, count: writes, ..Params::default() };
    let mut vm = Vm::new(VmConfig { vcpus, params, timeout, ..VmConfig::default() }).context("creating the VM")?;
    let domain = Domain::new(DomainConfig { nr_vcpus: vcpus, ..DomainConfig::default() })?;
    let shared_info = SharedInfoPage::anonymous()?;
    let log = Arc::default();
    let platform = Arc::new(XenPlatform::new(&vm, domain, shared_info, None, log, tasks.handle().clone())?);
    let outcome = vm.run(platform.clone()).context("running the VM")?;
    Ok(SmokeReport {
        schema: schema::SMOKE,
        workload: Workload::Smoke,
        backend: None,
        vcpus,
        guest_status: outcome.status,
        requested_writes: writes,
        vmm_writes: platform.stats().snapshot().smoke_writes,
        bpf_writes: counter.count().context("reading the kvm_mmio counter")?,
        duration_s: outcome.elapsed.as_secs_f64(),
    })
}
