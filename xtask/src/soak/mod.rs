//! `cargo xtask soak --minutes M`: the hypervisor side under everything at
//! once, for a long time. Side by side, until the time is up:
//! - rebind on 8 vCPUs, served by an `xevtchn serve` of the soak's own;
//! - the fuzz workload, a new seed each run, on both backends;
//! - a tracer attached and detached every few seconds;
//! - VMs started and killed with SIGKILL after a random moment.
//!
//! Every few seconds it samples the service's RSS and open fds, the host's
//! BPF programs and maps, /proc/meminfo's Percpu and Slab, and the log
//! volume. It fails on any lost event or error, a panic, a log that grows
//! faster than a few lines a second, or a leak: BPF objects or service fds
//! that do not return to where they started once everything has stopped,
//! or memory that keeps growing (see `metrics::leaks`).

mod metrics;
mod workers;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use metrics::Sample;
use workers::{Tally, Worker};

/// How often the soak samples the host.
fn sample_every(duration: Duration) -> Duration {
    (duration / 12).clamp(Duration::from_secs(3), Duration::from_secs(30))
}

pub fn soak(bin: &Path, duration: Duration) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("xevtchn-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let socket = dir.join("sock");
    let mut service = start_service(bin, &socket, &dir)?;
    let service_pid = service.id();
    let quiet_before = metrics::sample(service_pid, 0, Duration::ZERO)?;
    eprintln!("soak: {} s; sampling every {} s", duration.as_secs(), sample_every(duration).as_secs());
    eprintln!("{}", Sample::header());
    eprintln!("{}", quiet_before.row());

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let context =
        workers::Context { bin: bin.to_path_buf(), socket: socket.clone(), stop: stop.clone(), tally: tally.clone() };
    let threads: Vec<_> = Worker::ALL.iter().map(|w| w.spawn(context.clone())).collect::<Result<_>>()?;

    let start = Instant::now();
    let mut samples = vec![quiet_before.clone()];
    while start.elapsed() < duration {
        std::thread::sleep(sample_every(duration).min(duration.saturating_sub(start.elapsed())));
        let s = metrics::sample(service_pid, tally.log_bytes(), start.elapsed())?;
        eprintln!("{}", s.row());
        samples.push(s);
        if let Some(failure) = tally.first_failure() {
            stop.store(true, std::sync::atomic::Ordering::Release);
            for thread in threads {
                let _ = thread.join();
            }
            stop_service(&mut service, &dir);
            bail!("soak failed after {} s: {failure}", start.elapsed().as_secs());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    for thread in threads {
        thread.join().map_err(|_| anyhow::anyhow!("a soak worker panicked"))?;
    }
    // Everything stopped: what the host holds now should be what it held
    // before. The kernel frees a VM's and a program's objects some time
    // after their process (RCU, workqueues): up to 20 s.
    let settled = Instant::now();
    let quiet_after = loop {
        std::thread::sleep(Duration::from_secs(2));
        let s = metrics::sample(service_pid, tally.log_bytes(), start.elapsed())?;
        if metrics::leaks(&quiet_before, &s, &samples, start.elapsed()).is_empty()
            || settled.elapsed() > Duration::from_secs(20)
        {
            break s;
        }
    };
    eprintln!("{}  (all stopped)", quiet_after.row());
    stop_service(&mut service, &dir);
    eprintln!("soak: {}", tally.summary(start.elapsed()));
    if let Some(failure) = tally.first_failure() {
        bail!("soak failed: {failure}");
    }
    let leaks = metrics::leaks(&quiet_before, &quiet_after, &samples, start.elapsed());
    if !leaks.is_empty() {
        bail!("soak found leaks:\n  {}", leaks.join("\n  "));
    }
    tally.check_enough(start.elapsed())?;
    eprintln!("soak: passed: nothing lost, no error, no panic, no leak");
    Ok(())
}

fn start_service(bin: &Path, socket: &Path, dir: &Path) -> Result<Child> {
    let pins: PathBuf = Path::new("/sys/fs/bpf").join(dir.file_name().expect("a name"));
    let child = Command::new(bin)
        .args(["serve", "--no-metrics", "--socket"])
        .arg(socket)
        .arg("--pin-dir")
        .arg(&pins)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting xevtchn serve")?;
    let started = Instant::now();
    while !socket.exists() {
        if started.elapsed() > Duration::from_secs(20) {
            bail!("xevtchn serve made no socket at {} in 20 s", socket.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(child)
}

fn stop_service(service: &mut Child, dir: &Path) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(service.id() as i32, libc::SIGTERM) };
    let _ = service.wait();
    let _ = std::fs::remove_dir_all(dir);
}
