//! The doorbell canary: before the guest starts, vCPU 0 rings the canary
//! port's doorbell once, so that the controller can check that the doorbell
//! program sees this VM's doorbells on this host (see `platform::fast_path`).
//! A host whose KVM completed MMIO writes on a path that skips
//! `trace_kvm_mmio` would otherwise lose every fast send silently.
//!
//! The code is a handful of bytes at `layout::CANARY_CODE` that run alike in
//! 32-bit protected mode and in 64-bit mode (absolute addresses below
//! 4 GiB): the MMIO doorbell write (port 0, value 0), the port-I/O
//! doorbell write (value 0), then a write to `CONTROL_CANARY`, which exits
//! to us.

use kvm_ioctls::{VcpuExit, VcpuFd};
use vm_memory::{Bytes, GuestAddress};
use xevtchn_common::{
    doorbell::{CANARY_PORT, PIO_DOORBELL_VALUE, doorbell, pio_doorbell},
    layout::{CANARY_CODE, CONTROL_CANARY},
};

use super::{VmmError, memory::GuestRam};

/// What the canary's run showed of the VMM's own side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryRun {
    /// The doorbell write exited to userspace instead of completing in the
    /// kernel (no ioeventfd took it).
    pub doorbell_exited: bool,
}

/// The canary's instructions.
pub fn code() -> Vec<u8> {
    let mut c = vec![0x31, 0xc0]; //                                xor eax, eax
    debug_assert_eq!(CANARY_PORT, 0, "eax holds the port number");
    c.push(0xbb); //                                                mov ebx, imm32
    c.extend((doorbell(CANARY_PORT) as u32).to_le_bytes());
    c.extend([0x89, 0x03]); //                                      mov [rbx], eax
    c.extend([0x66, 0xba]); //                                      mov dx, imm16
    c.extend(pio_doorbell(CANARY_PORT).to_le_bytes());
    debug_assert_eq!(PIO_DOORBELL_VALUE, 0, "eax holds the value");
    c.push(0xef); //                                                out dx, eax
    c.push(0xbb); //                                                mov ebx, imm32
    c.extend((CONTROL_CANARY as u32).to_le_bytes());
    c.extend([0x89, 0x03]); //                                      mov [rbx], eax
    c.push(0xf4); //                                                hlt (never reached)
    c
}

/// Runs the canary on `vcpu` (which must be in its boot state, where
/// `CANARY_CODE` is identity-mapped) and restores its registers after.
pub fn run(vcpu: &mut VcpuFd, ram: &GuestRam) -> Result<CanaryRun, VmmError> {
    let code = code();
    // A foreign kernel may have loaded something there: put it back after.
    let mut saved = vec![0u8; code.len()];
    ram.read_slice(&mut saved, GuestAddress(CANARY_CODE)).map_err(|_| VmmError::GuestAccess(CANARY_CODE))?;
    ram.write_slice(&code, GuestAddress(CANARY_CODE)).map_err(|_| VmmError::GuestAccess(CANARY_CODE))?;
    let boot = vcpu.get_regs().map_err(VmmError::kvm("KVM_GET_REGS"))?;
    vcpu.set_regs(&kvm_bindings::kvm_regs { rip: CANARY_CODE, rflags: 0x2, ..boot })
        .map_err(VmmError::kvm("KVM_SET_REGS"))?;
    let mut doorbell_exited = false;
    // A few exits at most: the doorbell (if no ioeventfd takes it), the end.
    let mut done = false;
    for _ in 0..8 {
        match vcpu.run() {
            Ok(VcpuExit::MmioWrite(addr, _)) if addr == CONTROL_CANARY => {
                done = true;
                break;
            }
            Ok(VcpuExit::MmioWrite(addr, _)) if addr == doorbell(CANARY_PORT) => doorbell_exited = true,
            Ok(VcpuExit::IoOut(port, _)) if port == pio_doorbell(CANARY_PORT) => doorbell_exited = true,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {}
            Ok(other) => return Err(VmmError::GuestFault(format!("the doorbell canary stopped with {other:?}"))),
            Err(e) => return Err(VmmError::GuestFault(format!("the doorbell canary: KVM_RUN failed: {e}"))),
        }
    }
    vcpu.set_regs(&boot).map_err(VmmError::kvm("KVM_SET_REGS"))?;
    ram.write_slice(&saved, GuestAddress(CANARY_CODE)).map_err(|_| VmmError::GuestAccess(CANARY_CODE))?;
    if !done {
        return Err(VmmError::GuestFault("the doorbell canary did not finish".into()));
    }
    Ok(CanaryRun { doorbell_exited })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canary_rings_both_doorbells_of_port_0_then_signals_the_end() {
        let c = code();
        assert_eq!(&c[..3], &[0x31, 0xc0, 0xbb]);
        assert_eq!(u32::from_le_bytes(c[3..7].try_into().unwrap()) as u64, doorbell(0));
        assert_eq!(&c[7..11], &[0x89, 0x03, 0x66, 0xba]);
        assert_eq!(u16::from_le_bytes(c[11..13].try_into().unwrap()), pio_doorbell(0));
        assert_eq!(&c[13..15], &[0xef, 0xbb], "out dx, eax (eax is 0)");
        assert_eq!(u32::from_le_bytes(c[15..19].try_into().unwrap()) as u64, CONTROL_CANARY);
        assert_eq!(&c[19..], &[0x89, 0x03, 0xf4]);
    }
}
