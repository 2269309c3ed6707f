//! The IOAPIC (at its default MMIO address): routing the level-triggered
//! GSI / PCI INTx callback line to a vector on vCPU 0.

const IOAPIC_BASE: u64 = 0xfec0_0000;
const IOREGSEL: u64 = IOAPIC_BASE;
const IOWIN: u64 = IOAPIC_BASE + 0x10;
const REDIRECTION_BASE: u32 = 0x10;
const LEVEL_TRIGGERED: u32 = 1 << 15;

fn write(register: u32, value: u32) {
    crate::mmio::write_u32(IOREGSEL, register);
    crate::mmio::write_u32(IOWIN, value);
}

/// Routes `gsi` to `vector` on the vCPU with APIC ID `apic_id`: fixed,
/// physical destination, active high, level triggered, unmasked.
pub fn route_level(gsi: u32, vector: u8, apic_id: u8) {
    let entry = REDIRECTION_BASE + 2 * gsi;
    write(entry + 1, u32::from(apic_id) << 24);
    write(entry, u32::from(vector) | LEVEL_TRIGGERED);
}
