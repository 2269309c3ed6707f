//! What `xevtchn trace` costs the traced VM: flood on bpf, with the
//! tracing programs attached and detached in alternate windows of one run.
//! Measuring within one VM cancels what differs between VMs on this shared
//! machine (where their threads land, what else runs), which is larger
//! than the effect measured.

use std::{
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::{
    BenchConfig,
    summary::{Spread, ratio},
};
use crate::{
    run::{self, Backend, Callback, RunConfig, Watch, Workload},
    trace::bpf::{TraceOptions, Tracer},
};

/// What the tracer is doing during a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Untraced,
    /// As `xevtchn trace` attaches by default.
    Traced,
    /// Timing every send and injection (`--latency-sample 1`).
    EverySendTimed,
    /// Counting MSIs too (`--msi`).
    WithMsi,
}

impl Arm {
    /// The tracer's options in this arm for VMM process `tgid` (None: detached).
    fn options(self, tgid: u32) -> Option<TraceOptions> {
        let default = TraceOptions::new(tgid);
        match self {
            Arm::Untraced => None,
            Arm::Traced => Some(default),
            Arm::EverySendTimed => Some(TraceOptions { time_one_in: 1, ..default }),
            Arm::WithMsi => Some(TraceOptions { msi: true, ..default }),
        }
    }
}

/// One cycle of windows, a palindrome: a drift that is linear over a
/// cycle costs every arm alike.
const CYCLE: [Arm; 8] = [
    Arm::Untraced,
    Arm::Traced,
    Arm::EverySendTimed,
    Arm::WithMsi,
    Arm::WithMsi,
    Arm::EverySendTimed,
    Arm::Traced,
    Arm::Untraced,
];
const CYCLES: usize = 3;
const WINDOW: Duration = Duration::from_millis(300);
const TOGGLE_ALLOWANCE: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Serialize)]
pub struct TraceOverhead {
    pub window_ms: u64,
    /// Windows of each arm per run.
    pub windows: usize,
    /// Sends/s of every window of every run, per arm.
    pub sends_per_s_untraced: Spread,
    pub sends_per_s_traced: Spread,
    pub sends_per_s_traced_every_send_timed: Spread,
    pub sends_per_s_traced_with_msi: Spread,
    /// Per run: the median of its traced windows over the median of its
    /// untraced ones; the spread over the runs (target: median >= 0.9).
    pub throughput_traced_over_untraced: Spread,
    pub throughput_every_send_timed_over_untraced: Spread,
    pub throughput_with_msi_over_untraced: Spread,
    /// Every window of every run, in order.
    pub runs: Vec<Windows>,
}

/// Sends/s of each window, in `CYCLE` order, repeated `CYCLES` times.
type Windows = Vec<(Arm, f64)>;

/// `config.repeat` flood runs on bpf, each measured in windows.
pub fn trace_overhead(config: &BenchConfig, mut progress: impl FnMut(u32)) -> Result<TraceOverhead> {
    let mut runs = Vec::new();
    for round in 0..config.repeat {
        runs.push(windowed_run(config.vcpus)?);
        progress(round);
    }
    let all: Windows = runs.iter().flatten().copied().collect();
    let rates = |arm: Arm| Spread::of(&rates_of(&all, arm));
    // Per run, so that what differs between VMs cancels.
    let over_untraced = |arm: Arm| {
        let per_run: Vec<f64> = runs
            .iter()
            .map(|w| ratio(Spread::of(&rates_of(w, arm)).median, Spread::of(&rates_of(w, Arm::Untraced)).median))
            .collect();
        Spread::of(&per_run)
    };
    Ok(TraceOverhead {
        window_ms: WINDOW.as_millis() as u64,
        windows: CYCLES * CYCLE.iter().filter(|&&a| a == Arm::Untraced).count(),
        sends_per_s_untraced: rates(Arm::Untraced),
        sends_per_s_traced: rates(Arm::Traced),
        sends_per_s_traced_every_send_timed: rates(Arm::EverySendTimed),
        sends_per_s_traced_with_msi: rates(Arm::WithMsi),
        throughput_traced_over_untraced: over_untraced(Arm::Traced),
        throughput_every_send_timed_over_untraced: over_untraced(Arm::EverySendTimed),
        throughput_with_msi_over_untraced: over_untraced(Arm::WithMsi),
        runs,
    })
}

fn rates_of(windows: &[(Arm, f64)], arm: Arm) -> Vec<f64> {
    windows.iter().filter(|(a, _)| *a == arm).map(|&(_, r)| r).collect()
}

/// One flood VM on bpf, long enough for every window; the tracer, loaded
/// beforehand, traces this process and is attached window by window, and
/// reads its maps once in each window it is attached.
fn windowed_run(vcpus: u32) -> Result<Windows> {
    let mut tracer = Tracer::attach_self(TraceOptions::new(0)).context("attaching the tracer")?;
    tracer.detach().context("detaching the tracer")?;
    let windows = (CYCLES * CYCLE.len()) as u32;
    let run = RunConfig {
        backend: Backend::Bpf,
        workload: Workload::Flood,
        vcpus: vcpus.max(Workload::Flood.min_vcpus()),
        count: 0,
        // Room for the guest's set-up, and for each window's attach or
        // detach (detaching waits for RCU grace periods: ~0.1 s here).
        duration: Some((WINDOW + TOGGLE_ALLOWANCE) * windows + Duration::from_secs(1)),
        callback: Callback::Vector,
        timeout: Duration::from_secs(120),
        shared_info_in_ram: false,
        rate: None,
        service: None,
        seed: None,
    };
    let (report, windows) = run::execute_watched(&run, move |watch| measure_windows(&watch, &mut tracer))
        .context("flood on bpf, traced in windows")?;
    if !report.is_clean() {
        bail!(
            "the traced flood was not clean: lost {}, errors {} ({:?})",
            report.lost,
            report.errors,
            report.first_error
        );
    }
    windows
}

/// Waits for the flood to start, then measures each window's send rate
/// with the tracer in that window's state.
fn measure_windows(watch: &Watch, tracer: &mut Tracer) -> Result<Windows> {
    let sends = || watch.fast_sends().context("the bpf backend has no fast path");
    while sends()? == 0 {
        if watch.finished() {
            bail!("the flood ended before it started sending");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let tgid = tracer.tgid();
    let mut windows = Vec::new();
    for arm in CYCLE.iter().cycle().take(CYCLES * CYCLE.len()) {
        match arm.options(tgid) {
            None => tracer.detach()?,
            Some(options) => tracer.reattach(options)?,
        }
        let (before, start) = (sends()?, Instant::now());
        thread::sleep(WINDOW / 2);
        if arm.options(tgid).is_some() {
            // As `xevtchn trace` reads its maps (it does every second).
            tracer.snapshot()?;
        }
        thread::sleep(WINDOW.saturating_sub(start.elapsed()));
        let (after, seconds) = (sends()?, start.elapsed().as_secs_f64());
        if watch.finished() {
            bail!("the flood ended during window {} of {}", windows.len() + 1, CYCLES * CYCLE.len());
        }
        windows.push((*arm, (after - before) as f64 / seconds));
    }
    tracer.detach()?;
    Ok(windows)
}
