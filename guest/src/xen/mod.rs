//! The guest side of the Xen HVM protocol.

pub mod hypercall;
pub mod ops;
pub mod setup;
pub mod shared_info;
