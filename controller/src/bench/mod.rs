//! `xevtchn bench`: the backends side by side, interleaved (userspace, bpf,
//! userspace, bpf, ...) so that drift of this shared machine hits both alike.

pub mod plot;
pub mod scale;
pub mod summary;
pub mod trace_overhead;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::{
    run::{self, Backend, Callback, RunConfig, Workload},
    schema::Percentiles,
};
use summary::{Spread, ratio};
pub use trace_overhead::TraceOverhead;

/// Userspace (the baseline), bpf (the fast path), and the bare
/// ioeventfd + irqfd chain (the kernel's own limit, as a reference).
pub const BACKENDS: [Backend; 3] = [Backend::Userspace, Backend::Bpf, Backend::Bare];

/// The backends `workload` is measured on: the bare chain has no event
/// channels, so no ports to move (rebind).
pub fn backends(workload: Workload) -> &'static [Backend] {
    match workload {
        Workload::Rebind => &BACKENDS[..2],
        _ => &BACKENDS,
    }
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub workloads: Vec<Workload>,
    pub vcpus: u32,
    pub repeat: u32,
    /// Round trips for pingpong.
    pub pingpong_count: u64,
    /// How long flood, fanout and rebind senders run.
    pub duration: Duration,
    /// Sends per second of each rebind sender, on every backend alike.
    pub rebind_rate: u32,
}

/// Rebind's senders are paced: at full speed the moving vCPU, whenever a
/// port moves to it, spends its time in its upcall handler (emulated CPL0
/// code on this host kind), and moves/s would measure that, not moves.
pub const REBIND_RATE: u32 = 5000;

/// A run's latency percentiles count only if they come from this many
/// measured sends: below it p99 is the maximum of a handful (flood coalesces
/// almost every send and may measure 3).
pub const MIN_LATENCY_SAMPLES: u64 = 100;

/// One run's figures.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RunFigures {
    pub sends_per_s: f64,
    /// The run's one-way latencies (its measured sends).
    pub latency_ns: Percentiles,
    pub exits_per_send: f64,
    /// Host CPU time (user + system, all threads of this process: the vCPU
    /// threads, guest time included) per send, in nanoseconds; and its parts.
    pub cpu_ns_per_send: f64,
    pub cpu_user_ns_per_send: f64,
    pub cpu_system_ns_per_send: f64,
    /// Ports moved per second (rebind; 0 otherwise).
    pub moves_per_s: f64,
    pub lost: u64,
}

