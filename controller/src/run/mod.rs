//! One run of the built-in guest on a backend: build the VM and the Xen
//! platform, run, and turn what the guest and the host counted into a report.

pub mod echo_backend;
pub mod guest_report;
pub mod kernel;
pub mod latency;
pub mod pv_console;
pub mod report;
pub mod smoke;
pub mod stop;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result};
use xevtchn_common::{
    guest_abi::{self, Params},
    layout,
};

use crate::{
    bpf::doorbell::DoorbellPath,
    platform::{XenPlatform, eventfd_task, fast_path::FastPath, guest_log::GuestLog, shared_info::SharedInfoPage},
    service::client::{self, ClientError},
    vmm::{Vm, VmConfig},
    xen::{Domain, DomainConfig},
};
pub use report::{Backend, Callback, RunReport, Workload};

/// The GSI the callback workload (and `--callback gsi`) uses.
pub const CALLBACK_GSI: u32 = 10;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub backend: Backend,
    pub workload: Workload,
    pub vcpus: u32,
    /// Sends per sender, unless `duration` is set.
    pub count: u64,
    pub duration: Option<Duration>,
    pub callback: Callback,
    pub timeout: Duration,
    /// The guest places shared_info over a RAM page (the VMM splits RAM).
    pub shared_info_in_ram: bool,
    /// Sends per second of each sender of flood, fanout and rebind (None:
    /// as fast as it can).
    pub rate: Option<u32>,
    /// The service socket to register with (None: $XEVTCHN_SOCKET or the
    /// default, and this process's own program if no service answers).
    pub service: Option<std::path::PathBuf>,
    /// The fuzz workload's seed (None: one from the clock, in the report).
    pub seed: Option<u64>,
}

/// A look at a running VM from another thread (`execute_watched`).
pub struct Watch {
    platform: Arc<XenPlatform>,
    finished: Arc<AtomicBool>,
}

impl Watch {
    /// Sends the in-kernel path completed so far (None without one).
    pub fn fast_sends(&self) -> Option<u64> {
        self.platform.fast_counts().map(|c| c.fast_sends)
    }

    /// True once the VM has stopped running.
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }
}

pub fn execute(config: &RunConfig) -> Result<RunReport> {
    execute_watched(config, |_| ()).map(|(report, ())| report)
}

/// Runs like `execute`, with `watch` running on a thread of its own while
/// the VM runs; returns what it returned.
pub fn execute_watched<T: Send + 'static>(
    config: &RunConfig,
    watch: impl FnOnce(Watch) -> T + Send + 'static,
) -> Result<(RunReport, T)> {
    anyhow::ensure!(config.workload != Workload::Smoke, "the smoke workload runs through run::smoke");
    // A fuzz run always has a seed, printed in its report for replaying it.
    let seed = (config.workload == Workload::Fuzz).then(|| config.seed.unwrap_or_else(clock_seed));
    let config = &RunConfig { seed, ..config.clone() };
    let tasks = eventfd_task::runtime().context("starting the controller's task runtime")?;
    let mut vm = Vm::new(VmConfig { vcpus: config.vcpus, timeout: config.timeout, ..VmConfig::default() })
        .context("creating the VM")?;
    let tsc_per_ms = u64::from(vm.tsc_khz());
    vm.set_params(guest_params(config, tsc_per_ms)).context("writing the guest's parameters")?;
    let domain =
        Domain::new(DomainConfig { nr_vcpus: config.vcpus, ram_end: vm.ram_size(), ..DomainConfig::default() })
            .context("configuring the Xen domain")?;
    let log = Arc::new(GuestLog::default());
    let Delivery { backend, shared_info, fast, unavailable: fast_path_unavailable } =
        delivery(config.backend, config.vcpus, config.service.as_deref(), &mut vm, &log, tasks.handle())?;
    let platform = Arc::new(
        XenPlatform::new(&vm, domain, shared_info, fast, log, tasks.handle().clone())
            .context("setting up upcall delivery")?,
    );
    let echo = match config.workload {
        Workload::Backend => {
            let echo = echo_backend::EchoBackend::start(platform.clone(), tasks.handle())?;
            let params = Params {
                backend_port: echo.port,
                backend_domid: u32::from(platform.backend_domid()),
                ..guest_params(config, tsc_per_ms)
            };
            vm.set_params(params).context("writing the guest's parameters")?;
            Some(echo)
        }
        _ => None,
    };
    let finished = Arc::new(AtomicBool::new(false));
    let watcher = {
        let watch_state = Watch { platform: platform.clone(), finished: finished.clone() };
        std::thread::Builder::new().name("run-watch".into()).spawn(move || watch(watch_state))?
    };
    let stopper = stop::forward(vm.ram().clone(), finished.clone())?;
    let outcome = vm.run(platform.clone());
    finished.store(true, Ordering::Release);
    let _ = stopper.join();
    platform.report_progress();
    let watched = watcher.join().map_err(|_| anyhow::anyhow!("the run's watcher panicked"))?;
    let outcome = outcome.context("running the VM")?;
    drop(echo);
    let mut report = report::build(
        config,
        backend,
        &vm,
        &outcome,
        &platform.stats().snapshot(),
        platform.fast_counts(),
        platform.upcalls().stats.snapshot(),
    )?;
    report.fast_path_unavailable = fast_path_unavailable;
    report.stopped_by = stop::requested_by();
    if let Some(kind) = platform.fast_path_kind() {
        report.fast_path = kind;
    }
    Ok((report, watched))
}

