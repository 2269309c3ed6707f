//! The VMM: a KVM VM built with rust-vmm's kvm-ioctls, its memory, its
//! vCPU threads and the handling of their exits.

pub mod canary;
pub mod error;
pub mod exit;
pub mod gate;
pub mod guest_virtual;
pub mod hypercall_page;
pub mod kvm_stats;
pub mod memory;
pub mod pvh;
pub mod vcpu;
pub mod vm;
pub mod xen_cpuid;

pub use error::VmmError;
pub use vm::{Boot, Vm, VmConfig, VmOutcome};
