//! Typed wrappers of the hypercalls the guest makes.

use xevtchn_common::xen::{
    evtchn::*,
    hvm::{
        HVM_PARAM_CALLBACK_IRQ, HVMOP_get_param, HVMOP_set_evtchn_upcall_vector, HVMOP_set_param,
        XenHvmEvtchnUpcallVector, XenHvmParam,
    },
    hypercall::{__HYPERVISOR_event_channel_op, __HYPERVISOR_hvm_op, __HYPERVISOR_memory_op, DOMID_SELF},
    memory::{XENMAPSPACE_shared_info, XENMEM_add_to_physmap, XenAddToPhysmap},
};

use super::hypercall::{call, call_with};

/// A hypercall result: the value, or the (positive) Xen errno.
pub type XenResult<T> = Result<T, i32>;

fn check(ret: i64) -> XenResult<()> {
    if ret < 0 { Err(-ret as i32) } else { Ok(()) }
}

#[inline(always)]
fn evtchn_op<T>(cmd: u32, arg: &mut T) -> XenResult<()> {
    check(call_with(__HYPERVISOR_event_channel_op, u64::from(cmd), arg))
}

/// EVTCHNOP_send: the hot path (a doorbell write for fast ports).
#[inline(always)]
pub fn send(port: u32) -> XenResult<()> {
    let mut op = EvtchnSend { port };
    evtchn_op(EVTCHNOP_send, &mut op)
}

pub fn bind_ipi(vcpu: u32) -> XenResult<u32> {
    let mut op = EvtchnBindIpi { vcpu, port: 0 };
    evtchn_op(EVTCHNOP_bind_ipi, &mut op).map(|()| op.port)
}

pub fn bind_virq(virq: u32, vcpu: u32) -> XenResult<u32> {
    let mut op = EvtchnBindVirq { virq, vcpu, port: 0 };
    evtchn_op(EVTCHNOP_bind_virq, &mut op).map(|()| op.port)
}

pub fn alloc_unbound(remote_dom: u16) -> XenResult<u32> {
    let mut op = EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom, port: 0 };
    evtchn_op(EVTCHNOP_alloc_unbound, &mut op).map(|()| op.port)
}

pub fn bind_interdomain(remote_dom: u16, remote_port: u32) -> XenResult<u32> {
    let mut op = EvtchnBindInterdomain { remote_dom, _pad0: 0, remote_port, local_port: 0 };
    evtchn_op(EVTCHNOP_bind_interdomain, &mut op).map(|()| op.local_port)
}

pub fn bind_vcpu(port: u32, vcpu: u32) -> XenResult<()> {
    let mut op = EvtchnBindVcpu { port, vcpu };
    evtchn_op(EVTCHNOP_bind_vcpu, &mut op)
}

pub fn close(port: u32) -> XenResult<()> {
    let mut op = EvtchnClose { port };
    evtchn_op(EVTCHNOP_close, &mut op)
}

pub fn unmask(port: u32) -> XenResult<()> {
    let mut op = EvtchnUnmask { port };
    evtchn_op(EVTCHNOP_unmask, &mut op)
}

pub fn status(port: u32) -> XenResult<EvtchnStatus> {
    let mut op = EvtchnStatus { dom: DOMID_SELF, port, ..Default::default() };
    evtchn_op(EVTCHNOP_status, &mut op).map(|()| op)
}

pub fn reset() -> XenResult<()> {
    let mut op = EvtchnReset { dom: DOMID_SELF };
    evtchn_op(EVTCHNOP_reset, &mut op)
}

pub fn set_upcall_vector(vcpu: u32, vector: u8) -> XenResult<()> {
    let mut op = XenHvmEvtchnUpcallVector { vcpu, vector, _pad: [0; 3] };
    check(call_with(__HYPERVISOR_hvm_op, HVMOP_set_evtchn_upcall_vector, &mut op))
}

pub fn set_callback_irq(value: u64) -> XenResult<()> {
    let mut op = XenHvmParam { domid: DOMID_SELF, pad: 0, index: HVM_PARAM_CALLBACK_IRQ, value };
    check(call_with(__HYPERVISOR_hvm_op, HVMOP_set_param, &mut op))
}

pub fn get_callback_irq() -> XenResult<u64> {
    let mut op = XenHvmParam { domid: DOMID_SELF, pad: 0, index: HVM_PARAM_CALLBACK_IRQ, value: 0 };
    check(call_with(__HYPERVISOR_hvm_op, HVMOP_get_param, &mut op)).map(|()| op.value)
}

pub fn place_shared_info(gfn: u64) -> XenResult<()> {
    let mut op = XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_shared_info, idx: 0, gpfn: gfn };
    check(call_with(__HYPERVISOR_memory_op, XENMEM_add_to_physmap, &mut op))
}

/// A raw call for the hostile workload: any number, any arguments.
pub fn raw(nr: u32, a1: u64, a2: u64) -> i64 {
    call(nr, a1, a2, 0, 0, 0)
}
