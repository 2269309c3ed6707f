//! `xevtchn trace`: watch upcall delivery in any KVM process, live.

use std::{
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::run::UsageError;
use crate::{
    bpf::trace::Tracer,
    trace::{
        report::{Interval, interval},
        target::check_kvm_process,
    },
};

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Trace only this VMM process (default: every KVM process).
    #[arg(long)]
    pub pid: Option<u32>,
    /// Stop after this many seconds (default: at Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Report every this many milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub interval: u64,
    /// JSON lines: one object per interval, then one with the totals.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Line<'a> {
    kind: &'a str,
    #[serde(flatten)]
    interval: &'a Interval,
}

pub fn trace(args: &TraceArgs) -> Result<ExitCode> {
    if let Some(d) = args.duration
        && !(d > 0.0 && d <= 86_400.0)
    {
        return Err(UsageError(format!("--duration {d} is not between 0 and 86400 seconds")).into());
    }
    if let Some(pid) = args.pid {
        check_kvm_process(pid).map_err(|e| UsageError(e.to_string()))?;
    }
    let tracer = Tracer::attach(args.pid.unwrap_or(0)).context("attaching the tracing programs")?;
    let what = args.pid.map_or("every KVM process".to_string(), |p| format!("KVM process {p}"));
    eprintln!("xevtchn: tracing {what}; Ctrl-C to stop");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let start = Instant::now();
    let first = tracer.snapshot()?;
    let mut last = first.clone();
    let mut last_at = start;
    let deadline = args.duration.map(|d| start + Duration::from_secs_f64(d));
    runtime.block_on(async {
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let mut wait = Duration::from_millis(args.interval);
            if let Some(deadline) = deadline {
                wait = wait.min(deadline.saturating_duration_since(Instant::now()));
            }
            let stop = tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                _ = &mut ctrl_c => true,
            };
            let now = tracer.snapshot()?;
            let at = Instant::now();
            print(args.json, "interval", &interval(&last, &now, (at - last_at).as_secs_f64()))?;
            (last, last_at) = (now, at);
            let exited = args.pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists());
            if exited {
                eprintln!("xevtchn: process {} exited; detaching", args.pid.unwrap_or(0));
            }
            if stop || exited || deadline.is_some_and(|d| Instant::now() >= d) {
                return anyhow::Ok(());
            }
        }
    })?;
    print(args.json, "total", &interval(&first, &last, (last_at - start).as_secs_f64()))?;
    Ok(ExitCode::SUCCESS)
}

fn print(json: bool, kind: &str, i: &Interval) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(&Line { kind, interval: i })?);
        return Ok(());
    }
    if kind == "total" {
        println!("== total over {:.1} s", i.seconds);
    }
    if i.vms.is_empty() {
        println!("{kind}: no KVM activity");
    }
    for vm in &i.vms {
        println!(
            "pid {}: {:.0} sends/s ({} in kernel, {} via userspace), {} userspace exits, {} MMIO, {} MSIs, {} wakeups",
            vm.pid,
            vm.sends_per_s,
            vm.sends_in_kernel,
            vm.sends_to_userspace,
            vm.userspace_exits,
            vm.mmio,
            vm.msi_set_irq,
            vm.vcpu_wakeups
        );
        for v in vm.vectors.iter().filter(|v| v.injections + v.eois > 0) {
            // kvm_eoi reports -1 when no vector was in service.
            if v.vector == u32::MAX {
                println!("  apic {:>2}: {} EOIs with no vector in service", v.apicid, v.eois);
                continue;
            }
            let ns = |x: Option<u64>| x.map_or("-".to_string(), |n| format!("<{n}"));
            println!(
                "  apic {:>2} vector {:#04x}: {:>8.0} injections/s, {} EOIs; send->inject p50 {} p99 {} ns; inject->EOI p50 {} p99 {} ns",
                v.apicid,
                v.vector,
                v.injections_per_s,
                v.eois,
                ns(v.send_to_inject.p50_ns),
                ns(v.send_to_inject.p99_ns),
                ns(v.inject_to_eoi.p50_ns),
                ns(v.inject_to_eoi.p99_ns)
            );
        }
    }
    Ok(())
}
