//! Guest RAM: one anonymous mapping registered as memslot 0.
//!
//! All accesses go through vm-memory's `Bytes` (bounds-checked copies and
//! atomic loads/stores), never through raw pointers scattered around.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use super::VmmError;

pub type GuestRam = GuestMemoryMmap<()>;

/// Allocates `size` bytes of RAM at guest-physical 0 and registers it with KVM.
pub fn create_ram(vm: &VmFd, size: u64) -> Result<GuestRam, VmmError> {
    let ram =
        GuestRam::from_ranges(&[(GuestAddress(0), size as usize)]).map_err(VmmError::Memory)?;
    for (slot, region) in ram.iter().enumerate() {
        let host = ram
            .get_host_address(region.start_addr())
            .map_err(|_| VmmError::GuestAccess(region.start_addr().0))?;
        let mem = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live mapping owned by `ram`, which the VM
        // keeps alive for as long as the VM fd exists (see Vm's field order).
        unsafe { vm.set_user_memory_region(mem) }
            .map_err(VmmError::kvm("KVM_SET_USER_MEMORY_REGION"))?;
    }
    Ok(ram)
}
