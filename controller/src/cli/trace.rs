//! `xevtchn trace`: watch upcall delivery in any KVM process, live.

use std::{
    io::IsTerminal,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::run::UsageError;
use xevtchn_common::trace::{EVENT_SEND, EVENT_XEN_HYPERCALL, TraceEvent};

use crate::{
    bpf::trace::{DEFAULT_TIME_ONE_IN, TraceOptions, Tracer},
    trace::{
        report::{Interval, interval},
        target::check_kvm_process,
        view::LiveView,
        xen_hypercall,
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
    /// One line per send (its timestamps and path) and per Xen hypercall,
    /// instead of the interval reports.
    #[arg(long)]
    pub events: bool,
    /// JSON lines: one object per interval (per event with --events), then
    /// one with the totals.
    #[arg(long)]
    pub json: bool,
    /// Time one send in N of each vCPU thread, and one injection in N of
    /// each APIC and vector, for the latency histograms (a power of two;
    /// 1: every one). Reading the clock is the
    /// dearest step of a hook; counts are exact whatever N is. --events
    /// times every send.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TIME_ONE_IN,
          value_parser = latency_sample)]
    pub latency_sample: u32,
    /// Also count MSIs (kvm_msi_set_irq). Off by default: on the hosts
    /// measured, each program on an in-kernel send's path cost flood about
    /// 3% of its rate, and this would be the third.
    #[arg(long)]
    pub msi: bool,
}

