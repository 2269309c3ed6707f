//! vCPU 0 without a per-vCPU vector, called back through a level-triggered
//! line: first a GSI, then a PCI INTx (HVM_PARAM_CALLBACK_IRQ), with
//! ping-pong traffic in each phase (vCPU 1 pings vCPU 0).

use xevtchn_common::guest_abi::{Params, callback};

use super::{pingpong, port};
use crate::{errors::Error, sync, xen::setup};

pub fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    // Ports from pingpong::prepare: port 0 is bound to vCPU 1, port 1 to vCPU 0.
    let (to_vcpu1, to_vcpu0) = (port(0), port(1));
    for (phase, kind) in [callback::GSI, callback::PCI_INTX].into_iter().enumerate() {
        if vcpu == 0 {
            if phase > 0 {
                setup::set_level_callback(kind, params.callback_gsi)?;
            }
            pingpong::new_round(to_vcpu0, to_vcpu1);
        }
        sync::barrier(vcpu, params.vcpus);
        let result = match vcpu {
            1 => pingpong::serve(vcpu, params, to_vcpu0, to_vcpu1),
            0 => pingpong::answer(vcpu, params, to_vcpu0, to_vcpu1),
            _ => Ok(()),
        };
        sync::barrier(vcpu, params.vcpus);
        result?;
    }
    Ok(())
}
