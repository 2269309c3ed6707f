//! Shared by the BPF programs, the controller and the built-in guest.
//!
//! Everything here is `no_std` and has the same layout on the host, in BPF
//! and in the guest.
#![no_std]

pub mod doorbell;
pub mod guest_abi;
pub mod layout;
pub mod trace;
pub mod two_level;
pub mod wire;
pub mod xen;
