//! A VM with N vCPUs, one host thread per vCPU, booting the built-in guest
//! or a kernel of the user's through Xen's PVH entry (vmm::pvh).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use kvm_bindings::{
    KVM_CAP_X86_USER_SPACE_MSR, KVM_MAX_CPUID_ENTRIES, KVM_MP_STATE_RUNNABLE, KVM_MSR_EXIT_REASON_INVAL,
    KVM_MSR_EXIT_REASON_UNKNOWN, kvm_enable_cap, kvm_mp_state,
};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::signal::Killable;
use xevtchn_common::{
    guest_abi::Params,
    layout::{PARAMS, RAM_SIZE},
};

use super::{
    VmmError,
    canary::{self, CanaryRun},
    gate::VcpuGate,
    kvm_stats::{self, VcpuStats},
    memory::{self, GuestRam},
    pvh,
    vcpu::{self, Platform, Stop},
    xen_cpuid,
};

/// The built-in guest, built by the controller's build script.
pub static GUEST_IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xevtchn-guest"));

/// What the VM boots.
#[derive(Debug, Clone, Default)]
pub enum Boot {
    /// The built-in guest (a PVH kernel too).
    #[default]
    BuiltIn,
    /// A kernel with Xen's PVH entry (vmm::pvh).
    Pvh { kernel: Arc<[u8]>, cmdline: String },
}

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub vcpus: u32,
    pub ram_size: u64,
    pub boot: Boot,
    /// What the guest runs (written at layout::PARAMS).
    pub params: Params,
    /// The VM is stopped and an error returned after this long.
    pub timeout: Duration,
}

