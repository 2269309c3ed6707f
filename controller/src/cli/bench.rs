//! `xevtchn bench`: userspace against bpf delivery, side by side.

use std::{fs, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Result;
use clap::Args;

use super::run::UsageError;
use crate::{
    bench::{self, BenchConfig, BenchReport},
    run::Workload,
};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Workloads to measure, comma-separated: pingpong, flood, fanout,
    /// rebind.
    #[arg(long, value_delimiter = ',', default_value = "pingpong,flood,fanout,rebind", hide_possible_values = true)]
    pub workloads: Vec<Workload>,
    /// vCPUs per VM (at least 2).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(2..=32))]
    pub vcpus: u32,
    /// Runs per workload and backend; medians are reported with min and max.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Round trips per pingpong run.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: u64,
    /// Seconds the flood, fanout and rebind senders run.
    #[arg(long, default_value_t = 1.0)]
    pub duration: f64,
    /// Sends per second of each rebind sender, on every backend alike.
    #[arg(long, default_value_t = bench::REBIND_RATE, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub rebind_rate: u32,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file (written whole, at the end).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Draw the latency CDFs and throughput bars into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Also measure flood on bpf with `xevtchn trace`'s programs attached
    /// (as by default, and timing every send) against without.
    #[arg(long)]
    pub trace_overhead: bool,
    /// Also measure flood on a VM served by an `xevtchn serve` that serves
    /// 0, 8 and 32 other (paused) VMs, and the kernel memory per VM.
    #[arg(long)]
    pub scale: bool,
    /// Measure only the tracing overhead, not the backend matrix.
    #[arg(long, conflicts_with_all = ["workloads", "trace_overhead"])]
    pub trace_overhead_only: bool,
}

