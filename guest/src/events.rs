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

/// Ports bound to each vCPU, for the bare chain (no pending bits to scan).
static BARE_PORTS: [[AtomicU32; BARE_MAX]; MAX_VCPUS] = [const { [const { AtomicU32::new(0) }; BARE_MAX] }; MAX_VCPUS];
static BARE_COUNT: [AtomicU32; MAX_VCPUS] = [const { AtomicU32::new(0) }; MAX_VCPUS];
const BARE_MAX: usize = 32;
/// Set by the set-up when Params::bare is 1.
pub static BARE: AtomicU32 = AtomicU32::new(0);

/// Records that `port` is bound to `vcpu`, for the bare chain's handler.
pub fn note_bare_port(port: u32, vcpu: u32) {
    let v = vcpu as usize % MAX_VCPUS;
    let i = BARE_COUNT[v].fetch_add(1, Relaxed) as usize;
    if i < BARE_MAX {
        BARE_PORTS[v][i].store(port, Release);
    }
}

/// The upcall handler (per-vCPU vector, or vCPU 0's GSI/INTx line).
pub extern "C" fn upcall(_kind: u64, entry_tsc: u64) {
    let vcpu = crate::arch::cpu::current_vcpu();
    let counters = report::counters(vcpu);
    counters.upcalls.fetch_add(1, Relaxed);
    if BARE.load(Relaxed) != 0 {
        bare_upcall(vcpu, entry_tsc);
        return;
    }
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

/// The bare chain: the interrupt is the only signal; every port of this
/// vCPU with an unseen send is consumed.
fn bare_upcall(vcpu: u32, entry_tsc: u64) {
    let v = vcpu as usize % MAX_VCPUS;
    let n = (BARE_COUNT[v].load(Acquire) as usize).min(BARE_MAX);
    for slot in &BARE_PORTS[v][..n] {
        let port = slot.load(Acquire);
        if SENT[port as usize % PORTS].load(Acquire) > SEEN[port as usize % PORTS].load(Acquire) {
            consume(vcpu, port, entry_tsc);
        }
    }
    WAKE[v].fetch_add(1, Release);
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
