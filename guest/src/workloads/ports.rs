//! Ports at the top of the table: vCPU 0 fills the port table
//! (alloc_unbound until Xen's -ENOSPC: ports 1 to 4095 of the 2-level ABI),
//! closes the highest few and binds IPI and interdomain ports there, which
//! the allocator hands out lowest first; then it sends on them. Every port
//! number can be served in the kernel, not only the low ones: the run's
//! report shows these sends as fast.

use xevtchn_common::{
    guest_abi::Params,
    two_level::NR_PORTS,
    xen::{errno::ENOSPC, hypercall::DOMID_SELF},
};

use super::{add_port, more, port};
use crate::{
    errors::{self, Error},
    events,
    xen::ops,
};

/// Ports freed at the top and bound again: two IPIs, two interdomain pairs.
const TOP: u32 = 6;

/// PORTS[0..2]: IPI ports (a send arrives on the port itself); PORTS[2..6]:
/// two interdomain pairs (a send on one end arrives on the other).
pub fn prepare(vcpus: u32) -> Result<(), Error> {
    let mut last = 0;
    let filled = loop {
        match ops::alloc_unbound(DOMID_SELF) {
            Ok(port) => last = port,
            Err(e) => break e,
        }
    };
    if filled != ENOSPC || last != NR_PORTS - 1 {
        return Err(errors::hypercall(errors::BIND, filled));
    }
    for port in NR_PORTS - TOP..NR_PORTS {
        ops::close(port).map_err(|e| errors::hypercall(errors::CLOSE, e))?;
    }
    let last_vcpu = vcpus - 1;
    for vcpu in [0, last_vcpu] {
        let port = ops::bind_ipi(vcpu).map_err(|e| errors::hypercall(errors::BIND, e))?;
        add_port(port, vcpu);
    }
    for _pair in 0..2 {
        let a = ops::alloc_unbound(DOMID_SELF).map_err(|e| errors::hypercall(errors::BIND, e))?;
        let b = ops::bind_interdomain(DOMID_SELF, a).map_err(|e| errors::hypercall(errors::BIND, e))?;
        // a's events go to the last vCPU, b's to vCPU 0: a move each way.
        ops::bind_vcpu(a, last_vcpu).map_err(|e| errors::hypercall(errors::BIND_VCPU, e))?;
        add_port(a, last_vcpu);
        add_port(b, 0);
    }
    Ok(())
}

pub fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    if vcpu != 0 {
        return Ok(());
    }
    let mut rounds = 0;
    while more(params, rounds) {
        events::send(vcpu, port(0))?;
        events::send(vcpu, port(1))?;
        // On each end of each pair: the event arrives on the other end.
        for pair in [2, 4] {
            let (a, b) = (port(pair), port(pair + 1));
            events::send_via(vcpu, a, b)?;
            events::send_via(vcpu, b, a)?;
        }
        rounds += 1;
    }
    Ok(())
}
