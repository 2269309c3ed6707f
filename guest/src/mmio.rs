//! MMIO accesses: the guest's only way to talk to the VMM besides interrupts
//! (port I/O faults at CPL3 and vmcall is unusable on this host kind).

/// A 4-byte write to guest-physical (identity-mapped) address `gpa`.
#[inline(always)]
pub fn write_u32(gpa: u64, value: u32) {
    // SAFETY: `gpa` is inside the MMIO region of layout.rs, identity-mapped by
    // the boot page tables and backed by no memory; the access traps to KVM.
    unsafe { core::ptr::write_volatile(gpa as *mut u32, value) }
}

/// A 4-byte read of guest-physical (identity-mapped) address `gpa`.
#[inline(always)]
pub fn read_u32(gpa: u64) -> u32 {
    // SAFETY: as for write_u32: an MMIO address that traps to KVM.
    unsafe { core::ptr::read_volatile(gpa as *const u32) }
}
