//! Scheduler and console hypercall ABI: xen/include/public/sched.h and
//! xen.h (console_io).
//!
//! `HYPERVISOR_sched_op(cmd, arg)`; `HYPERVISOR_console_io(cmd, count,
//! buffer)`.
#![allow(non_upper_case_globals)]

use core::mem::{offset_of, size_of};

use super::abi::impl_xen_abi;

pub const SCHEDOP_yield: u64 = 0;
pub const SCHEDOP_block: u64 = 1;
pub const SCHEDOP_shutdown: u64 = 2;
pub const SCHEDOP_poll: u64 = 3;
pub const SCHEDOP_remote_shutdown: u64 = 4;
pub const SCHEDOP_shutdown_code: u64 = 5;
pub const SCHEDOP_watchdog: u64 = 6;
pub const SCHEDOP_pin_override: u64 = 7;

/// `sched_shutdown.reason` (sched.h).
pub const SHUTDOWN_poweroff: u32 = 0;
pub const SHUTDOWN_reboot: u32 = 1;
pub const SHUTDOWN_suspend: u32 = 2;
pub const SHUTDOWN_crash: u32 = 3;
pub const SHUTDOWN_watchdog: u32 = 4;
pub const SHUTDOWN_soft_reset: u32 = 5;

/// SCHEDOP_poll's port limit ("fairly arbitrary", xen/common/sched/core.c).
pub const SCHED_POLL_MAX_PORTS: u32 = 128;

pub const CONSOLEIO_write: u64 = 0;
pub const CONSOLEIO_read: u64 = 1;

/// The name of a shutdown reason, as sched.h spells it after `SHUTDOWN_`.
pub const fn shutdown_name(reason: u32) -> Option<&'static str> {
    Some(match reason {
        SHUTDOWN_poweroff => "poweroff",
        SHUTDOWN_reboot => "reboot",
        SHUTDOWN_suspend => "suspend",
        SHUTDOWN_crash => "crash",
        SHUTDOWN_watchdog => "watchdog",
        SHUTDOWN_soft_reset => "soft_reset",
        _ => return None,
    })
}

/// `struct sched_shutdown` (sched.h): argument of SCHEDOP_shutdown.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedShutdown {
    pub reason: u32,
}
const _: () = assert!(size_of::<SchedShutdown>() == 4);

/// `struct sched_poll` (sched.h): argument of SCHEDOP_poll. `timeout` is an
/// absolute system time (ns, the vcpu_time_info clock); 0 means none.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedPoll {
    /// XEN_GUEST_HANDLE(evtchn_port_t): `nr_ports` u32 port numbers.
    pub ports: u64,
    pub nr_ports: u32,
    pub _pad: u32,
    pub timeout: u64,
}
const _: () = assert!(size_of::<SchedPoll>() == 24);
const _: () = assert!(offset_of!(SchedPoll, nr_ports) == 8);
const _: () = assert!(offset_of!(SchedPoll, timeout) == 16);

impl_xen_abi!(SchedShutdown, SchedPoll);
