//! What an MMIO address means to the VMM: a plain function, tested with
//! made-up addresses.

use xevtchn_common::{
    layout::{CONTROL_EXIT, CONTROL_SMOKE, DOORBELL_BASE, DOORBELL_STRIDE, HYPERCALL_BASE, HYPERCALL_SIZE},
    two_level::NR_PORTS,
};

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
