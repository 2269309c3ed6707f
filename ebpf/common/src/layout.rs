//! The guest-physical memory map shared by the VMM and the built-in guest.
//!
//! ```text
//! 0x0000_0000  RAM (the other vCPUs' real-mode trampoline and the
//!              doorbell canary live in its first pages)
//! 0x0020_0000  the guest image (linked here by guest/link.ld)
//! 0x00e0_0000  vCPU stacks (64 KiB each, vCPU 0 at the top)
//! 0x0100_0000  Params, then the per-vCPU reports
//! 0x0110_0000  per-vCPU latency sample rings (512 KiB each)
//! ...          RAM continues up to the configured size (64 MiB)
//! 0xc000_0000  shared_info, where the built-in guest places it
//! 0xd000_0000  MMIO: control window (exit, smoke writes)    — exits to the VMM
//! 0xd000_1000  MMIO: hypercall window (reads return results) — exits to the VMM
//! 0xd001_0000  MMIO: event-channel doorbells, one per port   — ioeventfd or exit
//! ```

/// Where vCPU 0 copies the real-mode trampoline that a SIPI starts the
/// other vCPUs at (page aligned, below 1 MiB: the SIPI's vector is its page).
pub const AP_TRAMPOLINE: u64 = 0x8000;
/// Where the VMM places the doorbell canary's few instructions, run on
/// vCPU 0 before the guest starts (the page is cleared afterwards).
pub const CANARY_CODE: u64 = 0x9000;
/// Where the guest image is linked and loaded.
pub const IMAGE_BASE: u64 = 0x20_0000;
/// Initial stack pointer of vCPU 0 (stacks grow down; one 64 KiB stack per vCPU).
pub const STACKS_TOP: u64 = 0x100_0000;
pub const STACK_SIZE: u64 = 0x1_0000;
/// Where the VMM writes the guest's `guest_abi::Params`.
pub const PARAMS: u64 = 0x100_0000;
/// A u64 the VMM sets to 1 to ask the guest to stop sending and write its
/// report now (`xevtchn run` on SIGINT or SIGTERM); in the Params page.
pub const STOP_REQUEST: u64 = PARAMS + 0x800;
/// Per-vCPU `guest_abi::VcpuReport`s, 256 bytes apart.
pub const REPORTS: u64 = PARAMS + 0x1000;
pub const REPORT_STRIDE: u64 = 0x100;
/// Per-vCPU rings of latency samples (u64 TSC ticks).
pub const SAMPLES: u64 = 0x110_0000;
pub const SAMPLES_PER_VCPU: u64 = 0x8_0000 / 8;
/// The GFN at which the built-in guest places shared_info: outside RAM, so
/// the VMM need not split the RAM memslot (other guests may choose RAM).
pub const SHARED_INFO_GPA: u64 = 0xc000_0000;
/// A free RAM page the guest can place shared_info over instead (as Linux
/// does with a page of its own RAM), which makes the VMM split RAM's memslot.
pub const SHARED_INFO_IN_RAM_GPA: u64 = 0x300_0000;

pub const fn report(vcpu: u32) -> u64 {
    REPORTS + vcpu as u64 * REPORT_STRIDE
}

pub const fn samples(vcpu: u32) -> u64 {
    SAMPLES + vcpu as u64 * SAMPLES_PER_VCPU * 8
}

/// Default guest RAM size.
pub const RAM_SIZE: u64 = 64 << 20;

/// Base of the MMIO region the VMM decodes. Not backed by any memslot.
pub const MMIO_BASE: u64 = 0xd000_0000;
/// Control window: guest-to-VMM signals that are not hypercalls.
pub const CONTROL_BASE: u64 = MMIO_BASE;
/// Writing a status here ends the VM (0 = success).
pub const CONTROL_EXIT: u64 = CONTROL_BASE;
/// The smoke workload writes its counter here; the VMM only counts.
pub const CONTROL_SMOKE: u64 = CONTROL_BASE + 0x100;
/// The doorbell canary writes here when it is done (VMM start-up only).
pub const CONTROL_CANARY: u64 = CONTROL_BASE + 0x200;
pub const CONTROL_SIZE: u64 = 0x1000;

/// Hypercall window: a general hypercall is a read from here.
pub const HYPERCALL_BASE: u64 = MMIO_BASE + 0x1000;
pub const HYPERCALL_SIZE: u64 = 0x1000;

/// The I/O port a CPL0 hypercall stub writes the hypercall number to
/// (`out 0x9e, eax`): port I/O needs no mapping, so it works from any
/// guest's page tables (port I/O faults at CPL3 on PVM; CPL3 uses the
/// MMIO window). Not claimed by any device KVM emulates in-kernel.
pub const HYPERCALL_PORT: u16 = 0x9e;

/// Doorbells: EVTCHNOP_send on port p is a 4-byte write of p to
/// `DOORBELL_BASE + p * DOORBELL_STRIDE` (the contract is `doorbell`).
pub const DOORBELL_BASE: u64 = MMIO_BASE + 0x1_0000;
pub const DOORBELL_STRIDE: u64 = 8;

/// Port-I/O doorbells, for CPL0 senders (port I/O needs no mapping, so it
/// works from any guest's page tables): EVTCHNOP_send on port p is a
/// 4-byte `out` of 0 to `PIO_DOORBELL_BASE + p * PIO_DOORBELL_STRIDE` (the
/// contract is `doorbell`). 0x8000-0xbfff: no device KVM emulates there.
pub const PIO_DOORBELL_BASE: u16 = 0x8000;
pub const PIO_DOORBELL_STRIDE: u16 = 4;

/// The I/O port of `port`'s doorbell.
pub const fn pio_doorbell(port: u32) -> u16 {
    PIO_DOORBELL_BASE + port as u16 * PIO_DOORBELL_STRIDE
}

/// Start of MMIO address `DOORBELL_BASE` for `port`.
pub const fn doorbell(port: u32) -> u64 {
    DOORBELL_BASE + port as u64 * DOORBELL_STRIDE
}
