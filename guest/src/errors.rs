//! Errors the guest detects, recorded in its report (codes in
//! xevtchn_common::guest_abi::error).

pub use xevtchn_common::guest_abi::error::{op::*, *};

use crate::report;

/// An error code.
pub type Error = u32;

/// The code of a failed hypercall.
pub const fn hypercall(op: u32, errno: i32) -> Error {
    hypercall_failed(op, errno)
}

/// Counts a protocol violation on `vcpu` and keeps the first code.
pub fn record(vcpu: u32, code: Error) {
    report::counters(vcpu).error(code);
}
