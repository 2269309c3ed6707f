//! One vCPU thread: KVM_RUN, then hand the exit to the guest platform.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use kvm_ioctls::{VcpuExit, VcpuFd};

use super::{
    exit::{Exit, Reply, VcpuState},
    gate::VcpuGate,
};

/// Why a VM stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The guest wrote its exit status (0 = success).
    GuestExit(u32),
    /// The guest shut itself down (SCHEDOP_shutdown with this reason).
    Shutdown(u32),
    /// The guest needs what xevtchn does not implement (said in one line).
    Unsupported(String),
    /// The guest did something the VMM cannot continue from.
    Fault(String),
}

/// The platform a vCPU's exits are handled by (the Xen domain).
pub trait Platform: Send + Sync {
    /// Handles `exit` of vCPU `vcpu`, whose registers and page tables
    /// `state` gives access to; says how the vCPU goes on.
    fn handle_exit(&self, vcpu: u32, state: &mut dyn VcpuState, exit: Exit) -> Reply;
}

/// Signal used to kick a vCPU thread out of KVM_RUN.
pub fn kick_signal() -> i32 {
    vmm_sys_util::signal::SIGRTMIN()
}

/// Installs a no-op handler for the kick signal, so that it only makes
/// KVM_RUN return EINTR instead of killing the process.
pub fn install_kick_handler() {
    extern "C" fn noop(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
    // Registering twice is harmless; the error only says it was there.
    let _ = vmm_sys_util::signal::register_signal_handler(kick_signal(), noop);
}

/// Runs `fd` until the VM stops; returns why this vCPU stopped it, or None
/// when another vCPU (or the controller) did.
pub fn run(index: u32, fd: VcpuFd, platform: &dyn Platform, stop: &Arc<AtomicBool>, gate: &VcpuGate) -> Option<Stop> {
    gate.register_current_thread();
    let why = run_loop(index, fd, platform, stop, gate);
    gate.deregister_current_thread();
    why
}

fn run_loop(
    index: u32,
    mut fd: VcpuFd,
    platform: &dyn Platform,
    stop: &Arc<AtomicBool>,
    gate: &VcpuGate,
) -> Option<Stop> {
    loop {
        if stop.load(Ordering::Acquire) {
            return None;
        }
        let running = gate.enter();
        let result = fd.run();
        drop(running);
        let exit = match result {
            Ok(VcpuExit::MmioRead(addr, data)) => Exit::MmioRead { addr, len: data.len() },
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                let mut bytes = [0u8; 8];
                let n = data.len().min(8);
                bytes[..n].copy_from_slice(&data[..n]);
                Exit::MmioWrite { addr, value: u64::from_le_bytes(bytes), len: data.len() }
            }
            Ok(VcpuExit::X86Wrmsr(exit)) => Exit::WrMsr { index: exit.index, value: exit.data },
            Ok(VcpuExit::X86Rdmsr(exit)) => Exit::RdMsr { index: exit.index },
            Ok(VcpuExit::IoOut(port, data)) => {
                let mut bytes = [0u8; 8];
                let n = data.len().min(8);
                bytes[..n].copy_from_slice(&data[..n]);
                Exit::PioOut { port, value: u64::from_le_bytes(bytes), len: data.len() }
            }
            Ok(VcpuExit::IoIn(port, data)) => {
                // Like an unclaimed ISA bus: all ones.
                data.fill(0xff);
                Exit::PioIn { port }
            }
            // The in-kernel irqchip handles hlt; a stray one just resumes.
            Ok(VcpuExit::Hlt) => continue,
            Ok(VcpuExit::Shutdown) => {
                return Some(Stop::Fault(format!("vCPU {index}: triple fault at {}", where_(&fd))));
            }
            Ok(other) => {
                let what = format!("{other:?}");
                return Some(Stop::Fault(format!("vCPU {index}: unexpected exit {what} at {}", where_(&fd))));
            }
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
            Err(e) => return Some(Stop::Fault(format!("vCPU {index}: KVM_RUN failed: {e}"))),
        };
        match platform.handle_exit(index, &mut fd, exit) {
            Reply::Read(value) => {
                if let Exit::MmioRead { len, .. } = exit {
                    complete_read(&mut fd, value, len);
                }
            }
            Reply::MsrRead(value) => complete_msr(&mut fd, value.is_none(), value),
            Reply::MsrWritten(accepted) => complete_msr(&mut fd, !accepted, None),
            Reply::Stop(why) => return Some(why),
            Reply::Resume => {}
        }
    }
}

/// The vCPU's rip and privilege level, for error messages.
fn where_(fd: &VcpuFd) -> String {
    match (fd.get_regs(), fd.get_sregs()) {
        (Ok(regs), Ok(sregs)) => format!("rip {:#x} (CPL{})", regs.rip, sregs.cs.selector & 3),
        _ => "an unknown rip".into(),
    }
}

/// Completes the MSR access KVM is waiting on: `gp` injects #GP; `read`
/// is what a RDMSR reads.
fn complete_msr(fd: &mut VcpuFd, gp: bool, read: Option<u64>) {
    let run = fd.get_kvm_run();
    // SAFETY: the last exit was KVM_EXIT_X86_RDMSR or _WRMSR, so `msr` is
    // the active member of the union; KVM reads `error` (and a RDMSR's
    // `data`) on the next KVM_RUN.
    let msr = unsafe { &mut run.__bindgen_anon_1.msr };
    msr.error = u8::from(gp);
    if let Some(value) = read {
        msr.data = value;
    }
}

/// Gives the guest `value` for the MMIO read KVM is waiting to complete.
fn complete_read(fd: &mut VcpuFd, value: u64, len: usize) {
    let run = fd.get_kvm_run();
    // SAFETY: the last exit was KVM_EXIT_MMIO, so `mmio` is the active
    // member of the union; KVM copies `data[..len]` into the guest's
    // register on the next KVM_RUN.
    let data = unsafe { &mut run.__bindgen_anon_1.mmio.data };
    let n = len.min(8);
    data[..n].copy_from_slice(&value.to_le_bytes()[..n]);
}
