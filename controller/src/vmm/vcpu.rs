//! One vCPU thread: KVM_RUN, then hand the exit to the guest platform.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use kvm_ioctls::{VcpuExit, VcpuFd};

use super::gate::VcpuGate;

/// Why a VM stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The guest wrote its exit status (0 = success).
    GuestExit(u32),
    /// The guest did something the VMM cannot continue from.
    Fault(String),
}

/// The platform a vCPU's exits are handled by (the Xen domain).
pub trait Platform: Send + Sync {
    /// An MMIO read: the value the guest reads, or a reason to stop.
    fn mmio_read(&self, vcpu: u32, fd: &VcpuFd, addr: u64) -> Result<u64, Stop>;
    /// An MMIO write of `len` bytes (`value` holds them, little-endian).
    fn mmio_write(&self, vcpu: u32, fd: &VcpuFd, addr: u64, value: u64, len: usize) -> Result<(), Stop>;
    /// A WRMSR KVM did not handle: true if accepted (false injects #GP).
    fn msr_write(&self, vcpu: u32, index: u32, value: u64) -> bool;
    /// A RDMSR KVM did not handle: the value, or None for #GP.
    fn msr_read(&self, vcpu: u32, index: u32) -> Option<u64>;
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

enum Access {
    Read { addr: u64, len: usize },
    Write { addr: u64, value: u64, len: usize },
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
        let access = match result {
            Ok(VcpuExit::MmioRead(addr, data)) => Access::Read { addr, len: data.len() },
            Ok(VcpuExit::MmioWrite(addr, data)) => {
                let mut bytes = [0u8; 8];
                let n = data.len().min(8);
                bytes[..n].copy_from_slice(&data[..n]);
                Access::Write { addr, value: u64::from_le_bytes(bytes), len: data.len() }
            }
            Ok(VcpuExit::X86Wrmsr(exit)) => {
                *exit.error = u8::from(!platform.msr_write(index, exit.index, exit.data));
                continue;
            }
            Ok(VcpuExit::X86Rdmsr(exit)) => {
                match platform.msr_read(index, exit.index) {
                    Some(value) => *exit.data = value,
                    None => *exit.error = 1,
                }
                continue;
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
        let handled = match access {
            Access::Read { addr, len } => platform.mmio_read(index, &fd, addr).map(|value| {
                complete_read(&mut fd, value, len);
            }),
            Access::Write { addr, value, len } => platform.mmio_write(index, &fd, addr, value, len),
        };
        if let Err(why) = handled {
            return Some(why);
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
