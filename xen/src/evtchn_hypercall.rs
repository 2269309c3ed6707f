//! HYPERVISOR_event_channel_op(cmd, arg): copies the op struct from the
//! guest, runs the op and copies the OUT fields back, as Xen's
//! do_event_channel_op does. An unreadable argument is -EFAULT before
//! anything happens; an unwritable one is -EFAULT after the op took effect
//! (Xen: "Cleaning up here would be a mess!").

use xevtchn_common::two_level::EventWords;
use xevtchn_common::xen::evtchn::*;

use super::actions::Action;
use super::evtchn_ops::{EventChannels, EvtchnError};
use super::guest_memory::{GuestMemory, read_obj, write_obj};

pub fn event_channel_op<M, W>(
    ch: &mut EventChannels,
    cmd: u32,
    arg: u64,
    mem: &M,
    words: &W,
    out: &mut Vec<Action>,
) -> Result<i64, EvtchnError>
where
    M: GuestMemory + ?Sized,
    W: EventWords + ?Sized,
{
    match cmd {
        EVTCHNOP_alloc_unbound => {
            let mut op: EvtchnAllocUnbound = read_obj(mem, arg)?;
            op.port = ch.alloc_unbound(op.dom, op.remote_dom, out)?;
            write_obj(mem, arg, &op)?;
        }
        EVTCHNOP_bind_interdomain => {
            let mut op: EvtchnBindInterdomain = read_obj(mem, arg)?;
            op.local_port = ch.bind_interdomain(op.remote_dom, op.remote_port, words, out)?;
            write_obj(mem, arg, &op)?;
        }
        EVTCHNOP_bind_virq => {
            let mut op: EvtchnBindVirq = read_obj(mem, arg)?;
            op.port = ch.bind_virq(op.virq, op.vcpu, out)?;
            write_obj(mem, arg, &op)?;
        }
        EVTCHNOP_bind_pirq => {
            let mut op: EvtchnBindPirq = read_obj(mem, arg)?;
            op.port = ch.bind_pirq(op.pirq)?;
            write_obj(mem, arg, &op)?;
        }
        EVTCHNOP_bind_ipi => {
            let mut op: EvtchnBindIpi = read_obj(mem, arg)?;
            op.port = ch.bind_ipi(op.vcpu, out)?;
            write_obj(mem, arg, &op)?;
        }
        EVTCHNOP_close => {
            let op: EvtchnClose = read_obj(mem, arg)?;
            ch.close(op.port, words, out)?;
        }
        EVTCHNOP_send => {
            let op: EvtchnSend = read_obj(mem, arg)?;
            ch.send(op.port, words, out)?;
        }
        EVTCHNOP_status => {
            let op: EvtchnStatus = read_obj(mem, arg)?;
            let status = ch.status(op.dom, op.port)?;
            write_obj(mem, arg, &status)?;
        }
        EVTCHNOP_bind_vcpu => {
            let op: EvtchnBindVcpu = read_obj(mem, arg)?;
            ch.bind_vcpu(op.port, op.vcpu, words, out)?;
        }
        EVTCHNOP_unmask => {
            let op: EvtchnUnmask = read_obj(mem, arg)?;
            ch.unmask(op.port, words, out)?;
        }
        EVTCHNOP_reset => {
            let op: EvtchnReset = read_obj(mem, arg)?;
            ch.reset(op.dom, words, out)?;
        }
        // The FIFO ABI: -ENOSYS, like QEMU, so the guest stays on 2-level.
        EVTCHNOP_init_control | EVTCHNOP_expand_array | EVTCHNOP_set_priority => {
            return Err(EvtchnError::FifoNotImplemented);
        }
        other => return Err(EvtchnError::UnknownOp(other)),
    }
    Ok(0)
}