pub fn bench(args: &BenchArgs) -> Result<ExitCode> {
    if !(args.duration > 0.0 && args.duration <= 600.0) {
        return Err(UsageError(format!("--duration {} is not between 0 and 600 seconds", args.duration)).into());
    }
    let workloads = args
        .workloads
        .iter()
        .map(|w| match w {
            Workload::Pingpong | Workload::Flood | Workload::Fanout | Workload::Rebind => Ok(*w),
            other => Err(UsageError(format!(
                "{} is not a benchmark workload: use pingpong, flood, fanout or rebind",
                workload_name(*other)
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.trace_overhead_only && args.plot.is_some() {
        return Err(UsageError("--plot draws the backend matrix, which --trace-overhead-only skips".into()).into());
    }
    for (flag, path) in [("--output", &args.output), ("--plot", &args.plot)] {
        if let Some(path) = path {
            check_writable(flag, path)?;
        }
    }
    let config = BenchConfig {
        workloads,
        vcpus: args.vcpus,
        repeat: args.repeat,
        pingpong_count: args.count,
        duration: Duration::from_secs_f64(args.duration),
        rebind_rate: args.rebind_rate,
    };
    let matrix = !args.trace_overhead_only;
    let overhead = args.trace_overhead || args.trace_overhead_only;
    let runs: usize = config.workloads.iter().map(|w| bench::backends(*w).len()).sum();
    let scale_runs = if args.scale { 2 * bench::scale::LEVELS.len() } else { 0 };
    let total = (if matrix { runs } else { 0 } + usize::from(overhead) + scale_runs) * config.repeat as usize;
    let progress = Progress::new(total as u64);
    let matrix_config =
        BenchConfig { workloads: if matrix { config.workloads.clone() } else { Vec::new() }, ..config.clone() };
    let mut report = bench::run(&matrix_config, |workload, backend, round| {
        let backend = format!("{backend:?}").to_lowercase();
        progress.step(format!("round {} {} on {backend}", round + 1, workload_name(workload)));
    })?;
    if overhead {
        report.trace_overhead = Some(bench::trace_overhead::trace_overhead(&config, |round| {
            progress.step(format!("round {} flood on bpf, traced in windows", round + 1));
        })?);
    }
    if args.scale {
        report.scale = Some(bench::scale::scale(&config, |others, round| {
            progress.step(format!("round {} flood beside {others} registered VMs", round + 1));
        })?);
    }
    progress.finish();
    if let Some(path) = &args.output {
        // Write then rename: an interrupted write leaves no half file.
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_string_pretty(&report)?)?;
        fs::rename(&tmp, path)?;
    }
    if let Some(path) = &args.plot {
        let tmp = path.with_extension("svg.tmp");
        bench::plot::write_svg(&report, &tmp)?;
        fs::rename(&tmp, path)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress on stderr: a bar on a terminal, else one line per finished run
/// (a CI log or a pipe still shows that the bench is alive).
struct Progress {
    bar: indicatif::ProgressBar,
    lines: bool,
    total: u64,
    started: std::time::Instant,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs, {elapsed} {msg}")
                .expect("a valid template"),
        );
        let lines = !std::io::IsTerminal::is_terminal(&std::io::stderr());
        Self { bar, lines, total, started: std::time::Instant::now() }
    }

    fn step(&self, done: String) {
        self.bar.inc(1);
        if self.lines {
            let elapsed = self.started.elapsed().as_secs_f64();
            eprintln!("bench: {}/{} runs, {elapsed:.1} s: {done}", self.bar.position(), self.total);
        } else {
            self.bar.set_message(done);
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Fails with a usage error (exit 2) before any measuring if `path`
/// cannot be written.
fn check_writable(flag: &str, path: &std::path::Path) -> Result<(), UsageError> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let probe = dir.join(format!(".xevtchn-bench-{}", std::process::id()));
    fs::write(&probe, b"")
        .and_then(|()| fs::remove_file(&probe))
        .map_err(|e| UsageError(format!("cannot write {flag} {}: {e}", path.display())))
}

fn print_table(report: &BenchReport) {
    println!("{} vCPUs, {} interleaved runs per backend; median [min - max]", report.vcpus, report.repeat);
    println!("latency: one-way, send to the guest's handler; the median over runs of each run's percentile");
    println!(
        "cpu/send: this process's CPU time (every thread, guest time included) over sends; \
         pingpong's vCPUs spin while they wait, so its figure is mostly that spinning"
    );
    if report.repeat < 3 {
        println!(
            "note: with --repeat {} the [min - max] spread is too few runs to judge; use --repeat 5",
            report.repeat
        );
    }
    if let Some(t) = &report.trace_overhead {
        let s = |x: &bench::summary::Spread| format!("{:.0} [{:.0}-{:.0}]", x.median, x.min, x.max);
        let r = |x: &bench::summary::Spread| format!("{:.3}x [{:.3}-{:.3}]", x.median, x.min, x.max);
        println!(
            "\nflood on bpf, the tracer attached and detached in {} ms windows ({} per state per run):\n\
             \x20 untraced                     {} sends/s\n\
             \x20 traced (xevtchn trace)       {} sends/s, {} of untraced\n\
             \x20 traced, timing every send    {} sends/s, {}\n\
             \x20 traced, counting MSIs        {} sends/s, {}\n\
             (ratios per run, median [min - max])",
            t.window_ms,
            t.windows,
            s(&t.sends_per_s_untraced),
            s(&t.sends_per_s_traced),
            r(&t.throughput_traced_over_untraced),
            s(&t.sends_per_s_traced_every_send_timed),
            r(&t.throughput_every_send_timed_over_untraced),
            s(&t.sends_per_s_traced_with_msi),
            r(&t.throughput_with_msi_over_untraced),
        );
    }
    if let Some(s) = &report.scale {
        println!("\nflood on a VM the service serves, beside other registered (paused) VMs:");
        for l in &s.levels {
            let x = &l.sends_per_s;
            println!("  {:>2} other VMs: {:.0} [{:.0}-{:.0}] sends/s", l.other_vms, x.median, x.min, x.max);
        }
        println!(
            "  worst/best {:.3}x; per registered VM: {:.1} KiB of BPF maps, {:.0} bytes of per-CPU memory",
            s.worst_over_best,
            s.map_bytes_per_vm / 1024.0,
            s.percpu_bytes_per_vm
        );
    }
    for w in &report.workloads {
        let rebind = w.workload == Workload::Rebind;
        let mut header = vec!["backend", "sends/s", "latency µs p50 / p90 / p99", "exits/send", "cpu µs/send"];
        if rebind {
            header.push("moves/s");
        }
        let mut table = comfy_table::Table::new();
        table.load_style(comfy_table::presets::UTF8_BORDERS_ONLY).set_header(header);
        for b in &w.backends {
            // Latency needs samples: flood's coalesced sends have none.
            let spread = |x: &bench::summary::Spread| {
                if x.max == 0.0 { "-".to_string() } else { format!("{:.0} [{:.0}-{:.0}]", x.median, x.min, x.max) }
            };
            // Latency medians only (the spreads are in --json): one column.
            let latency = if b.latency_ns.n == 0 {
                "-".to_string()
            } else {
                let us = |x: &bench::summary::Spread| x.median / 1000.0;
                format!("{:.1} / {:.1} / {:.1}", us(&b.per_run_p50_ns), us(&b.per_run_p90_ns), us(&b.per_run_p99_ns))
            };
            let mut row = vec![
                format!("{:?}", b.backend).to_lowercase(),
                spread(&b.sends_per_s),
                latency,
                format!("{:.3}", b.exits_per_send.median),
                format!("{:.1}", b.cpu_ns_per_send.median / 1000.0),
            ];
            if rebind {
                row.push(spread(&b.moves_per_s));
            }
            table.add_row(row);
        }
        let r = &w.ratios;
        println!("\n{}\n{table}", workload_name(w.workload));
        let counts: Vec<String> = w
            .backends
            .iter()
            .map(|b| {
                let backend = format!("{:?}", b.backend).to_lowercase();
                let measured: u64 = b.runs.iter().map(|s| s.latency_ns.n).sum();
                if measured == b.latency_ns.n {
                    format!("{backend} {measured}")
                } else {
                    format!("{backend} {} of {measured}", b.latency_ns.n)
                }
            })
            .collect();
        println!(
            "latency samples behind the percentiles: {} (a run with fewer than {} gives none: -)",
            counts.join(", "),
            bench::MIN_LATENCY_SAMPLES
        );
        if rebind {
            println!("ports moved per second bpf/userspace {:.2}x", r.moves_bpf_over_userspace);
        }
        // A ratio of 0 has no samples on one side (flood's coalesced sends).
        let x = |r: f64| if r == 0.0 { "-".to_string() } else { format!("{r:.2}x") };
        let lx = |r: Option<f64>| r.map_or_else(|| "-".to_string(), x);
        println!(
            "throughput bpf/userspace {}, bpf/bare {}; p50 userspace/bpf {}; p99 userspace/bpf {}; cpu per send userspace/bpf {}",
            x(r.throughput_bpf_over_userspace),
            x(r.throughput_bpf_over_bare),
            lx(r.p50_userspace_over_bpf),
            lx(r.p99_userspace_over_bpf),
            x(r.cpu_per_send_userspace_over_bpf)
        );
    }
}

/// A workload as the command line names it.
fn workload_name(w: Workload) -> String {
    clap::ValueEnum::to_possible_value(&w).map_or_else(|| format!("{w:?}"), |v| v.get_name().to_string())
}
