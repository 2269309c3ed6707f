//! Every vCPU sends to every other, round robin over its targets, one port
//! per (sender, target) pair.

use xevtchn_common::guest_abi::Params;

use super::{bind_ipi, more, pace, port};
use crate::{errors::Error, events};

pub fn prepare(vcpus: u32) -> Result<(), Error> {
    for _sender in 0..vcpus {
        for target in 0..vcpus {
            bind_ipi(target)?;
        }
    }
    Ok(())
}

pub fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    let n = params.vcpus;
    let mut sent = 0;
    while more(params, sent) {
        pace(params, vcpu, sent);
        for target in (0..n).filter(|&t| t != vcpu) {
            events::send(vcpu, port((vcpu * n + target) as usize))?;
        }
        sent += 1;
    }
    Ok(())
}
