//! Guest RAM: one anonymous mapping registered as memslot 0.
//!
//! All accesses go through vm-memory's `Bytes` (bounds-checked copies and
//! atomic loads/stores), never through raw pointers scattered around.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use super::VmmError;

pub type GuestRam = GuestMemoryMmap<()>;

/// `size` bytes of anonymous RAM at guest-physical 0, not yet KVM's.
pub fn anonymous_ram(size: u64) -> Result<GuestRam, VmmError> {
    GuestRam::from_ranges(&[(GuestAddress(0), size as usize)]).map_err(VmmError::Memory)
}

/// Allocates `size` bytes of RAM at guest-physical 0 and registers it with KVM.
pub fn create_ram(vm: &VmFd, size: u64) -> Result<GuestRam, VmmError> {
    let ram = anonymous_ram(size)?;
    for (slot, region) in ram.iter().enumerate() {
        let host =
            ram.get_host_address(region.start_addr()).map_err(|_| VmmError::GuestAccess(region.start_addr().0))?;
        let mem = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: host as u64,
        };
        // SAFETY: the region is a live mapping owned by `ram`, which the VM
        // keeps alive for as long as the VM fd exists (see Vm's field order).
        unsafe { vm.set_user_memory_region(mem) }.map_err(VmmError::kvm("KVM_SET_USER_MEMORY_REGION"))?;
    }
    Ok(ram)
}

/// KVM slot numbers: RAM below and above a hole, and the hole's page.
pub const RAM_LOW_SLOT: u32 = 0;
pub const PAGE_SLOT: u32 = 1;
pub const RAM_HIGH_SLOT: u32 = 2;
const PAGE: u64 = 4096;

fn region(slot: u32, gpa: u64, size: u64, host: u64) -> kvm_userspace_memory_region {
    kvm_userspace_memory_region { slot, flags: 0, guest_phys_addr: gpa, memory_size: size, userspace_addr: host }
}

/// Re-lays RAM's memslots around a one-page hole at `hole` (or none), so
/// that another memslot can take that page. Only with every vCPU paused
/// (vmm::gate): between the deletion and the re-creation, RAM is missing.
pub fn set_ram_hole(vm: &VmFd, ram: &GuestRam, hole: Option<u64>) -> Result<(), VmmError> {
    let host = ram.get_host_address(GuestAddress(0)).map_err(|_| VmmError::GuestAccess(0))? as u64;
    let size: u64 = ram.iter().map(|r| r.len()).sum();
    let set = |r: kvm_userspace_memory_region| {
        // SAFETY: the regions lie inside `ram`'s mapping, which outlives the VM fd.
        unsafe { vm.set_user_memory_region(r) }.map_err(VmmError::kvm("KVM_SET_USER_MEMORY_REGION"))
    };
    // Deleting a slot that does not exist (the high part, the first time)
    // fails with EINVAL, harmlessly.
    let _ = set(region(RAM_LOW_SLOT, 0, 0, host));
    let _ = set(region(RAM_HIGH_SLOT, 0, 0, host));
    match hole {
        None => set(region(RAM_LOW_SLOT, 0, size, host)),
        Some(gpa) => {
            if gpa > 0 {
                set(region(RAM_LOW_SLOT, 0, gpa, host))?;
            }
            if gpa + PAGE < size {
                set(region(RAM_HIGH_SLOT, gpa + PAGE, size - gpa - PAGE, host + gpa + PAGE))?;
            }
            Ok(())
        }
    }
}
