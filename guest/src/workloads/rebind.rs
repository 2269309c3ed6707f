//! Ports move between vCPUs (EVTCHNOP_bind_vcpu) while being sent to.
//!
//! Xen only moves interdomain, unbound, global-VIRQ and PIRQ ports (an IPI
//! port is -EINVAL), so each sender gets a loopback interdomain pair: it
//! sends on its end, the event arrives on the other end, and vCPU 0 moves
//! that end round robin over all vCPUs for as long as the senders send (one
//! round at least), telling the guest's handlers the new owner first (as
//! Linux updates cpu_evtchn_mask). Only the owner consumes the port, so an event raised on the old vCPU is consumed only
//! if the hypervisor re-raises it on the new one (as QEMU and upstream KVM
//! do): a missing re-raise shows up as a loss.

use xevtchn_common::{guest_abi::Params, xen::hypercall::DOMID_SELF};

use core::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};

use super::{add_port, more, pace, port};
use crate::{
    arch::cpu::rdtsc,
    errors::{self, Error},
    events::{self, BOUND},
    report,
    xen::ops,
};

/// For each sender: PORTS[2i] = the end events arrive on, PORTS[2i+1] = the end sent on.
pub fn prepare(vcpus: u32) -> Result<(), Error> {
    for _sender in 1..vcpus {
        let arrives = ops::alloc_unbound(DOMID_SELF).map_err(|e| errors::hypercall(errors::BIND, e))?;
        let sends = ops::bind_interdomain(DOMID_SELF, arrives).map_err(|e| errors::hypercall(errors::BIND, e))?;
        // alloc_unbound notifies vCPU 0 until moved.
        add_port(arrives, 0);
        add_port(sends, 0);
    }
    Ok(())
}

/// Senders that finished: vCPU 0 moves ports until all have.
static FINISHED: AtomicU32 = AtomicU32::new(0);

pub fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    let senders = params.vcpus - 1;
    if vcpu == 0 {
        let counters = report::counters(vcpu);
        let mut moves = 0u64;
        // At least one round, even if the senders finish before this vCPU
        // gets to run (3 vCPUs on a 2-CPU host).
        loop {
            for i in 0..senders {
                let target = ((moves + u64::from(i)) % u64::from(params.vcpus)) as u32;
                let arrives = port(2 * i as usize);
                BOUND[arrives as usize % BOUND.len()].store(target, Release);
                let start = rdtsc();
                ops::bind_vcpu(arrives, target).map_err(|e| errors::hypercall(errors::BIND_VCPU, e))?;
                counters.move_tsc.fetch_add(rdtsc() - start, Relaxed);
            }
            moves += 1;
            counters.moves.fetch_add(u64::from(senders), Relaxed);
            if FINISHED.load(Acquire) >= senders {
                return Ok(());
            }
        }
    }
    let i = (vcpu - 1) as usize;
    let (arrives, sends) = (port(2 * i), port(2 * i + 1));
    let mut sent = 0;
    let mut result = Ok(());
    while more(params, sent) {
        pace(params, vcpu, sent);
        if let Err(e) = events::send_via(vcpu, sends, arrives) {
            result = Err(e);
            break;
        }
        sent += 1;
    }
    FINISHED.fetch_add(1, Release);
    result
}
