//! Hypercall dispatch: one entry point for the VMM's hypercall exit.
//!
//! The VMM reads the number (rax) and arguments (rdi, rsi, rdx, r10, r8),
//! calls [`Domain::hypercall`], writes `ret` to rax and applies the actions.
//! Every failure is a negated Xen errno for the guest, never a panic:
//! unknown hypercalls and ops are -ENOSYS.

use std::fmt::Display;

use thiserror::Error;
use xevtchn_common::two_level::EventWords;
use xevtchn_common::xen::errno;
use xevtchn_common::xen::hvm::{
    HVMOP_get_param, HVMOP_set_evtchn_upcall_vector, HVMOP_set_param, XenHvmEvtchnUpcallVector, XenHvmParam,
};
use xevtchn_common::xen::hypercall::{
    __HYPERVISOR_console_io, __HYPERVISOR_event_channel_op, __HYPERVISOR_hvm_op, __HYPERVISOR_memory_op,
    __HYPERVISOR_sched_op, __HYPERVISOR_set_timer_op, __HYPERVISOR_vcpu_op, __HYPERVISOR_xen_version,
};

use super::actions::Action;
use super::domain::Domain;
use super::error::XenErrno;
use super::evtchn_hypercall::event_channel_op;
use super::guest_memory::{GuestFault, GuestMemory, read_obj, write_obj};
use super::hvm_ops::HvmError;
use super::memory_ops::memory_op;
use super::sched_ops::{FollowUp, console_io, sched_op};
use super::timer_ops::{VcpuOpContext, set_timer_op, vcpu_op};
use super::version_ops::xen_version;

/// A hypercall as a 64-bit guest made it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hypercall {
    /// rax: `__HYPERVISOR_*`.
    pub nr: u64,
    /// rdi, rsi, rdx, r10, r8.
    pub args: [u64; 5],
    /// The calling vCPU (Xen's `current`).
    pub vcpu: u32,
    /// Xen system time when it was made (ns; the pvclock's clock).
    pub now_ns: u64,
}

/// What the VMM does with a hypercall's outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HypercallResult {
    /// The return value: >= 0 on success, `-errno` on failure.
    pub ret: i64,
    /// Side effects for the delivery layer, in order.
    pub actions: Vec<Action>,
    /// What the VMM does once the call returned (stop, wait, print).
    pub follow_up: Option<FollowUp>,
}

impl HypercallResult {
    /// The value for rax.
    pub fn rax(&self) -> u64 {
        self.ret as u64
    }
}

/// 32-bit (compat) guests use another shared_info layout; xevtchn only
/// implements the 64-bit one.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error(
    "32-bit (compat) Xen guests are not supported: xevtchn implements only the 64-bit \
     shared_info and hypercall ABI; the guest must be in long mode when it sets up the hypercall page"
)]
pub struct CompatGuestUnsupported;

/// Xen and KVM latch the guest's mode when it writes the hypercall-page
/// MSR; the VMM calls this there and refuses a 32-bit guest.
pub fn require_64bit_guest(long_mode: bool) -> Result<(), CompatGuestUnsupported> {
    if long_mode { Ok(()) } else { Err(CompatGuestUnsupported) }
}

/// Turns an op's result into the hypercall's return value, logging why it
/// failed (the guest only sees the errno).
fn ret<E: XenErrno + Display>(call: &Hypercall, result: Result<i64, E>) -> i64 {
    result.unwrap_or_else(|e| {
        log::debug!("hypercall {} {:#x?}: {e} (-{})", call.nr, call.args, errno::name(e.ret()).unwrap_or("?"));
        e.ret()
    })
}

/// An op's return value; what it leaves the VMM goes to `follow_up`.
fn then<E>(result: Result<(i64, Option<FollowUp>), E>, follow_up: &mut Option<FollowUp>) -> Result<i64, E> {
    result.map(|(ret, next)| {
        *follow_up = next;
        ret
    })
}

