//! Event delivery inside the guest: the upcall handler (like Linux's
//! drivers/xen/events/events_2l.c) and the per-port sequence numbers and
//! timestamps that let the guest count losses and measure latency itself.

use core::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

use xevtchn_common::two_level::{NR_PORTS, guest, upcall_pending};

use crate::{
    arch::{apic, cpu::rdtsc, descriptors::MAX_VCPUS},
    errors::{self, Error},
    report,
    xen::{ops, shared_info},
};

const PORTS: usize = NR_PORTS as usize;

/// Sends made on each port (the sender increments before sending).
pub static SENT: [AtomicU64; PORTS] = [const { AtomicU64::new(0) }; PORTS];
/// The highest send number consumed on each port.
pub static SEEN: [AtomicU64; PORTS] = [const { AtomicU64::new(0) }; PORTS];
/// TSC of each port's latest send.
static STAMP: [AtomicU64; PORTS] = [const { AtomicU64::new(0) }; PORTS];
/// The vCPU each port is bound to (ANY_VCPU: whoever finds it pending).
pub static BOUND: [AtomicU32; PORTS] = [const { AtomicU32::new(ANY_VCPU) }; PORTS];
pub const ANY_VCPU: u32 = u32::MAX;
/// Bumped by every upcall on a vCPU: what `sync::wait_until` sleeps on.
pub static WAKE: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];

/// The upcall handler (per-vCPU vector, or vCPU 0's GSI/INTx line).
pub extern "C" fn upcall(_kind: u64, entry_tsc: u64) {
    let vcpu = crate::arch::cpu::current_vcpu();
    let counters = report::counters(vcpu);
    counters.upcalls.fetch_add(1, Relaxed);
    let page = shared_info::page();
    let mut consumed = 0;
    loop {
        guest::clear_upcall_pending(page, vcpu);
        let mut selector = guest::take_pending_sel(page, vcpu);
        while selector != 0 {
            let word = selector.trailing_zeros();
            selector &= selector - 1;
            let mut bits = guest::active_bits(page, word);
            while bits != 0 {
                let port = word * 64 + bits.trailing_zeros();
                bits &= bits - 1;
                // Like Linux's cpu_evtchn_mask: only ports bound here. A
                // port of another vCPU in the same word is left pending
                // for its own vCPU's upcall.
                if !bound_here(port, vcpu) {
                    continue;
                }
                // Another vCPU may have consumed it (the port moved).
                if guest::clear_pending(page, port) {
                    consume(vcpu, port, entry_tsc);
                    consumed += 1;
                }
            }
        }
        if !upcall_pending(page, vcpu) {
            break;
        }
    }
    if consumed == 0 {
        counters.spurious_upcalls.fetch_add(1, Relaxed);
    }
    WAKE[vcpu as usize % MAX_VCPUS].fetch_add(1, Release);
    // The level-triggered line is deasserted by the hypervisor once
    // evtchn_upcall_pending is clear; the EOI is the same for both kinds.
    apic::eoi();
}

#[inline(always)]
fn bound_here(port: u32, vcpu: u32) -> bool {
    let bound = BOUND[port as usize % PORTS].load(Acquire);
    bound == ANY_VCPU || bound == vcpu
}

#[inline(always)]
fn consume(vcpu: u32, port: u32, entry_tsc: u64) {
    let counters = report::counters(vcpu);
    let p = port as usize % PORTS;
    let sent = SENT[p].load(Acquire);
    let stamp = STAMP[p].load(Relaxed);
    if SEEN[p].fetch_max(sent, Release) < sent {
        counters.delivered.fetch_add(1, Relaxed);
        // A send stamped after this handler started (the sender went on
        // while the handler ran) has no meaningful latency: no sample.
        if stamp <= entry_tsc {
            counters.sample(vcpu, entry_tsc - stamp);
        }
    } else {
        counters.stale.fetch_add(1, Relaxed);
    }
}

/// Sends on `port` from `vcpu`, stamping the time and the sequence number.
#[inline(always)]
pub fn send(vcpu: u32, port: u32) -> Result<(), Error> {
    send_via(vcpu, port, port)
}

/// Sends on `port`, whose events arrive on `arrives_on` (the peer of a
/// loopback interdomain port; the port itself for IPIs).
#[inline(always)]
pub fn send_via(vcpu: u32, port: u32, arrives_on: u32) -> Result<(), Error> {
    let p = arrives_on as usize % PORTS;
    STAMP[p].store(rdtsc(), Relaxed);
    SENT[p].fetch_add(1, Release);
    report::counters(vcpu).sent.fetch_add(1, Relaxed);
    ops::send(port).map_err(|e| errors::hypercall(errors::SEND, e))
}

/// Sends made on `port` that were not consumed.
pub fn unconsumed(port: u32) -> u64 {
    let p = port as usize % PORTS;
    SENT[p].load(Acquire).saturating_sub(SEEN[p].load(Acquire))
}
