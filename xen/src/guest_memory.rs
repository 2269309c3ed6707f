//! Guest memory as hypercalls see it: arguments are guest *virtual*
//! addresses. The VMM implements [`GuestMemory`] by walking the guest's
//! page tables; a fault becomes -EFAULT, as Xen's copy_from_guest does.

use thiserror::Error;
use xevtchn_common::xen::XenAbi;

/// The guest address range could not be accessed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("guest virtual address {gva:#x} ({len} bytes) is not accessible")]
pub struct GuestFault {
    pub gva: u64,
    pub len: usize,
}

/// Byte access to the calling vCPU's guest virtual address space.
pub trait GuestMemory {
    /// Fills `buf` from `gva..gva + buf.len()`.
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), GuestFault>;
    /// Writes `data` to `gva..gva + data.len()`.
    fn write(&self, gva: u64, data: &[u8]) -> Result<(), GuestFault>;
}

/// Copies a Xen struct from the guest (copy_from_guest).
pub fn read_obj<T: XenAbi, M: GuestMemory + ?Sized>(mem: &M, gva: u64) -> Result<T, GuestFault> {
    let mut bytes = vec![0u8; size_of::<T>()];
    mem.read(gva, &mut bytes)?;
    Ok(T::from_bytes(&bytes).expect("the buffer has exactly size_of::<T>() bytes"))
}

/// Copies a Xen struct to the guest (copy_to_guest).
pub fn write_obj<T: XenAbi, M: GuestMemory + ?Sized>(mem: &M, gva: u64, value: &T) -> Result<(), GuestFault> {
    mem.write(gva, value.as_bytes())
}