#[derive(Debug, Error)]
enum HvmCallError {
    #[error("unknown HVM op {0}")]
    UnknownOp(u64),
    #[error(transparent)]
    Op(#[from] HvmError),
    #[error(transparent)]
    Fault(#[from] GuestFault),
}

impl XenErrno for HvmCallError {
    fn errno(&self) -> i32 {
        match self {
            Self::UnknownOp(_) => errno::ENOSYS,
            Self::Op(e) => e.errno(),
            Self::Fault(_) => errno::EFAULT,
        }
    }
}

#[derive(Debug, Error)]
#[error("unknown hypercall {0}")]
struct UnknownHypercall(u64);

impl XenErrno for UnknownHypercall {
    fn errno(&self) -> i32 {
        errno::ENOSYS
    }
}

impl Domain {
    /// Runs one hypercall. `mem` is the calling vCPU's virtual address
    /// space; `words` the shared_info page's event words.
    pub fn hypercall<M, W>(&mut self, call: &Hypercall, mem: &M, words: &W) -> HypercallResult
    where
        M: GuestMemory + ?Sized,
        W: EventWords + ?Sized,
    {
        let mut actions = Vec::new();
        let mut follow_up = None;
        let [a0, a1, a2, ..] = call.args;
        let ret = match u32::try_from(call.nr) {
            // `int cmd` in Xen's do_event_channel_op / do_xen_version.
            Ok(__HYPERVISOR_event_channel_op) => {
                ret(call, event_channel_op(&mut self.evtchn, a0 as u32, a1, mem, words, &mut actions))
            }
            Ok(__HYPERVISOR_hvm_op) => ret(call, self.hvm_op(a0, a1, mem, &mut actions)),
            Ok(__HYPERVISOR_memory_op) => {
                ret(call, memory_op(&self.ids, a0, a1, mem, &mut self.shared_info_gfn, &self.memory_map, &mut actions))
            }
            Ok(__HYPERVISOR_xen_version) => ret(call, xen_version(&self.version, a0 as u32, a1, mem)),
            // `int cmd` in do_sched_op and do_console_io.
            Ok(__HYPERVISOR_sched_op) => {
                ret(call, then(sched_op(u64::from(a0 as u32), a1, mem, words), &mut follow_up))
            }
            Ok(__HYPERVISOR_console_io) => {
                ret(call, then(console_io(u64::from(a0 as u32), a1, a2, mem), &mut follow_up))
            }
            Ok(__HYPERVISOR_set_timer_op) => {
                let (ret, next) = set_timer_op(a0, call.vcpu, call.now_ns);
                follow_up = next;
                ret
            }
            Ok(__HYPERVISOR_vcpu_op) => {
                let ctx = VcpuOpContext {
                    caller: call.vcpu,
                    now: call.now_ns,
                    nr_vcpus: self.nr_vcpus,
                    ram_end: self.ram_end,
                    vcpu_info: &mut self.vcpu_info,
                };
                ret(call, then(vcpu_op(a0, a1, a2, ctx, mem, &mut actions), &mut follow_up))
            }
            _ => ret(call, Err::<i64, _>(UnknownHypercall(call.nr))),
        };
        HypercallResult { ret, actions, follow_up }
    }

    /// HYPERVISOR_hvm_op(op, arg).
    fn hvm_op<M: GuestMemory + ?Sized>(
        &mut self,
        op: u64,
        arg: u64,
        mem: &M,
        out: &mut Vec<Action>,
    ) -> Result<i64, HvmCallError> {
        match op {
            HVMOP_set_param => {
                let param: XenHvmParam = read_obj(mem, arg)?;
                self.hvm.set_param(param.domid, param.index, param.value, out)?;
            }
            HVMOP_get_param => {
                let mut param: XenHvmParam = read_obj(mem, arg)?;
                param.value = self.hvm.get_param(param.domid, param.index)?;
                write_obj(mem, arg, &param)?;
            }
            HVMOP_set_evtchn_upcall_vector => {
                let op: XenHvmEvtchnUpcallVector = read_obj(mem, arg)?;
                self.hvm.set_evtchn_upcall_vector(op.vcpu, op.vector, out)?;
            }
            other => return Err(HvmCallError::UnknownOp(other)),
        }
        Ok(0)
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
mod tests;
