//! HYPERVISOR_vcpu_op and set_timer_op: the singleshot timer each vCPU
//! has (set_timer_op and VCPUOP_set/stop_singleshot_timer arm it, and when
//! it fires Xen sends the vCPU's VIRQ_TIMER), and where a vCPU's vcpu_info
//! lives (VCPUOP_register_vcpu_info). Follows xen/common/sched/core.c
//! (do_set_timer_op) and xen/common/domain.c (do_vcpu_op, map_vcpu_info);
//! the VMM keeps the timers ([`FollowUp::Timer`]) and moves the vcpu_info
//! ([`Action::VcpuInfoMoved`]).

use thiserror::Error;
use xevtchn_common::xen::errno;
use xevtchn_common::xen::vcpu::*;

use super::actions::Action;
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
    #[error("a vcpu_info at offset {0} would cross its page or is not 8-byte aligned")]
    BadVcpuInfoOffset(u32),
    #[error("vCPU {0} registered its vcpu_info already")]
    VcpuInfoRegistered(u32),
    #[error("guest frame {0:#x} is not RAM")]
    NotRam(u64),
    #[error(transparent)]
    Fault(#[from] GuestFault),
}

impl XenErrno for VcpuOpError {
    fn errno(&self) -> i32 {
        match self {
            Self::NoSuchVcpu(_) => errno::ENOENT,
            Self::NotCurrent { .. } | Self::BadVcpuInfoOffset(_) | Self::VcpuInfoRegistered(_) | Self::NotRam(_) => {
                errno::EINVAL
            }
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

/// What vcpu_op works on: the caller and the clock, the domain's vCPUs,
/// its RAM and where each vCPU's vcpu_info was registered.
pub struct VcpuOpContext<'a> {
    pub caller: u32,
    pub now: u64,
    pub nr_vcpus: u32,
    /// Guest RAM is [0, ram_end).
    pub ram_end: u64,
    /// Per vCPU: the guest-physical address of its registered vcpu_info.
    pub vcpu_info: &'a mut [Option<u64>],
}

/// sizeof(vcpu_info_t) and its alignment on x86_64 (xen.h).
const VCPU_INFO_SIZE: u32 = 64;
const VCPU_INFO_ALIGN: u32 = 8;

/// HYPERVISOR_vcpu_op(cmd, vcpuid, arg): the singleshot timer commands
/// and VCPUOP_register_vcpu_info; the rest is -ENOSYS.
pub fn vcpu_op<M: GuestMemory + ?Sized>(
    cmd: u64,
    vcpuid: u64,
    arg: u64,
    ctx: VcpuOpContext<'_>,
    mem: &M,
    out: &mut Vec<Action>,
) -> Result<(i64, Option<FollowUp>), VcpuOpError> {
    let VcpuOpContext { caller, now, nr_vcpus, ram_end, vcpu_info } = ctx;
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
        // map_vcpu_info. Xen also lets a vCPU register another's only while
        // that one is offline; here any vCPU may (the VMM moves it safely).
        VCPUOP_register_vcpu_info => {
            let info: VcpuRegisterVcpuInfo = read_obj(mem, arg)?;
            let vcpu = vcpuid as u32;
            if info.offset > 4096 - VCPU_INFO_SIZE || !info.offset.is_multiple_of(VCPU_INFO_ALIGN) {
                return Err(VcpuOpError::BadVcpuInfoOffset(info.offset));
            }
            if vcpu_info[vcpu as usize].is_some() {
                return Err(VcpuOpError::VcpuInfoRegistered(vcpu));
            }
            // get_page_from_gfn: only RAM.
            let gpa = info.mfn.checked_mul(4096).filter(|&a| a < ram_end).ok_or(VcpuOpError::NotRam(info.mfn))?;
            let gpa = gpa + u64::from(info.offset);
            vcpu_info[vcpu as usize] = Some(gpa);
            out.push(Action::VcpuInfoMoved { vcpu, gpa });
            Ok((0, None))
        }
        other => Err(VcpuOpError::NotImplemented(other)),
    }
}

#[cfg(test)]
mod tests {
    use xevtchn_common::xen::errno::{EFAULT, EINVAL, ENOENT, ENOSYS, ETIME};

    use super::*;
    use crate::test_support::TestMemory;

    const NOW: u64 = 5_000_000_000;

    /// vcpu_op by `caller` of a 2-vCPU domain with 1 MiB of RAM.
    fn op(
        cmd: u64,
        vcpuid: u64,
        arg: u64,
        caller: u32,
        infos: &mut [Option<u64>; 2],
        mem: &TestMemory,
    ) -> (Result<Option<FollowUp>, i32>, Vec<Action>) {
        let mut out = Vec::new();
        let ctx = VcpuOpContext { caller, now: NOW, nr_vcpus: 2, ram_end: 1 << 20, vcpu_info: infos };
        let r = vcpu_op(cmd, vcpuid, arg, ctx, mem, &mut out).map(|(ret, f)| {
            assert_eq!(ret, 0);
            f
        });
        (r.map_err(|e| e.errno()), out)
    }

    fn singleshot(
        mem: &TestMemory,
        caller: u32,
        vcpuid: u64,
        timeout: u64,
        flags: u32,
    ) -> Result<Option<FollowUp>, i32> {
        mem.put(0x1000, &VcpuSetSingleshotTimer { timeout_abs_ns: timeout, flags, _pad: 0 });
        op(VCPUOP_set_singleshot_timer, vcpuid, 0x1000, caller, &mut [None; 2], mem).0
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
        assert_eq!(op(VCPUOP_stop_singleshot_timer, 1, 0, 1, &mut [None; 2], &mem).0, Ok(timer(None)));
        assert_eq!(op(VCPUOP_set_singleshot_timer, 1, 0x9000, 1, &mut [None; 2], &mem).0, Err(EFAULT));
        assert_eq!(op(VCPUOP_set_periodic_timer, 1, 0x1000, 1, &mut [None; 2], &mem).0, Err(ENOSYS));
    }

    #[test]
    fn register_vcpu_info_checks_like_map_vcpu_info_and_moves_it_once() {
        let mem = TestMemory::new(0x1000, 0x100);
        let mut infos = [None; 2];
        let register = |vcpuid: u64, mfn: u64, offset: u32, infos: &mut [Option<u64>; 2]| {
            mem.put(0x1000, &VcpuRegisterVcpuInfo { mfn, offset, rsvd: 0 });
            op(VCPUOP_register_vcpu_info, vcpuid, 0x1000, 0, infos, &mem)
        };
        assert_eq!(register(0, 0x20, 4096 - 63, &mut infos).0, Err(EINVAL), "crosses the page");
        assert_eq!(register(0, 0x20, 4, &mut infos).0, Err(EINVAL), "misaligned");
        assert_eq!(register(0, 0x100, 0, &mut infos).0, Err(EINVAL), "beyond RAM");
        assert_eq!(
            register(0, 0x20, 64, &mut infos),
            (Ok(None), vec![Action::VcpuInfoMoved { vcpu: 0, gpa: 0x20040 }])
        );
        assert_eq!(infos, [Some(0x20040), None]);
        assert_eq!(register(0, 0x21, 0, &mut infos).0, Err(EINVAL), "registered already");
        assert_eq!(register(1, 0x21, 4096 - 64, &mut infos).1, vec![Action::VcpuInfoMoved { vcpu: 1, gpa: 0x21fc0 }]);
        assert_eq!(register(2, 0x22, 0, &mut infos).0, Err(ENOENT));
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