/// How a VM's events are delivered: the backend that serves it, its
/// shared_info page, and the in-kernel path if it has one.
pub struct Delivery {
    pub backend: Backend,
    pub shared_info: SharedInfoPage,
    pub fast: Option<FastPath>,
    /// Why the fast path asked for cannot serve this VM, if it cannot.
    pub unavailable: Option<String>,
}

/// Sets up `backend` for `vm` (before it runs: the canary runs on vCPU 0).
/// `auto` falls back to userspace when the BPF path is unavailable.
pub fn delivery(
    backend: Backend,
    vcpus: u32,
    service: Option<&std::path::Path>,
    vm: &mut Vm,
    log: &Arc<GuestLog>,
    tasks: &tokio::runtime::Handle,
) -> Result<Delivery> {
    let doorbell = match backend {
        Backend::Userspace | Backend::Bare => None,
        Backend::Bpf => Some(doorbell_path(vcpus, service, tasks).context("setting up the in-kernel fast path")?),
        Backend::Auto => match doorbell_path(vcpus, service, tasks) {
            Ok(path) => Some(path),
            Err(e) => {
                eprintln!("xevtchn: backend auto: using userspace, since the bpf backend is unavailable: {e:#}");
                None
            }
        },
    };
    let anonymous = || SharedInfoPage::anonymous().context("allocating shared_info");
    Ok(match (backend, doorbell) {
        (Backend::Bare, _) => Delivery {
            backend: Backend::Bare,
            shared_info: anonymous()?,
            fast: Some(FastPath::bare(vm.fd().clone(), log.clone())),
            unavailable: None,
        },
        (_, None) => Delivery { backend: Backend::Userspace, shared_info: anonymous()?, fast: None, unavailable: None },
        (_, Some(doorbell)) => {
            let page = doorbell.shared_info_page().context("mapping the BPF shared_info page")?;
            let mut fast = FastPath::new(vm.fd().clone(), doorbell, log.clone())?;
            let canary = vm.run_canary().context("running the doorbell canary")?;
            match fast.judge_canary(canary) {
                Ok(()) => Delivery { backend: Backend::Bpf, shared_info: page, fast: Some(fast), unavailable: None },
                Err(why) => {
                    eprintln!("xevtchn: the in-kernel fast path cannot serve this VM, delivering in userspace: {why}");
                    Delivery { backend: Backend::Userspace, shared_info: page, fast: None, unavailable: Some(why) }
                }
            }
        }
    })
}

/// The fast path from the host's service if one answers (or the one
/// `service` names: then it must), else this process's own.
fn doorbell_path(
    vcpus: u32,
    service: Option<&std::path::Path>,
    tasks: &tokio::runtime::Handle,
) -> Result<DoorbellPath> {
    let socket = client::socket_path(service);
    match client::register(&socket, vcpus) {
        Ok((registration, maps, cpus)) => Ok(DoorbellPath::from_service(registration, maps, cpus, vcpus)?),
        Err(ClientError::NotRunning(..)) if service.is_none() => Ok(DoorbellPath::embedded(vcpus, tasks)
            .context("no xevtchn service runs, and this process cannot serve its VM itself")?),
        Err(e) => Err(e.into()),
    }
}

/// A seed from the clock's nanoseconds.
fn clock_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
}

fn guest_params(config: &RunConfig, tsc_per_ms: u64) -> Params {
    let callback = match (config.workload, config.callback) {
        // The callback workload starts vCPU 0 on the GSI, then switches to INTx.
        (Workload::Callback, _) | (_, Callback::Gsi) => guest_abi::callback::GSI,
        (_, Callback::Intx) => guest_abi::callback::PCI_INTX,
        (_, Callback::Vector) => guest_abi::callback::VECTOR,
    };
    Params {
        workload: config.workload.number(),
        vcpus: config.vcpus,
        count: config.count,
        duration_tsc: config.duration.map_or(0, |d| d.as_millis() as u64 * tsc_per_ms),
        callback,
        callback_gsi: CALLBACK_GSI,
        tsc_per_ms,
        backend_port: 0,
        backend_domid: 0,
        bare: u32::from(config.backend == Backend::Bare),
        _pad: 0,
        shared_info_gpa: if config.shared_info_in_ram { layout::SHARED_INFO_IN_RAM_GPA } else { 0 },
        send_interval_tsc: config.rate.map_or(0, |rate| tsc_per_ms * 1000 / u64::from(rate.max(1))),
        seed: config.seed.unwrap_or(0),
    }
}