impl Default for VmConfig {
    fn default() -> Self {
        Self {
            vcpus: 1,
            ram_size: RAM_SIZE,
            boot: Boot::BuiltIn,
            params: Params::default(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// How a VM ended.
#[derive(Debug, Clone)]
pub struct VmOutcome {
    /// The status the guest wrote to CONTROL_EXIT (0 = success).
    pub status: u32,
    /// From the first vCPU start to the guest's exit write.
    pub elapsed: Duration,
    /// The reason of the guest's SCHEDOP_shutdown, if it ended that way.
    pub shutdown: Option<u32>,
}

pub struct Vm {
    config: VmConfig,
    /// Set when the VM is to stop; vCPUs waiting in a hypercall look at it.
    stop: Arc<AtomicBool>,
    gate: Arc<VcpuGate>,
    /// KVM's statistics of each vCPU (None where the kernel has none).
    stats: Vec<Option<VcpuStats>>,
    vcpus: Vec<VcpuFd>,
    tsc_khz: u32,
    // Field order matters: the VM fd closes before the RAM it maps is unmapped.
    vm: Arc<VmFd>,
    ram: GuestRam,
    _kvm: Kvm,
}

impl Vm {
    pub fn new(config: VmConfig) -> Result<Self, VmmError> {
        let kvm = Kvm::new().map_err(VmmError::open)?;
        if config.vcpus as usize > kvm.get_max_vcpus() {
            return Err(VmmError::Unsupported(format!(
                "{} vCPUs requested, but this host's KVM runs at most {} per VM (KVM_CAP_MAX_VCPUS)",
                config.vcpus,
                kvm.get_max_vcpus()
            )));
        }
        let vm = kvm.create_vm().map_err(VmmError::kvm("KVM_CREATE_VM"))?;
        vm.create_irq_chip().map_err(VmmError::kvm("KVM_CREATE_IRQCHIP"))?;
        // The hypercall-page MSR is unknown to KVM: let it exit to us.
        let mut msr_exits = kvm_enable_cap { cap: KVM_CAP_X86_USER_SPACE_MSR, ..Default::default() };
        msr_exits.args[0] = u64::from(KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_INVAL);
        vm.enable_cap(&msr_exits).map_err(VmmError::kvm("KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)"))?;
        let ram = memory::create_ram(&vm, config.ram_size)?;
        // One boot path: every guest, the built-in one too, is a PVH kernel.
        let (image, cmdline): (&[u8], &str) = match &config.boot {
            Boot::BuiltIn if GUEST_IMAGE.is_empty() => return Err(VmmError::NoGuestImage),
            Boot::BuiltIn => (GUEST_IMAGE, ""),
            Boot::Pvh { kernel, cmdline } => (kernel, cmdline),
        };
        let start = pvh::load(&ram, image, cmdline, &pvh::memory_map(config.ram_size))?;
        if matches!(config.boot, Boot::BuiltIn) {
            write_params(&ram, Params { vcpus: config.vcpus, ..config.params })?;
        }
        let supported =
            kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES).map_err(VmmError::kvm("KVM_GET_SUPPORTED_CPUID"))?;
        let mut vcpus = Vec::new();
        for index in 0..config.vcpus {
            let vcpu = vm.create_vcpu(u64::from(index)).map_err(VmmError::kvm("KVM_CREATE_VCPU"))?;
            vcpu.set_cpuid2(&xen_cpuid::with_xen_leaves(&supported, index)).map_err(VmmError::kvm("KVM_SET_CPUID2"))?;
            // vCPU 0 enters at the PVH entry; with the in-kernel irqchip
            // the others wait for the guest's INIT/SIPI, as on hardware.
            if index == 0 {
                let sregs = vcpu.get_sregs().map_err(VmmError::kvm("KVM_GET_SREGS"))?;
                vcpu.set_sregs(&pvh::entry_sregs(sregs)).map_err(VmmError::kvm("KVM_SET_SREGS"))?;
                vcpu.set_regs(&pvh::entry_regs(start)).map_err(VmmError::kvm("KVM_SET_REGS"))?;
                let runnable = kvm_mp_state { mp_state: KVM_MP_STATE_RUNNABLE };
                vcpu.set_mp_state(runnable).map_err(VmmError::kvm("KVM_SET_MP_STATE"))?;
            }
            vcpus.push(vcpu);
        }
        let stats = vcpus.iter().map(|v| VcpuStats::open(v).ok()).collect();
        let tsc_khz = vcpus[0].get_tsc_khz().map_err(VmmError::kvm("KVM_GET_TSC_KHZ"))?;
        Ok(Self {
            config,
            stop: Arc::default(),
            gate: Arc::default(),
            stats,
            vcpus,
            tsc_khz,
            vm: Arc::new(vm),
            ram,
            _kvm: kvm,
        })
    }

    /// Setting this stops the VM (`run` returns `VmmError::Stopped`);
    /// vCPUs waiting in a hypercall (SCHEDOP_block, poll) look at it too.
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.stop
    }

    pub fn fd(&self) -> &Arc<VmFd> {
        &self.vm
    }

    /// KVM's counters in `kvm_stats::REPORTED`, summed over vCPUs (empty
    /// when the kernel offers no binary stats).
    pub fn kvm_counters(&self) -> BTreeMap<String, u64> {
        let mut sum = BTreeMap::new();
        for stats in self.stats.iter().flatten() {
            for (name, value) in stats.read().unwrap_or_default() {
                if kvm_stats::REPORTED.contains(&name.as_str()) {
                    *sum.entry(name).or_insert(0) += value;
                }
            }
        }
        sum
    }

    /// Pauses the vCPUs for memslot changes (see vmm::gate).
    pub fn gate(&self) -> &Arc<VcpuGate> {
        &self.gate
    }

    pub fn ram(&self) -> &GuestRam {
        &self.ram
    }

    pub fn vcpus(&self) -> u32 {
        self.config.vcpus
    }

    /// Bytes of guest RAM, from guest-physical 0.
    pub fn ram_size(&self) -> u64 {
        self.config.ram_size
    }

    pub fn boot(&self) -> &Boot {
        &self.config.boot
    }

    /// The guest's TSC frequency (equal to the host's on this host kind).
    pub fn tsc_khz(&self) -> u32 {
        self.tsc_khz
    }

    /// Rewrites the guest's parameters before `run` (e.g. with the TSC rate).
    pub fn set_params(&mut self, params: Params) -> Result<(), VmmError> {
        write_params(&self.ram, Params { vcpus: self.config.vcpus, ..params })
    }

    /// Runs the doorbell canary on vCPU 0 (before `run`; see vmm::canary).
    pub fn run_canary(&mut self) -> Result<CanaryRun, VmmError> {
        canary::run(&mut self.vcpus[0], &self.ram)
    }

    /// Runs every vCPU on its own thread until the guest exits, a vCPU
    /// faults, or the timeout passes. The VM's memory stays readable after.
    pub fn run(&mut self, platform: Arc<dyn Platform>) -> Result<VmOutcome, VmmError> {
        vcpu::install_kick_handler();
        let stop = self.stop.clone();
        let (done_tx, done_rx) = mpsc::channel();
        let started = Instant::now();
        let mut threads = Vec::new();
        for (index, fd) in std::mem::take(&mut self.vcpus).into_iter().enumerate() {
            let (platform, stop, done, gate) = (platform.clone(), stop.clone(), done_tx.clone(), self.gate.clone());
            let handle = thread::Builder::new()
                .name(format!("vcpu{index}"))
                .spawn(move || {
                    let why = vcpu::run(index as u32, fd, platform.as_ref(), &stop, &gate);
                    let _ = done.send(why);
                })
                .map_err(VmmError::Thread)?;
            threads.push(handle);
        }
        drop(done_tx);
        let deadline = started + self.config.timeout;
        let outcome = loop {
            if stop.load(Ordering::Acquire) {
                break Err(VmmError::Stopped);
            }
            // Wakes up now and then to notice a stop asked from outside.
            let left = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
            match done_rx.recv_timeout(left) {
                Ok(Some(why)) => break Ok(why),
                Ok(None) => {}
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    break Err(VmmError::Timeout(self.config.timeout));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(VmmError::VcpuPanicked(u32::MAX));
                }
            }
        };
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Release);
        stop_all(threads)?;
        match outcome? {
            Stop::GuestExit(status) => Ok(VmOutcome { status, elapsed, shutdown: None }),
            Stop::Shutdown(reason) => Ok(VmOutcome { status: 0, elapsed, shutdown: Some(reason) }),
            Stop::Fault(msg) => Err(VmmError::GuestFault(msg)),
            Stop::Unsupported(msg) => Err(VmmError::Unsupported(msg)),
        }
    }
}

fn write_params(ram: &GuestRam, params: Params) -> Result<(), VmmError> {
    // SAFETY: Params is repr(C) with only integer fields and no padding
    // (its size is asserted in guest_abi), so its bytes are initialised.
    let bytes =
        unsafe { std::slice::from_raw_parts(std::ptr::addr_of!(params).cast::<u8>(), std::mem::size_of::<Params>()) };
    ram.write_slice(bytes, GuestAddress(PARAMS)).map_err(|_| VmmError::GuestAccess(PARAMS))
}

/// Kicks every vCPU thread out of KVM_RUN until all have returned. A kick can
/// land just before a thread enters KVM_RUN, so it is repeated.
fn stop_all(threads: Vec<thread::JoinHandle<()>>) -> Result<(), VmmError> {
    for (index, handle) in threads.into_iter().enumerate() {
        while !handle.is_finished() {
            let _ = handle.kill(vcpu::kick_signal());
            thread::sleep(Duration::from_millis(1));
        }
        handle.join().map_err(|_| VmmError::VcpuPanicked(index as u32))?;
    }
    Ok(())
}
