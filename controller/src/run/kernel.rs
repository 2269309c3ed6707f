//! `xevtchn run --kernel FILE`: boot a Xen guest someone else wrote through
//! Xen's PVH entry (vmm::pvh) and run it until it shuts itself down
//! (SCHEDOP_shutdown), the user stops it, or the timeout passes. Its
//! console (CONSOLEIO_write) goes to the run's output; the report says how
//! it ended.

use std::{
    path::PathBuf,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use anyhow::{Context, Result};
use serde::Serialize;
use xevtchn_common::xen::sched::{SHUTDOWN_poweroff, shutdown_name};

use super::{Backend, Delivery, delivery, pv_console::PvConsole, stop};
use crate::{
    platform::{XenPlatform, eventfd_task, guest_log::GuestLog},
    schema,
    vmm::{Boot, Vm, VmConfig, VmmError, pvh},
    xen::{Domain, DomainConfig},
};

#[derive(Debug, Clone)]
pub struct KernelConfig {
    pub kernel: PathBuf,
    pub cmdline: String,
    pub memory_mib: u32,
    pub vcpus: u32,
    pub backend: Backend,
    pub timeout: Duration,
    pub service: Option<PathBuf>,
    /// The console goes to stdout (else stderr, when stdout has the JSON).
    pub console_to_stdout: bool,
}

/// How the guest shut itself down.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Shutdown {
    /// SHUTDOWN_* without the prefix ("poweroff", "crash", ...), or
    /// "unknown" for a reason sched.h does not define.
    pub reason: &'static str,
    pub code: u32,
}

/// What `xevtchn run --kernel --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct KernelReport {
    pub schema: &'static str,
    pub kernel: String,
    pub cmdline: String,
    pub backend: Backend,
    pub vcpus: u32,
    pub memory_mib: u32,
    pub elapsed_s: f64,
    /// How the guest ended itself; null when it did not.
    pub shutdown: Option<Shutdown>,
    /// "SIGINT", "SIGTERM" or "timeout" when the run was stopped first.
    pub stopped_by: Option<&'static str>,
    pub console_bytes: u64,
    pub hypercalls: u64,
    pub userspace_exits: u64,
    pub userspace_sends: u64,
    /// Sends the in-kernel path completed (null without one).
    pub fast_sends: Option<u64>,
    pub fast_path_unavailable: Option<String>,
    /// vCPUs whose vcpu_info the guest moved into its RAM
    /// (VCPUOP_register_vcpu_info): the in-kernel path cannot reach it, so
    /// their ports are served in userspace.
    pub vcpu_info_moved: Vec<u32>,
    /// The status `xevtchn` exits with (see `exit_status`).
    pub exit_status: u8,
}

/// poweroff: 0; another shutdown reason r: 64 + r; stopped by a signal:
/// 128 + the signal, as a shell reports it; a timeout: 1.
fn exit_status(shutdown: Option<u32>, stopped_by: Option<&str>) -> u8 {
    match (shutdown, stopped_by) {
        (Some(reason), _) if reason == SHUTDOWN_poweroff => 0,
        (Some(reason), _) => 64u8.saturating_add(reason.min(63) as u8),
        (None, Some("SIGINT")) => 128 + 2,
        (None, Some("SIGTERM")) => 128 + 15,
        (None, _) => 1,
    }
}

pub fn execute(config: &KernelConfig) -> Result<KernelReport> {
    let image = std::fs::read(&config.kernel).with_context(|| format!("reading {}", config.kernel.display()))?;
    let ram_size = u64::from(config.memory_mib) << 20;
    let tasks = eventfd_task::runtime().context("starting the controller's task runtime")?;
    let boot = Boot::Pvh { kernel: image.into(), cmdline: config.cmdline.clone() };
    let mut vm =
        Vm::new(VmConfig { vcpus: config.vcpus, ram_size, boot, timeout: config.timeout, ..VmConfig::default() })
            .with_context(|| format!("booting {}", config.kernel.display()))?;
    let domain = Domain::new(DomainConfig {
        nr_vcpus: config.vcpus,
        memory_map: pvh::memory_map(ram_size),
        // RAM as the memory map has it (the console ring's page is not).
        ram_end: pvh::console_ring_page(ram_size),
        ..DomainConfig::default()
    })
    .context("configuring the Xen domain")?;
    let log = Arc::new(GuestLog::default());
    let Delivery { backend, shared_info, fast, unavailable } =
        delivery(config.backend, config.vcpus, config.service.as_deref(), &mut vm, &log, tasks.handle())?;
    let platform = Arc::new(
        XenPlatform::new(&vm, domain, shared_info, fast, log, tasks.handle().clone())
            .context("setting up upcall delivery")?,
    );
    platform.console().copy_to(config.console_to_stdout);
    let ring = pvh::console_ring_page(ram_size);
    let _console = PvConsole::start(platform.clone(), vm.ram().clone(), ring, true, tasks.handle())
        .context("starting the PV console")?;
    let stopper = forward_stop(vm.stop_flag().clone())?;
    let started = std::time::Instant::now();
    let outcome = vm.run(platform.clone());
    let elapsed = started.elapsed();
    stopper.store(true, Ordering::Release);
    platform.report_progress();
    let (shutdown, stopped_by) = match outcome {
        Ok(outcome) => (outcome.shutdown, None),
        Err(VmmError::Stopped) => (None, stop::requested_by()),
        Err(VmmError::Timeout(_)) => (None, Some("timeout")),
        Err(e) => return Err(anyhow::Error::from(e).context(format!("running {}", config.kernel.display()))),
    };
    let counts = platform.stats().snapshot();
    Ok(KernelReport {
        schema: schema::RUN_KERNEL,
        kernel: config.kernel.display().to_string(),
        cmdline: config.cmdline.clone(),
        backend,
        vcpus: config.vcpus,
        memory_mib: config.memory_mib,
        elapsed_s: elapsed.as_secs_f64(),
        shutdown: shutdown.map(|code| Shutdown { reason: shutdown_name(code).unwrap_or("unknown"), code }),
        stopped_by,
        console_bytes: platform.console().bytes(),
        hypercalls: counts.hypercalls,
        userspace_exits: counts.userspace_exits,
        userspace_sends: counts.userspace_sends,
        fast_sends: platform.fast_counts().map(|c| c.fast_sends),
        fast_path_unavailable: unavailable,
        vcpu_info_moved: (0..config.vcpus).filter(|&v| platform.vcpu_info(v).is_some()).collect(),
        exit_status: exit_status(shutdown, stopped_by),
    })
}

/// Until the returned flag is set, turns a stop request (SIGINT, SIGTERM)
/// into stopping the VM: a foreign guest has no stop word to set.
fn forward_stop(vm_stop: Arc<std::sync::atomic::AtomicBool>) -> Result<Arc<std::sync::atomic::AtomicBool>> {
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = done.clone();
    std::thread::Builder::new().name("run-stop".into()).spawn(move || {
        while !finished.load(Ordering::Acquire) {
            if stop::requested_by().is_some() {
                vm_stop.store(true, Ordering::Release);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_status_says_how_the_guest_ended() {
        assert_eq!(exit_status(Some(0), None), 0);
        assert_eq!(exit_status(Some(3), None), 67, "crash");
        assert_eq!(exit_status(Some(1), None), 65, "reboot");
        assert_eq!(exit_status(Some(200), None), 127, "an unknown reason stays below the signal range");
        assert_eq!(exit_status(None, Some("SIGTERM")), 143);
        assert_eq!(exit_status(None, Some("timeout")), 1);
    }
}
