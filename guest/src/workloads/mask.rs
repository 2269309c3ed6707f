//! Masking, as the upstream selftest checks it: sends to a masked port set
//! it pending but raise no upcall; EVTCHNOP_unmask then raises exactly one.

use core::sync::atomic::Ordering::Relaxed;

use xevtchn_common::{
    guest_abi::Params,
    two_level::{guest, is_pending},
};

use super::{bind_ipi, event_deadline, port};
use crate::{
    arch::cpu::rdtsc,
    errors::{self, Error},
    events, report, sync,
    xen::{ops, shared_info},
};

/// How long to watch for an upcall that must not come.
const QUIET_MS: u64 = 50;

pub fn prepare() -> Result<(), Error> {
    let port = bind_ipi(1)?;
    guest::mask(shared_info::page(), port);
    Ok(())
}

pub fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    if vcpu != 0 {
        return Ok(());
    }
    let port = port(0);
    let receiver = report::counters(1);
    let before = receiver.delivered.load(Relaxed);
    for _ in 0..params.count.max(1) {
        events::send(vcpu, port)?;
        report::counters(vcpu).masked_sends.fetch_add(1, Relaxed);
    }
    let quiet_until = rdtsc() + QUIET_MS * params.tsc_per_ms;
    sync::wait_until(vcpu, quiet_until, || false);
    if receiver.delivered.load(Relaxed) != before || !is_pending(shared_info::page(), port) {
        return Err(errors::MASKED_UPCALL);
    }
    ops::unmask(port).map_err(|e| errors::hypercall(errors::UNMASK, e))?;
    let one = || receiver.delivered.load(Relaxed) == before + 1;
    if !sync::wait_until(vcpu, event_deadline(params), one) {
        return Err(errors::UNMASK_UPCALL);
    }
    // Exactly one: nothing more arrives after a quiet period.
    let quiet_until = rdtsc() + QUIET_MS * params.tsc_per_ms;
    sync::wait_until(vcpu, quiet_until, || false);
    if !one() || events::unconsumed(port) != 0 {
        return Err(errors::UNMASK_UPCALL);
    }
    Ok(())
}
