//! One vCPU thread: KVM_RUN, translate the exit, act on it.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use kvm_ioctls::{VcpuExit, VcpuFd};

use super::exit::{Action, Exit, Shared, Stop, handle_exit};

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

/// Runs `vcpu` until the VM stops; returns why this vCPU stopped it, or None
/// when another vCPU (or the controller) did.
pub fn run(index: u32, mut vcpu: VcpuFd, shared: &Shared, stop: &Arc<AtomicBool>) -> Option<Stop> {
    loop {
        if stop.load(Ordering::Acquire) {
            return None;
        }
        let action = match vcpu.run() {
            // A read is completed in place, in the kvm_run page, before the
            // next KVM_RUN.
            Ok(VcpuExit::MmioRead(addr, data)) => {
                match handle_exit(shared, Exit::MmioRead { addr, len: data.len() }) {
                    Action::CompleteRead(value) => {
                        let n = data.len().min(8);
                        data[..n].copy_from_slice(&value.to_le_bytes()[..n]);
                        Action::Resume
                    }
                    other => other,
                }
            }
            Ok(exit) => handle_exit(shared, translate(exit)),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
            Err(e) => return Some(Stop::Fault(format!("vCPU {index}: KVM_RUN failed: {e}"))),
        };
        match action {
            Action::Resume | Action::CompleteRead(_) => {}
            Action::Stop(why) => return Some(why),
        }
    }
}

fn translate(exit: VcpuExit<'_>) -> Exit {
    match exit {
        VcpuExit::MmioWrite(addr, data) => {
            let mut bytes = [0u8; 8];
            let n = data.len().min(8);
            bytes[..n].copy_from_slice(&data[..n]);
            Exit::MmioWrite { addr, value: u64::from_le_bytes(bytes) }
        }
        VcpuExit::MmioRead(addr, data) => Exit::MmioRead { addr, len: data.len() },
        VcpuExit::Hlt => Exit::Hlt,
        VcpuExit::Shutdown => Exit::Shutdown,
        other => Exit::Unexpected(format!("{other:?}")),
    }
}
