//! The smoke workload: `count` MMIO writes that the VMM and a BPF program on
//! `kvm:kvm_mmio` both count.

use xevtchn_common::layout::CONTROL_SMOKE;

use crate::mmio;

pub fn run(count: u64) -> u32 {
    for i in 0..count {
        mmio::write_u32(CONTROL_SMOKE, i as u32);
    }
    0
}
