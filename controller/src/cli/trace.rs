//! `xevtchn trace`: the command line. What it shows is built in `trace`.

use std::{
    io::IsTerminal,
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::{run::UsageError, signals};
use crate::{
    schema,
    trace::{
        bpf::{DEFAULT_TIME_ONE_IN, TraceOptions, Tracer},
        events::{self, EventLine},
        report::Interval,
        sampler::{Sampler, wait_until},
        target::check_kvm_process,
        text,
        view::LiveView,
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
    #[arg(long, conflicts_with = "interval")]
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
    schema: &'static str,
    /// "interval", or "total" (from the start to the end).
    kind: &'a str,
    /// From the trace's start to the interval's end, and that end as
    /// wall-clock time, to join these lines with other tools' records.
    since_start_s: f64,
    unix_time_s: f64,
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
    let mut sampler = Sampler::start(&mut tracer)?;
    let deadline = args.duration.map(|d| Instant::now() + Duration::from_secs_f64(d));
    let every = Duration::from_millis(args.interval);
    runtime.block_on(async {
        if let Some(ring) = events {
            let mut printer =
                EventPrinter { json: args.json, start_ns: events::monotonic_ns(), names: Default::default() };
            let a4_recorded = events::kernel_records_a4();
            // SAFETY: the ring buffer owns its map fd, which reading neither
            // closes nor replaces.
            let mut ring =
                unsafe { tokio::io::unix::AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
                    .map_err(|e| anyhow::anyhow!("watching the event ring buffer: {e}"))?;
            tokio::spawn(async move {
                while let Ok(mut ready) = ring.readable_mut().await {
                    while let Some(item) = ready.get_inner_mut().next() {
                        if let Some(line) = events::decode(&item, a4_recorded) {
                            printer.print(&line);
                        }
                    }
                    ready.clear_ready();
                }
            });
        }
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            let due = sampler.due(every);
            // SIGINT or SIGTERM: the last interval and the totals, then exit.
            let stop = tokio::select! {
                _ = tokio::time::sleep(wait_until(due, deadline)) => false,
                _ = &mut ctrl_c => true,
                _ = terminate.recv() => true,
            };
            let exited = traced_process_exited(args);
            let done = stop || exited || deadline.is_some_and(|d| Instant::now() >= d);
            if Instant::now() >= due || done {
                let i = sampler.next(&mut tracer)?;
                if !args.events {
                    print(args.json, "interval", &i, &sampler)?;
                }
            }
            if exited {
                eprintln!("xevtchn: process {} exited; detaching", args.pid.unwrap_or(0));
            }
            if done {
                return anyhow::Ok(());
            }
        }
    })?;
    print(args.json, "total", &sampler.total(), &sampler)?;
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
    let title = format!("xevtchn trace: {}", what(args));
    let mut sampler = Sampler::start(tracer)?;
    let deadline = args.duration.map(|d| Instant::now() + Duration::from_secs_f64(d));
    let every = Duration::from_millis(args.interval);
    let signalled = signals::stop_flag()?;
    {
        let mut view = LiveView::start(&title).context("starting the terminal view")?;
        view.draw(&sampler.nothing_yet())?;
        loop {
            let due = sampler.due(every);
            // At most 200 ms between looks at SIGINT/SIGTERM.
            let wait = wait_until(due, deadline).min(Duration::from_millis(200));
            let quit = view.quit_requested(wait)? || signals::raised(&signalled);
            if Instant::now() >= due || quit {
                view.draw(&sampler.next(tracer)?)?;
            }
            if quit || traced_process_exited(args) || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
    }
    sampler.next(tracer)?;
    print(false, "total", &sampler.total(), &sampler)?;
    Ok(ExitCode::SUCCESS)
}

fn traced_process_exited(args: &TraceArgs) -> bool {
    args.pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists())
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

/// Prints `--events` lines: times since the trace began and thread names
/// in text; in JSON also the kernel's absolute times, to join with others.
struct EventPrinter {
    json: bool,
    start_ns: u64,
    names: events::ThreadNames,
}

#[derive(Serialize)]
struct EventJson<'a> {
    schema: &'static str,
    since_start_ns: u64,
    comm: &'a str,
    #[serde(flatten)]
    line: &'a EventLine,
}

impl EventPrinter {
    fn print(&mut self, line: &EventLine) {
        let since_start_ns = line.at_ns().saturating_sub(self.start_ns);
        let pid = match line {
            EventLine::Send { pid, .. } | EventLine::XenHypercall { pid, .. } => *pid,
        };
        let comm = self.names.of(pid, line.tid());
        if !self.json {
            text::print_event(since_start_ns as f64 / 1e9, comm, line);
        } else if let Ok(text) =
            serde_json::to_string(&EventJson { schema: schema::TRACE_EVENT, since_start_ns, comm, line })
        {
            println!("{text}");
        }
    }
}

fn print(json: bool, kind: &str, i: &Interval, sampler: &Sampler) -> Result<()> {
    if json {
        let unix_time_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let line = Line {
            schema: schema::TRACE_INTERVAL,
            kind,
            since_start_s: sampler.since_start().as_secs_f64(),
            unix_time_s: unix_time_s.as_secs_f64(),
            interval: i,
        };
        println!("{}", serde_json::to_string(&line)?);
    } else {
        text::print_interval(kind, i);
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
