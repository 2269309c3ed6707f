//! What each vCPU saw, counted atomically (the upcall handler interrupts
//! the workload on the same vCPU) and published for the VMM at the end.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use xevtchn_common::{
    guest_abi::VcpuReport,
    layout::{self, SAMPLES_PER_VCPU},
};

use crate::arch::descriptors::MAX_VCPUS;

#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    pub stale: AtomicU64,
    pub upcalls: AtomicU64,
    pub spurious_upcalls: AtomicU64,
    pub lost: AtomicU64,
    pub errors: AtomicU64,
    pub first_error: AtomicU64,
    pub samples: AtomicU64,
    pub masked_sends: AtomicU64,
    pub play_start_tsc: AtomicU64,
    pub play_end_tsc: AtomicU64,
    pub moves: AtomicU64,
    pub move_tsc: AtomicU64,
    pub fuzz_calls: AtomicU64,
    pub fuzz_faults: AtomicU64,
    pub fuzz_accepted: AtomicU64,
}

static COUNTERS: [Counters; MAX_VCPUS] = [const {
    Counters {
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        stale: AtomicU64::new(0),
        upcalls: AtomicU64::new(0),
        spurious_upcalls: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        first_error: AtomicU64::new(0),
        samples: AtomicU64::new(0),
        masked_sends: AtomicU64::new(0),
        play_start_tsc: AtomicU64::new(0),
        play_end_tsc: AtomicU64::new(0),
        moves: AtomicU64::new(0),
        move_tsc: AtomicU64::new(0),
        fuzz_calls: AtomicU64::new(0),
        fuzz_faults: AtomicU64::new(0),
        fuzz_accepted: AtomicU64::new(0),
    }
}; MAX_VCPUS];

static FAULT_RIP: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
pub fn counters(vcpu: u32) -> &'static Counters {
    &COUNTERS[vcpu as usize % MAX_VCPUS]
}

impl Counters {
    pub fn error(&self, code: u32) {
        if self.errors.fetch_add(1, Relaxed) == 0 {
            self.first_error.store(u64::from(code), Relaxed);
        }
    }

    /// Records a latency sample (TSC ticks) in `vcpu`'s ring. Only the
    /// vCPU's own upcall handler calls this, so the ring has one writer.
    #[inline(always)]
    pub fn sample(&self, vcpu: u32, ticks: u64) {
        let n = self.samples.fetch_add(1, Relaxed);
        let slot = layout::samples(vcpu) + (n % SAMPLES_PER_VCPU) * 8;
        // SAFETY: the ring is guest RAM reserved for this vCPU by layout.rs.
        unsafe { core::ptr::write_volatile(slot as *mut u64, ticks) };
    }
}

pub fn note_fault(rip: u64) {
    FAULT_RIP.store(rip, Relaxed);
}

/// Writes `vcpu`'s report where the VMM reads it.
pub fn publish(vcpu: u32) {
    let c = counters(vcpu);
    let report = VcpuReport {
        done: 1,
        sent: c.sent.load(Relaxed),
        delivered: c.delivered.load(Relaxed),
        stale: c.stale.load(Relaxed),
        upcalls: c.upcalls.load(Relaxed),
        spurious_upcalls: c.spurious_upcalls.load(Relaxed),
        lost: c.lost.load(Relaxed),
        errors: c.errors.load(Relaxed),
        first_error: c.first_error.load(Relaxed),
        samples: c.samples.load(Relaxed),
        masked_sends: c.masked_sends.load(Relaxed),
        fault_rip: FAULT_RIP.load(Relaxed),
        play_start_tsc: c.play_start_tsc.load(Relaxed),
        play_end_tsc: c.play_end_tsc.load(Relaxed),
        moves: c.moves.load(Relaxed),
        move_tsc: c.move_tsc.load(Relaxed),
        fuzz_calls: c.fuzz_calls.load(Relaxed),
        fuzz_faults: c.fuzz_faults.load(Relaxed),
        fuzz_accepted: c.fuzz_accepted.load(Relaxed),
    };
    // SAFETY: the report slot is guest RAM reserved for this vCPU.
    unsafe { core::ptr::write_volatile(layout::report(vcpu) as *mut VcpuReport, report) };
}