impl RunFigures {
    /// The run measured enough sends for its percentiles to count.
    pub fn latency_counts(&self) -> bool {
        self.latency_ns.n >= MIN_LATENCY_SAMPLES
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendResult {
    pub backend: Backend,
    pub sends_per_s: Spread,
    /// Every measured send of the runs with at least MIN_LATENCY_SAMPLES of
    /// them, pooled.
    pub latency_ns: Percentiles,
    /// The same runs' own p50, p90 and p99 over the runs (the table's
    /// figures and the ratios').
    pub per_run_p50_ns: Spread,
    pub per_run_p90_ns: Spread,
    pub per_run_p99_ns: Spread,
    pub exits_per_send: Spread,
    pub cpu_ns_per_send: Spread,
    pub cpu_user_ns_per_send: Spread,
    pub cpu_system_ns_per_send: Spread,
    pub moves_per_s: Spread,
    pub lost: u64,
    /// One entry per run, in the order they ran.
    pub runs: Vec<RunFigures>,
    /// `latency_ns`'s distribution: (nanoseconds, fraction of samples at or
    /// below), 200 points at most.
    pub latency_cdf: Vec<(u64, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub throughput_bpf_over_userspace: f64,
    pub throughput_bpf_over_bare: f64,
    /// None when either side has too few latency samples.
    pub p50_userspace_over_bpf: Option<f64>,
    pub p99_userspace_over_bpf: Option<f64>,
    pub cpu_per_send_userspace_over_bpf: f64,
    /// Ports moved per second (rebind), bpf over userspace.
    pub moves_bpf_over_userspace: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    pub workload: Workload,
    pub backends: Vec<BackendResult>,
    pub ratios: Ratios,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// schema::BENCH.
    pub schema: &'static str,
    pub vcpus: u32,
    pub repeat: u32,
    pub workloads: Vec<WorkloadResult>,
    pub trace_overhead: Option<TraceOverhead>,
    /// Flood with other registered VMs beside it (`--scale`).
    pub scale: Option<scale::ScaleReport>,
}

/// `f(user) / f(bpf)`, when both backends measured latency.
fn latency_ratio(user: &BackendResult, bpf: &BackendResult, f: fn(&BackendResult) -> f64) -> Option<f64> {
    (user.latency_ns.n > 0 && bpf.latency_ns.n > 0).then(|| ratio(f(user), f(bpf)))
}

/// User and system CPU time of this process (all threads) so far.
fn cpu_time() -> (Duration, Duration) {
    // SAFETY: getrusage writes the struct we pass; RUSAGE_SELF is valid.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(usage.ru_utime), tv(usage.ru_stime))
}

fn measure(config: &BenchConfig, workload: Workload, backend: Backend) -> Result<(RunFigures, Vec<u64>)> {
    let run = RunConfig {
        backend,
        workload,
        vcpus: config.vcpus.max(workload.min_vcpus()),
        count: config.pingpong_count,
        duration: (workload != Workload::Pingpong).then_some(config.duration),
        callback: Callback::Vector,
        timeout: Duration::from_secs(120),
        shared_info_in_ram: false,
        rate: (workload == Workload::Rebind).then_some(config.rebind_rate),
        service: None,
        seed: None,
    };
    let before = cpu_time();
    let r = run::execute(&run).with_context(|| format!("{workload:?} on {backend:?}"))?;
    let after = cpu_time();
    let (user, system) = (after.0 - before.0, after.1 - before.1);
    if !r.is_clean() {
        bail!("{workload:?} on {backend:?} was not clean: lost {}, errors {} ({:?})", r.lost, r.errors, r.first_error);
    }
    let sent = r.sent.max(1) as f64;
    let sample = RunFigures {
        sends_per_s: r.sends_per_s,
        latency_ns: r.latency_ns,
        exits_per_send: r.userspace_exits as f64 / sent,
        cpu_ns_per_send: (user + system).as_nanos() as f64 / sent,
        cpu_user_ns_per_send: user.as_nanos() as f64 / sent,
        cpu_system_ns_per_send: system.as_nanos() as f64 / sent,
        moves_per_s: r.moves_per_s.unwrap_or(0.0),
        lost: r.lost,
    };
    Ok((sample, r.latency_samples_ns))
}

/// The empirical CDF of `ns`, thinned to at most `points` points.
fn cdf(mut ns: Vec<u64>, points: usize) -> Vec<(u64, f64)> {
    ns.sort_unstable();
    let n = ns.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(points).max(1);
    let mut out: Vec<(u64, f64)> = (step - 1..n).step_by(step).map(|i| (ns[i], (i + 1) as f64 / n as f64)).collect();
    if out.last().map(|&(_, f)| f) != Some(1.0) {
        out.push((ns[n - 1], 1.0));
    }
    out
}

/// Runs the matrix; `progress` is told after each run.
pub fn run(config: &BenchConfig, mut progress: impl FnMut(Workload, Backend, u32)) -> Result<BenchReport> {
    let mut samples = vec![vec![Vec::new(); BACKENDS.len()]; config.workloads.len()];
    let mut latencies = vec![vec![Vec::new(); BACKENDS.len()]; config.workloads.len()];
    for round in 0..config.repeat {
        for (w, workload) in config.workloads.iter().enumerate() {
            for (b, backend) in backends(*workload).iter().enumerate() {
                let (sample, ns) = measure(config, *workload, *backend)?;
                if sample.latency_counts() {
                    latencies[w][b].extend(ns);
                }
                samples[w][b].push(sample);
                progress(*workload, *backend, round);
            }
        }
    }
    let workloads = config
        .workloads
        .iter()
        .zip(samples.into_iter().zip(latencies))
        .map(|(workload, (per_backend, per_backend_ns))| {
            let backends: Vec<BackendResult> = backends(*workload)
                .iter()
                .zip(per_backend.into_iter().zip(per_backend_ns))
                .map(|(backend, (s, ns))| {
                    let spread = |f: fn(&RunFigures) -> f64| Spread::of(&s.iter().map(f).collect::<Vec<_>>());
                    // Runs with too few latency samples (flood coalesces
                    // nearly every send) give no percentiles.
                    let per_run = |f: fn(&Percentiles) -> Option<u64>| {
                        let values: Vec<f64> = s
                            .iter()
                            .filter(|x| x.latency_counts())
                            .filter_map(|x| f(&x.latency_ns))
                            .map(|v| v as f64)
                            .collect();
                        Spread::of(&values)
                    };
                    BackendResult {
                        backend: *backend,
                        sends_per_s: spread(|x| x.sends_per_s),
                        latency_ns: Percentiles::of_samples(ns.clone()),
                        per_run_p50_ns: per_run(|p| p.p50),
                        per_run_p90_ns: per_run(|p| p.p90),
                        per_run_p99_ns: per_run(|p| p.p99),
                        exits_per_send: spread(|x| x.exits_per_send),
                        cpu_ns_per_send: spread(|x| x.cpu_ns_per_send),
                        cpu_user_ns_per_send: spread(|x| x.cpu_user_ns_per_send),
                        cpu_system_ns_per_send: spread(|x| x.cpu_system_ns_per_send),
                        moves_per_s: spread(|x| x.moves_per_s),
                        lost: s.iter().map(|x| x.lost).sum(),
                        runs: s,
                        latency_cdf: cdf(ns, 200),
                    }
                })
                .collect();
            let (user, bpf) = (&backends[0], &backends[1]);
            let bare = backends.get(2).map_or(0.0, |b| b.sends_per_s.median);
            let ratios = Ratios {
                throughput_bpf_over_userspace: ratio(bpf.sends_per_s.median, user.sends_per_s.median),
                throughput_bpf_over_bare: ratio(bpf.sends_per_s.median, bare),
                moves_bpf_over_userspace: ratio(bpf.moves_per_s.median, user.moves_per_s.median),
                p50_userspace_over_bpf: latency_ratio(user, bpf, |b| b.per_run_p50_ns.median),
                p99_userspace_over_bpf: latency_ratio(user, bpf, |b| b.per_run_p99_ns.median),
                cpu_per_send_userspace_over_bpf: ratio(user.cpu_ns_per_send.median, bpf.cpu_ns_per_send.median),
            };
            WorkloadResult { workload: *workload, backends, ratios }
        })
        .collect();
    Ok(BenchReport {
        schema: crate::schema::BENCH,
        vcpus: config.vcpus,
        repeat: config.repeat,
        workloads,
        trace_overhead: None,
        scale: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_ends_at_one_and_is_monotonic() {
        let points = cdf((1..=1000).rev().collect(), 10);
        assert_eq!(points.last(), Some(&(1000, 1.0)));
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        assert!(points.len() <= 11);
        assert!(cdf(vec![], 10).is_empty());
    }
}
