//! The fast path as host infrastructure, measured: flood's rate on a VM
//! served by an `xevtchn serve` that also serves 0, 8 and 32 other VMs
//! (paused with SIGSTOP once registered, so that they cost only their
//! registration), side by side in one run; and the kernel memory each
//! registered VM costs (its maps' memlock, and the host's per-CPU memory).
//! Levels go up and down in each round (0, 8, 32, 32, 8, 0), so that drift
//! hits every level alike.

use std::{
    os::fd::{AsFd, AsRawFd},
    path::PathBuf,
    process::{Child, Command, Stdio},
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
    run::{self, Backend, Callback, RunConfig, Workload},
    service::client,
};

/// Other registered VMs at each level.
pub const LEVELS: [usize; 3] = [0, 8, 32];

#[derive(Debug, Clone, Serialize)]
pub struct ScaleLevel {
    pub other_vms: usize,
    pub sends_per_s: Spread,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    pub levels: Vec<ScaleLevel>,
    /// The lowest level median over the highest (1: flat).
    pub worst_over_best: f64,
    /// BPF map memory (memlock) per registered VM, bytes.
    pub map_bytes_per_vm: f64,
    /// The host's per-CPU memory (/proc/meminfo Percpu) per registered VM, bytes.
    pub percpu_bytes_per_vm: f64,
}

/// A service of the bench's own and the paused VMs it serves.
struct Host {
    service: Child,
    socket: PathBuf,
    others: Vec<Child>,
}

impl Host {
    fn start() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("xevtchn-bench-scale-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("sock");
        let service = Command::new(std::env::current_exe()?)
            .args(["serve", "--no-metrics", "--socket"])
            .arg(&socket)
            .arg("--pin-dir")
            .arg(format!("/sys/fs/bpf/xevtchn-bench-{}", std::process::id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting xevtchn serve")?;
        let host = Self { service, socket, others: Vec::new() };
        host.wait_until("the service answers", |s| client::status(&s.socket).is_ok())?;
        Ok(host)
    }

    fn wait_until(&self, what: &str, done: impl Fn(&Self) -> bool) -> Result<()> {
        let start = Instant::now();
        while !done(self) {
            if start.elapsed() > Duration::from_secs(20) {
                bail!("timed out waiting until {what}");
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Registers (then pauses) or kills other VMs until `n` are registered.
    fn set_others(&mut self, n: usize) -> Result<()> {
        while self.others.len() > n {
            if let Some(mut vm) = self.others.pop() {
                let _ = vm.kill();
                let _ = vm.wait();
            }
        }
        while self.others.len() < n {
            let vm = Command::new(std::env::current_exe()?)
                .args(["run", "--backend", "bpf", "--workload", "pingpong", "--count", "1000000000"])
                .args(["--timeout", "3600", "--json", "--service"])
                .arg(&self.socket)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let pid = vm.id();
            self.others.push(vm);
            self.wait_until("a paused VM registers", |s| {
                client::status(&s.socket).is_ok_and(|vms| vms.contains(&pid))
            })?;
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        }
        self.wait_until("the registrations settle", |s| client::status(&s.socket).is_ok_and(|vms| vms.len() == n))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for vm in &mut self.others {
            let _ = vm.kill();
            let _ = vm.wait();
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.service.id() as i32, libc::SIGTERM) };
        let _ = self.service.wait();
        if let Some(dir) = self.socket.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Kernel memory now: every BPF map's memlock, and the per-CPU total.
fn kernel_memory() -> (u64, u64) {
    let maps = aya::maps::loaded_maps()
        .filter_map(Result::ok)
        .filter_map(|info| aya::maps::MapData::from_id(info.id()).ok())
        .filter_map(|map| {
            let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", map.fd().as_fd().as_raw_fd())).ok()?;
            fdinfo.lines().find_map(|l| l.strip_prefix("memlock:"))?.trim().parse::<u64>().ok()
        })
        .sum();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let percpu_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Percpu:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (maps, percpu_kib * 1024)
}

pub fn scale(config: &BenchConfig, mut progress: impl FnMut(usize, u32)) -> Result<ScaleReport> {
    let mut host = Host::start()?;
    let flood = RunConfig {
        backend: Backend::Bpf,
        workload: Workload::Flood,
        vcpus: config.vcpus.max(2),
        count: 0,
        duration: Some(config.duration),
        callback: Callback::Vector,
        timeout: Duration::from_secs(120),
        shared_info_in_ram: false,
        rate: None,
        service: Some(host.socket.clone()),
        seed: None,
    };
    // Memory first: every level's VMs registered, against none.
    let most = LEVELS[LEVELS.len() - 1];
    let (maps0, percpu0) = kernel_memory();
    host.set_others(most)?;
    let (maps1, percpu1) = kernel_memory();
    let per_vm = |after: u64, before: u64| after.saturating_sub(before) as f64 / most as f64;
    let (map_bytes_per_vm, percpu_bytes_per_vm) = (per_vm(maps1, maps0), per_vm(percpu1, percpu0));
    let mut rates = vec![Vec::new(); LEVELS.len()];
    let order: Vec<usize> = (0..LEVELS.len()).chain((0..LEVELS.len()).rev()).collect();
    for round in 0..config.repeat {
        for &level in &order {
            host.set_others(LEVELS[level])?;
            let r = run::execute(&flood).context("flood on a served VM")?;
            if !r.is_clean() || r.fast_path != "service" {
                bail!("the flood was not clean or not served by the service: lost {}, {}", r.lost, r.fast_path);
            }
            rates[level].push(r.sends_per_s);
            progress(LEVELS[level], round);
        }
    }
    let levels: Vec<ScaleLevel> =
        LEVELS.iter().zip(rates).map(|(&other_vms, r)| ScaleLevel { other_vms, sends_per_s: Spread::of(&r) }).collect();
    let medians: Vec<f64> = levels.iter().map(|l| l.sends_per_s.median).collect();
    let best = medians.iter().copied().fold(0.0, f64::max);
    let worst = medians.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(ScaleReport { levels, worst_over_best: ratio(worst, best), map_bytes_per_vm, percpu_bytes_per_vm })
}
