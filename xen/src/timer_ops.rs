//! The singleshot timer each vCPU has: HYPERVISOR_set_timer_op and
//! VCPUOP_set/stop_singleshot_timer arm it, and when it fires Xen sends
//! the vCPU's VIRQ_TIMER. Follows xen/common/sched/core.c
//! (do_set_timer_op) and xen/common/domain.c (do_vcpu_op); the VMM keeps
//! the timers ([`FollowUp::Timer`]).

use thiserror::Error;
use xevtchn_common::xen::errno;
use xevtchn_common::xen::vcpu::*;

use super::error::XenErrno;
use super::guest_memory::{GuestFault, GuestMemory, read_obj};
use super::sched_ops::FollowUp;

#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum VcpuOpError {
    #[error("vCPU {0} does not exist")]
    NoSuchVcpu(u64),
    #[error("vCPU {target} may only set its own timer, not vCPU {caller}'s")]
    NotCurrent { target: u64, caller: u32 },
    #[error("the singleshot timeout {timeout} ns has passed (now {now} ns) and the guest asked for a future one")]
    InThePast { timeout: u64, now: u64 },
    #[error("vcpu_op command {0} is not implemented")]
    NotImplemented(u64),
    #[error(transparent)]
    Fault(#[from] GuestFault),
}

impl XenErrno for VcpuOpError {
    fn errno(&self) -> i32 {
        match self {
            Self::NoSuchVcpu(_) => errno::ENOENT,
            Self::NotCurrent { .. } => errno::EINVAL,
            Self::InThePast { .. } => errno::ETIME,
            Self::NotImplemented(_) => errno::ENOSYS,
            Self::Fault(_) => errno::EFAULT,
        }
    }
}

/// Xen's workaround for timeouts "a long way in the future due to wrapping
/// in Linux's jiffy time handling" (do_set_timer_op): negative, or more
/// than 2^50 ns (13 days) ahead, fire in 100 ms instead.
const FAR_FUTURE_NS: u64 = 1 << 50;
const WRAPPED_RETRY_NS: u64 = 100_000_000;

/// HYPERVISOR_set_timer_op(timeout) by `vcpu` at system time `now`: 0
/// stops its singleshot timer, anything else sets it.
pub fn set_timer_op(timeout: u64, vcpu: u32, now: u64) -> (i64, Option<FollowUp>) {
    let deadline = match timeout {
        0 => None,
        t if (t as i64) < 0 || t.saturating_sub(now) > FAR_FUTURE_NS => Some(now + WRAPPED_RETRY_NS),
        t => Some(t),
    };
    (0, Some(FollowUp::Timer { vcpu, deadline_ns: deadline }))
}

/// HYPERVISOR_vcpu_op(cmd, vcpuid, arg) by `caller` at system time `now`:
/// the singleshot timer commands; the rest is -ENOSYS.
pub fn vcpu_op<M: GuestMemory + ?Sized>(
    cmd: u64,
    vcpuid: u64,
    arg: u64,
    caller: u32,
    nr_vcpus: u32,
    now: u64,
    mem: &M,
) -> Result<(i64, Option<FollowUp>), VcpuOpError> {
    // `int cmd, unsigned int vcpuid`; domain_vcpu() first: -ENOENT.
    let vcpuid = vcpuid & 0xffff_ffff;
    if vcpuid >= u64::from(nr_vcpus) {
        return Err(VcpuOpError::NoSuchVcpu(vcpuid));
    }
    let own = |target: u64| {
        if target == u64::from(caller) { Ok(caller) } else { Err(VcpuOpError::NotCurrent { target, caller }) }
    };
    match cmd & 0xffff_ffff {
        VCPUOP_set_singleshot_timer => {
            let vcpu = own(vcpuid)?;
            let set: VcpuSetSingleshotTimer = read_obj(mem, arg)?;
            if set.timeout_abs_ns < now {
                // "Simplify the logic if the timeout has already expired."
                if set.flags & VCPU_SSHOTTMR_future != 0 {
                    return Err(VcpuOpError::InThePast { timeout: set.timeout_abs_ns, now });
                }
                return Ok((0, Some(FollowUp::Timer { vcpu, deadline_ns: Some(now) })));
            }
            Ok((0, Some(FollowUp::Timer { vcpu, deadline_ns: Some(set.timeout_abs_ns) })))
        }
        VCPUOP_stop_singleshot_timer => Ok((0, Some(FollowUp::Timer { vcpu: own(vcpuid)?, deadline_ns: None }))),
        other => Err(VcpuOpError::NotImplemented(other)),
    }
}

#[cfg(test)]
mod tests {
    use xevtchn_common::xen::errno::{EFAULT, EINVAL, ENOENT, ENOSYS, ETIME};

    use super::*;
    use crate::test_support::TestMemory;

    const NOW: u64 = 5_000_000_000;

    fn singleshot(
        mem: &TestMemory,
        caller: u32,
        vcpuid: u64,
        timeout: u64,
        flags: u32,
    ) -> Result<Option<FollowUp>, i32> {
        mem.put(0x1000, &VcpuSetSingleshotTimer { timeout_abs_ns: timeout, flags, _pad: 0 });
        vcpu_op(VCPUOP_set_singleshot_timer, vcpuid, 0x1000, caller, 2, NOW, mem).map(|(_, f)| f).map_err(|e| e.errno())
    }

    #[test]
    fn a_vcpu_sets_and_stops_its_own_singleshot_timer() {
        let mem = TestMemory::new(0x1000, 0x100);
        let timer = |deadline_ns| Some(FollowUp::Timer { vcpu: 1, deadline_ns });
        assert_eq!(singleshot(&mem, 1, 1, NOW + 10, 0), Ok(timer(Some(NOW + 10))));
        assert_eq!(singleshot(&mem, 1, 1, NOW - 10, 0), Ok(timer(Some(NOW))), "passed: fires at once");
        assert_eq!(singleshot(&mem, 1, 1, NOW - 10, VCPU_SSHOTTMR_future), Err(ETIME));
        assert_eq!(singleshot(&mem, 1, 0, NOW + 10, 0), Err(EINVAL), "another vCPU's timer");
        assert_eq!(singleshot(&mem, 1, 2, NOW + 10, 0), Err(ENOENT), "no vCPU 2");
        let stop = vcpu_op(VCPUOP_stop_singleshot_timer, 1, 0, 1, 2, NOW, &mem);
        assert_eq!(stop, Ok((0, timer(None))));
        let far = vcpu_op(VCPUOP_set_singleshot_timer, 1, 0x9000, 1, 2, NOW, &mem);
        assert_eq!(far.unwrap_err().errno(), EFAULT);
        assert_eq!(vcpu_op(VCPUOP_set_periodic_timer, 1, 0x1000, 1, 2, NOW, &mem).unwrap_err().errno(), ENOSYS);
    }

    #[test]
    fn set_timer_op_stops_on_0_and_tames_wrapped_timeouts_like_xen() {
        let timer = |deadline_ns| (0, Some(FollowUp::Timer { vcpu: 0, deadline_ns }));
        assert_eq!(set_timer_op(0, 0, NOW), timer(None));
        assert_eq!(set_timer_op(NOW + 7, 0, NOW), timer(Some(NOW + 7)));
        assert_eq!(set_timer_op(u64::MAX, 0, NOW), timer(Some(NOW + WRAPPED_RETRY_NS)), "negative");
        assert_eq!(set_timer_op(NOW + (1 << 51), 0, NOW), timer(Some(NOW + WRAPPED_RETRY_NS)), "13+ days ahead");
    }
}
