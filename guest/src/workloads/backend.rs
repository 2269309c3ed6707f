//! A host-side userspace backend, as QEMU's device models are: the host
//! offered an unbound port (Params::backend_port) in its domain; vCPU 0
//! binds to it with EVTCHNOP_bind_interdomain and pings it. Each send wakes
//! the backend through an eventfd; the backend answers on the same channel,
//! which sets the guest's port pending and raises the upcall from the host.

use core::sync::atomic::Ordering::Acquire;

use xevtchn_common::guest_abi::Params;

use super::{add_port, event_deadline, more, port};
use crate::{
    errors::{self, Error},
    events::{self, SEEN},
    sync,
    xen::ops,
};

pub fn prepare(params: &Params) -> Result<(), Error> {
    let local = ops::bind_interdomain(params.backend_domid as u16, params.backend_port)
        .map_err(|e| errors::hypercall(errors::BIND, e))?;
    add_port(local, 0);
    Ok(())
}

pub fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    if vcpu != 0 {
        return Ok(());
    }
    let local = port(0);
    let seen = || SEEN[local as usize % SEEN.len()].load(Acquire);
    let base = seen();
    let mut rounds = 0;
    while more(params, rounds) {
        events::send(vcpu, local)?;
        rounds += 1;
        if !sync::wait_until(vcpu, event_deadline(params), || seen() >= base + rounds) {
            return Err(errors::TIMEOUT);
        }
    }
    Ok(())
}
