//! `xevtchn run`: start a VM with the built-in Xen guest, run a workload,
//! report what the guest and the host saw.

use std::{io::IsTerminal, process::ExitCode, time::Duration};

use anyhow::Result;
use clap::Args;

use xevtchn_common::two_level::{MAX_VCPUS, SHARED_INFO_VCPUS};

use super::live_view;
use crate::run::{self, Backend, Callback, RunConfig, RunReport, Workload, smoke};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Event delivery path.
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    pub backend: Backend,
    /// What the guest does.
    #[arg(long, value_enum, default_value_t = Workload::Pingpong)]
    pub workload: Workload,
    /// Number of vCPUs: 1 to 32 for the built-in guest, up to 128 (Xen's
    /// HVM maximum) for a --kernel.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=MAX_VCPUS as i64))]
    pub vcpus: u32,
    /// Sends per sender (or rounds), unless --duration is given.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Run the senders for this many seconds instead of --count sends.
    #[arg(long, value_parser = parse_seconds, conflicts_with = "count")]
    pub duration: Option<Duration>,
    /// How vCPU 0 is called back (the others use per-vCPU vectors).
    #[arg(long, value_enum, default_value_t = Callback::Vector)]
    pub callback: Callback,
    /// Stop the VM and fail after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Place shared_info over a guest RAM page (as Linux does), so that
    /// the VMM splits RAM's memslot around it.
    #[arg(long)]
    pub shared_info_in_ram: bool,
    /// Pace each sender of flood, fanout and rebind to this many sends per
    /// second (default: as fast as it can), so that backends carry the
    /// same event load.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub rate: Option<u32>,
    /// Register with the xevtchn service at this socket (it must answer).
    /// Default: $XEVTCHN_SOCKET or /run/xevtchn/xevtchn.sock if a service
    /// answers there, else this process serves its VM itself (which needs
    /// CAP_BPF and CAP_PERFMON).
    #[arg(long, value_name = "SOCKET")]
    pub service: Option<std::path::PathBuf>,
    /// The fuzz workload's random seed, to replay a run (its report gives
    /// the seed it used; default: one from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Boot this kernel instead of the built-in guest: an ELF with Xen's
    /// PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY). It runs until it shuts
    /// itself down (SCHEDOP_shutdown); its console is the run's output.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["workload", "count", "duration", "callback", "shared_info_in_ram", "rate", "seed"]
    )]
    pub kernel: Option<std::path::PathBuf>,
    /// The --kernel's command line (hvm_start_info's cmdline).
    #[arg(long, value_name = "STR", requires = "kernel", default_value = "")]
    pub cmdline: String,
    /// The --kernel's RAM in MiB (it sits below the VMM's MMIO at 3.25 GiB).
    #[arg(long, value_name = "MIB", requires = "kernel", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(16..=3072))]
    pub memory: u32,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// No live view of the VM while it runs (it is shown on a terminal).
    #[arg(long)]
    pub quiet: bool,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 3600.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("{s:?} is not a number of seconds above 0 and at most 3600")),
    }
}

