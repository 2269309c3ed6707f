//! Every vCPU but the last sends as fast as it can on its own port, all
//! bound to the last vCPU. Most sends coalesce (the pending bit is still
//! set); the check is that the last send on every port is consumed.

use xevtchn_common::guest_abi::Params;

use super::{bind_ipi, more, pace, port};
use crate::{errors::Error, events};

pub fn prepare(vcpus: u32) -> Result<(), Error> {
    for _sender in 0..vcpus - 1 {
        bind_ipi(vcpus - 1)?;
    }
    Ok(())
}

pub fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    if vcpu + 1 == params.vcpus {
        return Ok(());
    }
    let port = port(vcpu as usize);
    let mut sent = 0;
    while more(params, sent) {
        pace(params, vcpu, sent);
        events::send(vcpu, port)?;
        sent += 1;
    }
    Ok(())
}