fn latency_sample(text: &str) -> Result<u32, String> {
    let n: u32 = text.parse().map_err(|_| format!("{text} is not a whole number"))?;
    if n == 0 || !n.is_power_of_two() || n > 1 << 20 {
        return Err(format!("{n} is not a power of two between 1 and {}", 1 << 20));
    }
    Ok(n)
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
    let options = TraceOptions {
        tgid: args.pid.unwrap_or(0),
        events: args.events,
        time_one_in: args.latency_sample,
        msi: args.msi,
    };
    let mut tracer = Tracer::attach(options).context("attaching the tracing programs")?;
    if std::io::stdout().is_terminal() && !args.json && !args.events {
        return live(args, &mut tracer);
    }
    let events = if args.events { tracer.take_events() } else { None };
    eprintln!("xevtchn: tracing {}; Ctrl-C to stop", what(args));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let start = Instant::now();
    let first = tracer.snapshot()?;
    let mut last = first.clone();
    let mut last_at = start;
    let deadline = args.duration.map(|d| start + Duration::from_secs_f64(d));
    runtime.block_on(async {
        if let Some(ring) = events {
            let json = args.json;
            let a4_recorded = xen_hypercall::kernel_records_a4(&kernel_release());
            // SAFETY: the ring buffer owns its map fd, which reading neither
            // closes nor replaces.
            let mut ring =
                unsafe { tokio::io::unix::AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
                    .map_err(|e| anyhow::anyhow!("watching the event ring buffer: {e}"))?;
            tokio::spawn(async move {
                while let Ok(mut ready) = ring.readable_mut().await {
                    while let Some(item) = ready.get_inner_mut().next() {
                        print_event(json, &item, a4_recorded);
                    }
                    ready.clear_ready();
                }
            });
        }
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            let report_at = last_at + Duration::from_millis(args.interval);
            let stop = tokio::select! {
                _ = tokio::time::sleep(next_wait(report_at, deadline)) => false,
                _ = &mut ctrl_c => true,
            };
            let exited = args.pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists());
            let done = stop || exited || deadline.is_some_and(|d| Instant::now() >= d);
            if Instant::now() >= report_at || done {
                let now = tracer.snapshot()?;
                let at = Instant::now();
                if !args.events {
                    print(args.json, "interval", &interval(&last, &now, (at - last_at).as_secs_f64()))?;
                }
                (last, last_at) = (now, at);
            }
            if exited {
                eprintln!("xevtchn: process {} exited; detaching", args.pid.unwrap_or(0));
            }
            if done {
                return anyhow::Ok(());
            }
        }
    })?;
    print(args.json, "total", &interval(&first, &last, (last_at - start).as_secs_f64()))?;
    if args.events {
        let dropped = tracer.dropped_events()?;
        if dropped > 0 {
            eprintln!("xevtchn: {dropped} events did not fit the ring buffer and were dropped");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The live view, until q / Esc / Ctrl-C, the duration, or the traced
/// process exiting; then the totals as plain text.
fn live(args: &TraceArgs, tracer: &mut Tracer) -> Result<ExitCode> {
    let what = what(args);
    let start = Instant::now();
    let first = tracer.snapshot()?;
    let (mut last, mut last_at) = (first.clone(), start);
    let deadline = args.duration.map(|d| start + Duration::from_secs_f64(d));
    {
        let mut view = LiveView::start().context("starting the terminal view")?;
        view.draw(&format!("xevtchn trace: {what}"), &interval(&last, &last, 0.0))?;
        loop {
            let report_at = last_at + Duration::from_millis(args.interval);
            let quit = LiveView::quit_requested(next_wait(report_at, deadline))?;
            if Instant::now() >= report_at || quit {
                let now = tracer.snapshot()?;
                let at = Instant::now();
                view.draw(&format!("xevtchn trace: {what}"), &interval(&last, &now, (at - last_at).as_secs_f64()))?;
                (last, last_at) = (now, at);
            }
            let exited = args.pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists());
            if quit || exited || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
    }
    let now = tracer.snapshot()?;
    print(false, "total", &interval(&first, &now, start.elapsed().as_secs_f64()))?;
    Ok(ExitCode::SUCCESS)
}

/// How long to wait: until the next report or the deadline, whichever
/// comes first.
fn next_wait(report_at: Instant, deadline: Option<Instant>) -> Duration {
    deadline.map_or(report_at, |d| d.min(report_at)).saturating_duration_since(Instant::now())
}

/// What is traced, and how finely, in words.
fn what(args: &TraceArgs) -> String {
    let whom = args.pid.map_or("every KVM process".to_string(), |p| format!("KVM process {p}"));
    let timed = match (args.events, args.latency_sample) {
        (true, _) | (_, 1) => "every send timed".to_string(),
        (_, n) => format!("1 send in {n} timed"),
    };
    format!("{whom} ({timed}{})", if args.msi { ", MSIs counted" } else { "" })
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string()
}

#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum EventLine {
    Send {
        pid: u32,
        tid: u32,
        apicid: u32,
        vector: u32,
        path: &'static str,
        send_ns: u64,
        inject_ns: u64,
        latency_ns: u64,
    },
    XenHypercall {
        pid: u32,
        tid: u32,
        at_ns: u64,
        #[serde(flatten)]
        call: xen_hypercall::XenHypercall,
    },
}

fn print_event(json: bool, bytes: &[u8], a4_recorded: bool) {
    if bytes.len() < size_of::<TraceEvent>() {
        return;
    }
    // SAFETY: the program wrote a TraceEvent (repr(C), integers and bytes
    // only), and the buffer holds at least that many bytes.
    let e: TraceEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    let line = match e.kind {
        EVENT_SEND => EventLine::Send {
            pid: e.tgid,
            tid: e.tid,
            apicid: e.apicid,
            vector: e.vector,
            path: if e.via_userspace != 0 { "userspace" } else { "kernel" },
            send_ns: e.send_ns,
            inject_ns: e.inject_ns,
            latency_ns: e.inject_ns.saturating_sub(e.send_ns),
        },
        EVENT_XEN_HYPERCALL => match xen_hypercall::decode(&e.record, a4_recorded) {
            Ok(call) => EventLine::XenHypercall { pid: e.tgid, tid: e.tid, at_ns: e.send_ns, call },
            Err(_) => return,
        },
        _ => return,
    };
    if json {
        if let Ok(text) = serde_json::to_string(&line) {
            println!("{text}");
        }
        return;
    }
    match line {
        EventLine::Send { pid, tid, apicid, vector, path, send_ns, inject_ns, latency_ns } => println!(
            "send pid {pid} tid {tid} -> apic {apicid} vector {vector:#04x} via {path}: sent {send_ns} injected {inject_ns} ({latency_ns} ns)"
        ),
        EventLine::XenHypercall { pid, tid, at_ns, call } => println!(
            "xen hypercall pid {pid} tid {tid} at {at_ns}: {} {} args {:?}",
            call.name,
            call.op.unwrap_or(""),
            call.args
        ),
    }
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
    if !i.ports.is_empty() {
        let busiest: Vec<String> = i.ports.iter().take(8).map(|p| format!("{}:{}", p.port, p.sends)).collect();
        println!("sends by port (port:sends): {}", busiest.join(" "));
    }
    for vm in &i.vms {
        println!(
            "pid {}: {:.0} sends/s ({} in kernel, {} via userspace: {} injected, {} not), {} userspace exits, {} MMIO, {} MSIs, {} wakeups",
            vm.pid,
            vm.sends_per_s,
            vm.sends_in_kernel,
            vm.sends_to_userspace,
            vm.userspace_sends_injected,
            vm.userspace_sends_not_injected,
            vm.userspace_exits,
            vm.mmio,
            vm.msi_set_irq.map_or("-".to_string(), |n| n.to_string()),
            vm.vcpu_wakeups
        );
        for v in &vm.fast_path {
            println!(
                "  vcpu {:>2}: {:>8.0} fast sends/s: {} raised, {} coalesced, {} masked, {} already pending; {} spurious injections",
                v.vcpu,
                v.fast_sends_per_s,
                v.outcomes.raised,
                v.outcomes.coalesced,
                v.outcomes.masked,
                v.outcomes.already_pending,
                v.spurious_injections
            );
        }
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

#[cfg(test)]
mod tests {
    use super::latency_sample;

    #[test]
    fn latency_samples_are_powers_of_two() {
        assert_eq!(latency_sample("1"), Ok(1));
        assert_eq!(latency_sample("64"), Ok(64));
        for bad in ["0", "3", "x", "-4", "2097152"] {
            assert!(latency_sample(bad).is_err(), "{bad}");
        }
    }
}
