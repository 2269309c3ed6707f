//! vCPU exits as the platform handles them: plain values, so that exit
//! handling is a plain function, tested with made-up exits (the way
//! Firecracker tests `handle_kvm_exit`), and the little of the exiting
//! vCPU it may touch, behind a trait. Also: what an MMIO address means.

use kvm_ioctls::VcpuFd;

use xevtchn_common::{
    layout::{CONTROL_EXIT, CONTROL_SMOKE, DOORBELL_BASE, DOORBELL_STRIDE, HYPERCALL_BASE, HYPERCALL_SIZE},
    two_level::NR_PORTS,
};

/// An exit the platform handles (the vCPU loop handles the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    MmioRead {
        addr: u64,
        len: usize,
    },
    /// `value` holds the `len` bytes written, little-endian.
    MmioWrite {
        addr: u64,
        value: u64,
        len: usize,
    },
    /// A WRMSR or RDMSR that KVM left to userspace.
    WrMsr {
        index: u32,
        value: u64,
    },
    RdMsr {
        index: u32,
    },
    /// An `out` (`value` holds the `len` bytes written, little-endian).
    PioOut {
        port: u16,
        value: u64,
        len: usize,
    },
    /// An `in`: it reads all ones (nothing here decodes port reads).
    PioIn {
        port: u16,
    },
}

/// What the vCPU loop does after an exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Run on (a write, or an access dropped).
    Resume,
    /// Complete the MMIO read with this value.
    Read(u64),
    /// Complete the RDMSR with this value, or inject #GP (None).
    MsrRead(Option<u64>),
    /// The WRMSR was accepted, or gets #GP (false).
    MsrWritten(bool),
    /// Stop the VM.
    Stop(super::vcpu::Stop),
}

/// What exit handling reads and changes of the exiting vCPU: the hypercall
/// argument registers, rax, and its page tables (for guest pointers).
pub trait VcpuState {
    /// rdi, rsi, rdx, r10, r8: the arguments of a 64-bit hypercall.
    fn hypercall_args(&self) -> Result<[u64; 5], String>;
    fn set_rax(&mut self, value: u64) -> Result<(), String>;
    /// The guest-physical address of `gva` in the vCPU's page tables.
    fn translate(&self, gva: u64) -> Option<u64>;
    /// The vCPU runs 64-bit code (EFER.LMA and CS.L): Xen latches the
    /// guest's mode when it writes the hypercall-page MSR.
    fn long_mode(&self) -> Result<bool, String>;
}

impl VcpuState for VcpuFd {
    fn hypercall_args(&self) -> Result<[u64; 5], String> {
        let r = self.get_regs().map_err(|e| format!("KVM_GET_REGS: {e}"))?;
        Ok([r.rdi, r.rsi, r.rdx, r.r10, r.r8])
    }

    fn set_rax(&mut self, value: u64) -> Result<(), String> {
        let mut regs = self.get_regs().map_err(|e| format!("KVM_GET_REGS: {e}"))?;
        regs.rax = value;
        self.set_regs(&regs).map_err(|e| format!("KVM_SET_REGS: {e}"))
    }

    fn translate(&self, gva: u64) -> Option<u64> {
        self.translate_gva(gva).ok().filter(|t| t.valid != 0).map(|t| t.physical_address)
    }

    fn long_mode(&self) -> Result<bool, String> {
        const EFER_LMA: u64 = 1 << 10;
        let sregs = self.get_sregs().map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
        Ok(sregs.efer & EFER_LMA != 0 && sregs.cs.l == 1)
    }
}

/// The MMIO register an access hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mmio {
    /// The guest ends the VM with a status.
    Exit,
    /// The smoke workload's counter.
    Smoke,
    /// A read performs hypercall `nr`.
    Hypercall(u64),
    /// A write sends an event on `port`.
    Doorbell(u32),
    Unknown,
}

pub fn classify(addr: u64) -> Mmio {
    match addr {
        CONTROL_EXIT => Mmio::Exit,
        CONTROL_SMOKE => Mmio::Smoke,
        a if (HYPERCALL_BASE..HYPERCALL_BASE + HYPERCALL_SIZE).contains(&a) && a.is_multiple_of(8) => {
            Mmio::Hypercall((a - HYPERCALL_BASE) / 8)
        }
        a if a >= DOORBELL_BASE
            && a < DOORBELL_BASE + u64::from(NR_PORTS) * DOORBELL_STRIDE
            && (a - DOORBELL_BASE).is_multiple_of(DOORBELL_STRIDE) =>
        {
            Mmio::Doorbell(((a - DOORBELL_BASE) / DOORBELL_STRIDE) as u32)
        }
        _ => Mmio::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xevtchn_common::layout::doorbell;

    #[test]
    fn control_registers() {
        assert_eq!(classify(CONTROL_EXIT), Mmio::Exit);
        assert_eq!(classify(CONTROL_SMOKE), Mmio::Smoke);
    }

    #[test]
    fn hypercall_window_decodes_the_number() {
        assert_eq!(classify(HYPERCALL_BASE), Mmio::Hypercall(0));
        assert_eq!(classify(HYPERCALL_BASE + 32 * 8), Mmio::Hypercall(32));
        assert_eq!(classify(HYPERCALL_BASE + 3), Mmio::Unknown, "unaligned");
    }

    #[test]
    fn doorbells_decode_the_port_and_stop_at_the_last_port() {
        assert_eq!(classify(doorbell(0)), Mmio::Doorbell(0));
        assert_eq!(classify(doorbell(4095)), Mmio::Doorbell(4095));
        assert_eq!(classify(doorbell(4096)), Mmio::Unknown);
        assert_eq!(classify(doorbell(7) + 4), Mmio::Unknown, "inside a stride");
    }

    #[test]
    fn anything_else_is_unknown() {
        assert_eq!(classify(0xdead_0000), Mmio::Unknown);
    }
}
