//! `xevtchn run`: start a VM with the built-in guest and report.

use std::{process::ExitCode, time::Duration};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use xevtchn_common::{layout::CONTROL_SMOKE, workload};

use crate::{
    bpf::mmio_counter::MmioCounter,
    vmm::{Vm, VmConfig},
};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// What the guest does.
    #[arg(long, value_enum, default_value_t = Workload::Smoke)]
    pub workload: Workload,
    /// Number of vCPUs (1 to 32).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub vcpus: u32,
    /// Number of operations the workload performs.
    #[arg(long, default_value_t = 1000)]
    pub count: u64,
    /// Stop the VM and fail after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// vCPU 0 makes COUNT MMIO writes, counted by the VMM and by BPF on kvm:kvm_mmio.
    Smoke,
}

/// What `xevtchn run --workload smoke` reports.
#[derive(Debug, Serialize)]
pub struct SmokeReport {
    pub workload: Workload,
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

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let report = smoke(args)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "smoke: guest status {}, {} writes requested, {} seen by the VMM, {} counted by BPF on kvm:kvm_mmio, {:.3} s",
            report.guest_status, report.requested_writes, report.vmm_writes, report.bpf_writes, report.duration_s
        );
    }
    let agree = report.guest_status == 0
        && report.vmm_writes == report.requested_writes
        && report.bpf_writes == report.requested_writes;
    Ok(if agree { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs the smoke workload with the BPF counter attached.
pub fn smoke(args: &RunArgs) -> Result<SmokeReport> {
    let counter = MmioCounter::attach(std::process::id(), CONTROL_SMOKE, CONTROL_SMOKE + 4)
        .context("attaching the kvm_mmio counter")?;
    let config = VmConfig {
        vcpus: args.vcpus,
        workload: workload::SMOKE,
        arg: args.count,
        timeout: Duration::from_secs(args.timeout),
        ..VmConfig::default()
    };
    let outcome = Vm::new(config).context("creating the VM")?.run().context("running the VM")?;
    let bpf_writes = counter.count().context("reading the kvm_mmio counter")?;
    Ok(SmokeReport {
        workload: args.workload,
        vcpus: args.vcpus,
        guest_status: outcome.status,
        requested_writes: args.count,
        vmm_writes: outcome.smoke_writes,
        bpf_writes,
        duration_s: outcome.elapsed.as_secs_f64(),
    })
}
