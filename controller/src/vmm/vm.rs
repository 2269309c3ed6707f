//! A VM with N vCPUs running the built-in guest, one host thread per vCPU.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant},
};

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, KVM_MP_STATE_RUNNABLE, kvm_mp_state};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vmm_sys_util::signal::Killable;
use xevtchn_common::layout::{RAM_SIZE, STACK_SIZE, STACKS_TOP};

use super::{
    VmmError, boot,
    exit::{Shared, Stop},
    loader,
    memory::{self, GuestRam},
    vcpu,
};

/// The built-in guest, built by the controller's build script.
pub static GUEST_IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xevtchn-guest"));

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub vcpus: u32,
    pub ram_size: u64,
    /// Workload number and argument passed to the guest's entry point.
    pub workload: u64,
    pub arg: u64,
    /// The VM is stopped and an error returned after this long.
    pub timeout: Duration,
}

impl Default for VmConfig {
    fn default() -> Self {
        Self { vcpus: 1, ram_size: RAM_SIZE, workload: 0, arg: 0, timeout: Duration::from_secs(60) }
    }
}

/// How a VM ended.
#[derive(Debug, Clone)]
pub struct VmOutcome {
    /// The status the guest wrote to CONTROL_EXIT (0 = success).
    pub status: u32,
    pub smoke_writes: u64,
    pub mmio_exits: u64,
    pub elapsed: Duration,
}

pub struct Vm {
    config: VmConfig,
    vcpus: Vec<VcpuFd>,
    // Field order matters: the VM fd closes before the RAM it maps is unmapped.
    _vm: VmFd,
    _ram: GuestRam,
    _kvm: Kvm,
}

impl Vm {
    pub fn new(config: VmConfig) -> Result<Self, VmmError> {
        let kvm = Kvm::new().map_err(VmmError::open)?;
        let vm = kvm.create_vm().map_err(VmmError::kvm("KVM_CREATE_VM"))?;
        vm.create_irq_chip().map_err(VmmError::kvm("KVM_CREATE_IRQCHIP"))?;
        let ram = memory::create_ram(&vm, config.ram_size)?;
        let entry = loader::load_elf(&ram, GUEST_IMAGE)?;
        boot::write_tables(&ram)?;
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(VmmError::kvm("KVM_GET_SUPPORTED_CPUID"))?;
        let mut vcpus = Vec::new();
        for index in 0..config.vcpus {
            let vcpu = vm.create_vcpu(u64::from(index)).map_err(VmmError::kvm("KVM_CREATE_VCPU"))?;
            vcpu.set_cpuid2(&cpuid).map_err(VmmError::kvm("KVM_SET_CPUID2"))?;
            let sregs = vcpu.get_sregs().map_err(VmmError::kvm("KVM_GET_SREGS"))?;
            vcpu.set_sregs(&boot::long_mode_sregs(sregs)).map_err(VmmError::kvm("KVM_SET_SREGS"))?;
            let stack_top = STACKS_TOP - u64::from(index) * STACK_SIZE;
            let regs = boot::entry_regs(entry, stack_top, [config.workload, config.arg, u64::from(index)]);
            vcpu.set_regs(&regs).map_err(VmmError::kvm("KVM_SET_REGS"))?;
            // With the in-kernel irqchip, APs wait for a SIPI; start them directly.
            let runnable = kvm_mp_state { mp_state: KVM_MP_STATE_RUNNABLE };
            vcpu.set_mp_state(runnable).map_err(VmmError::kvm("KVM_SET_MP_STATE"))?;
            vcpus.push(vcpu);
        }
        Ok(Self { config, vcpus, _vm: vm, _ram: ram, _kvm: kvm })
    }

    /// Runs every vCPU on its own thread until the guest exits, a vCPU
    /// faults, or the timeout passes.
    pub fn run(self) -> Result<VmOutcome, VmmError> {
        vcpu::install_kick_handler();
        let Vm { config, vcpus, _vm, _ram, _kvm } = self;
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = mpsc::channel();
        let started = Instant::now();
        let mut threads = Vec::new();
        for (index, fd) in vcpus.into_iter().enumerate() {
            let (shared, stop, done) = (shared.clone(), stop.clone(), done_tx.clone());
            let handle = thread::Builder::new()
                .name(format!("vcpu{index}"))
                .spawn(move || {
                    let why = vcpu::run(index as u32, fd, &shared, &stop);
                    let _ = done.send((index as u32, why));
                })
                .map_err(VmmError::Thread)?;
            threads.push(handle);
        }
        drop(done_tx);
        let deadline = started + config.timeout;
        let mut outcome = None;
        while outcome.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match done_rx.recv_timeout(left) {
                Ok((_, Some(why))) => outcome = Some(Ok(why)),
                Ok((_, None)) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => outcome = Some(Err(VmmError::Timeout(config.timeout))),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    outcome = Some(Err(VmmError::VcpuPanicked(u32::MAX)));
                }
            }
        }
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Release);
        stop_all(threads)?;
        let why = outcome.expect("loop ends with an outcome")?;
        let status = match why {
            Stop::GuestExit(status) => status,
            Stop::Fault(msg) => return Err(VmmError::GuestFault(msg)),
        };
        Ok(VmOutcome {
            status,
            smoke_writes: shared.smoke_writes.load(Ordering::Relaxed),
            mmio_exits: shared.mmio_exits.load(Ordering::Relaxed),
            elapsed,
        })
    }
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
