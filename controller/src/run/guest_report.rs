//! Reading what the guest reported (guest_abi::VcpuReport and the latency
//! sample rings) out of guest RAM after the VM stopped.

use vm_memory::{Bytes, GuestAddress};
use xevtchn_common::{
    guest_abi::VcpuReport,
    layout::{self, SAMPLES_PER_VCPU},
};

use crate::vmm::{VmmError, memory::GuestRam};

pub fn read_report(ram: &GuestRam, vcpu: u32) -> Result<VcpuReport, VmmError> {
    let addr = layout::report(vcpu);
    let mut bytes = [0u8; size_of::<VcpuReport>()];
    ram.read_slice(&mut bytes, GuestAddress(addr)).map_err(|_| VmmError::GuestAccess(addr))?;
    // SAFETY: VcpuReport is repr(C), made only of u64s (any bit pattern is
    // valid), and `bytes` has exactly its size.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<VcpuReport>()) })
}

/// The latency samples of `vcpu` (the ring keeps the latest ones).
pub fn read_samples(ram: &GuestRam, vcpu: u32, recorded: u64) -> Result<Vec<u64>, VmmError> {
    let n = recorded.min(SAMPLES_PER_VCPU) as usize;
    let addr = layout::samples(vcpu);
    let mut bytes = vec![0u8; n * 8];
    ram.read_slice(&mut bytes, GuestAddress(addr)).map_err(|_| VmmError::GuestAccess(addr))?;
    Ok(bytes.as_chunks::<8>().0.iter().map(|c| u64::from_le_bytes(*c)).collect())
}
