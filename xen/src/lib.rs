//! The Xen hypervisor side of event channels, as pure logic: no KVM here.
//!
//! [`Domain`] holds the port table (4096 ports of the 2-level ABI), the HVM
//! callback state, where shared_info lives and the version it reports.
//! [`Domain::hypercall`] runs one hypercall (event_channel_op, hvm_op,
//! memory_op, xen_version) against guest memory reached through
//! [`GuestMemory`] (guest virtual addresses; a fault is -EFAULT) and the
//! shared_info event words reached through
//! [`xevtchn_common::two_level::EventWords`]. It returns the value for rax
//! and a list of [`Action`]s for the delivery layer: raise an upcall, a
//! port was bound / moved / closed, the callback changed, shared_info was
//! placed, a backend must be notified.
//!
//! sched_op and console_io answer what only the VMM can do (stop, wait,
//! print) with a [`FollowUp`].
//!
//! Validation follows Xen (xen/common/event_channel.c,
//! xen/arch/x86/hvm/hvm.c, xen/common/memory.c, xen/common/kernel.c,
//! xen/common/sched/core.c, xen/drivers/char/console.c); the
//! unit tests cite the checks they mirror. Only 64-bit guests are
//! supported ([`require_64bit_guest`]). The FIFO ABI answers -ENOSYS.

// Xen's constants keep their C names (see `xevtchn_common::xen`), also
// where they are matched on.
#![allow(non_upper_case_globals)]

mod actions;
mod backend;
mod config;
mod dispatch;
mod domain;
mod error;
mod evtchn_hypercall;
mod evtchn_ops;
mod guest_memory;
mod host;
mod hvm_ops;
mod memory_ops;
mod ports;
mod sched_ops;
mod timer_ops;
mod version_ops;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_model;
#[cfg(any(test, feature = "fuzzing"))]
mod test_support;

#[cfg(test)]
#[path = "domain_fuzz_tests.rs"]
mod domain_fuzz_tests;

pub use actions::Action;
pub use config::{ConfigError, DomainConfig, XenVersion};
pub use dispatch::{CompatGuestUnsupported, Hypercall, HypercallResult, require_64bit_guest};
pub use domain::{Domain, SendResult};
pub use error::{DomainIds, DomainLookupError, XenErrno};
pub use evtchn_ops::{EventChannels, EvtchnError};
pub use guest_memory::{GuestFault, GuestMemory, read_obj, write_obj};
pub use host::HostError;
pub use hvm_ops::HvmError;
pub use memory_ops::{E820Entry, MemoryError};
pub use ports::{NR_PORTS, PortInfo, PortState, SendTarget};
pub use sched_ops::{FollowUp, SchedError};
pub use timer_ops::VcpuOpError;
pub use version_ops::VersionError;