/// A flag combination that cannot run; the binary exits with status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let timeout = Duration::from_secs(args.timeout);
    if let Some(kernel) = &args.kernel {
        return run_kernel(args, kernel, timeout);
    }
    if args.vcpus > SHARED_INFO_VCPUS {
        return Err(UsageError(format!(
            "--vcpus {}: the built-in guest runs at most {SHARED_INFO_VCPUS} vCPUs, since it keeps their vcpu_infos in \
             shared_info; up to {MAX_VCPUS} are for a --kernel, which registers the vcpu_infos of vCPUs from 32 on",
            args.vcpus
        ))
        .into());
    }
    let workload = args.workload;
    if workload == Workload::Smoke {
        return run_smoke(args, timeout);
    }
    if args.vcpus < workload.min_vcpus() {
        return Err(UsageError(format!(
            "the {} workload needs at least {} vCPUs: pass --vcpus {}",
            workload_name(workload),
            workload.min_vcpus(),
            workload.min_vcpus()
        ))
        .into());
    }
    if args.seed.is_some() && workload != Workload::Fuzz {
        return Err(
            UsageError(format!("--seed seeds the fuzz workload; {} is not random", workload_name(workload))).into()
        );
    }
    if args.rate.is_some() && !matches!(workload, Workload::Flood | Workload::Fanout | Workload::Rebind) {
        return Err(UsageError(format!(
            "--rate paces the senders of flood, fanout and rebind; {} has none to pace",
            workload_name(workload)
        ))
        .into());
    }
    let config = RunConfig {
        backend: args.backend,
        workload,
        vcpus: args.vcpus,
        count: args.count,
        duration: args.duration,
        callback: args.callback,
        timeout,
        shared_info_in_ram: args.shared_info_in_ram,
        rate: args.rate,
        service: args.service.clone(),
        seed: args.seed,
    };
    super::signals::stop_run_on_signal()?;
    let live = (std::io::stdout().is_terminal() && !args.json && !args.quiet).then(live_view::spawn);
    let report = run::execute(&config);
    if let Some(live) = live {
        live.stop();
    }
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn run_kernel(args: &RunArgs, kernel: &std::path::Path, timeout: Duration) -> Result<ExitCode> {
    if args.backend == Backend::Bare {
        return Err(
            UsageError("--backend bare has no Xen semantics: a --kernel needs userspace, bpf or auto".into()).into()
        );
    }
    if !kernel.is_file() {
        return Err(UsageError(format!("--kernel {}: no such file", kernel.display())).into());
    }
    let config = run::kernel::KernelConfig {
        kernel: kernel.to_path_buf(),
        cmdline: args.cmdline.clone(),
        memory_mib: args.memory,
        vcpus: args.vcpus,
        backend: args.backend,
        timeout,
        service: args.service.clone(),
        console_to_stdout: !args.json,
    };
    super::signals::stop_run_on_signal()?;
    let report = run::kernel::execute(&config)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let ended = match (&report.shutdown, report.stopped_by) {
            (Some(s), _) => format!("shut down ({}, code {})", s.reason, s.code),
            (None, Some(by)) => format!("stopped by {by}"),
            (None, None) => "ended".into(),
        };
        eprintln!(
            "xevtchn: {} {ended} after {:.3} s on {}: {} hypercalls, {} console bytes, exit status {}",
            report.kernel,
            report.elapsed_s,
            format!("{:?}", report.backend).to_lowercase(),
            report.hypercalls,
            report.console_bytes,
            report.exit_status
        );
    }
    Ok(ExitCode::from(report.exit_status))
}

fn run_smoke(args: &RunArgs, timeout: Duration) -> Result<ExitCode> {
    let report = smoke::run(args.vcpus, args.count, timeout)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "smoke: guest status {}, {} writes requested, {} seen by the VMM, {} counted by BPF on kvm:kvm_mmio, {:.3} s",
            report.guest_status, report.requested_writes, report.vmm_writes, report.bpf_writes, report.duration_s
        );
    }
    Ok(if report.agrees() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print_summary(r: &RunReport) {
    println!(
        "{} on {}, {} vCPUs, vCPU 0 callback {}: {}",
        workload_name(r.workload),
        format!("{:?}", r.backend).to_lowercase(),
        r.vcpus,
        format!("{:?}", r.callback).to_lowercase(),
        if r.is_clean() { "clean" } else { "FAILED" }
    );
    if let (Some(seed), Some(calls), Some(accepted), Some(refused)) =
        (r.seed, r.fuzz_calls, r.fuzz_accepted_calls, r.fuzz_refused_msrs)
    {
        println!(
            "  fuzz seed {seed} (--seed {seed} replays it): {calls} calls and accesses, {accepted} hypercalls accepted, {refused} MSR accesses refused"
        );
    }
    if let Some(by) = r.stopped_by {
        println!("  stopped early by {by}: the guest stopped sending and checked every event it had sent");
    }
    println!(
        "  sent {}  delivered {}  coalesced {}  masked {}  lost {}  errors {}",
        r.sent, r.delivered, r.coalesced, r.masked, r.lost, r.errors
    );
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
    if let Some(b) = &r.bpf {
        println!(
            "  in the kernel: {} fast sends ({:.1}% of sent), {} to userspace; {} coalesced, {} masked",
            r.fast_sends,
            100.0 * r.fast_sends as f64 / r.sent.max(1) as f64,
            r.fallback_sends,
            b.coalesced,
            b.masked
        );
    }
    println!(
        "  {:.0} sends/s over {:.3} s; {} userspace exits ({:.2} per send); {} upcalls, {} spurious",
        r.sends_per_s,
        r.duration_s,
        r.userspace_exits,
        r.userspace_exits as f64 / r.sent.max(1) as f64,
        r.upcalls,
        r.spurious_upcalls
    );
    let l = &r.latency_ns;
    if let (Some(p50), Some(p90), Some(p99), Some(max)) = (l.p50, l.p90, l.p99, l.max) {
        println!("  one-way latency (ns, {} samples): p50 {p50}  p90 {p90}  p99 {p99}  max {max}", l.n);
    }
}

/// A workload as the command line names it.
pub fn workload_name(w: Workload) -> String {
    clap::ValueEnum::to_possible_value(&w).map_or_else(|| format!("{w:?}"), |v| v.get_name().to_string())
}
