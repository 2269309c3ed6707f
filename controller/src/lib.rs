//! xevtchn: Xen event channels for KVM guests, with the delivery fast path
//! in the kernel (eBPF on KVM tracepoints + ioeventfd/irqfd).
//!
//! - `xen`: the hypervisor side of event channels, pure logic;
//! - `vmm`: the KVM VM, its memory, boot, vCPU threads;
//! - `platform`: what vCPU exits do to the Xen domain and back (hypercalls,
//!   doorbells, shared_info mapping, upcall injection);
//! - `run`: one run of the built-in guest and its report;
//! - `bench`: the backends side by side;
//! - `trace`: upcall delivery in any KVM process, from the tracing programs;
//! - `bpf`: loading and attaching the BPF programs;
//! - `service`: `xevtchn serve`, the doorbell program for every VM of a host;
//! - `schema`: the versioned JSON every command prints;
//! - `cli`: the command line.

pub mod bench;
pub mod bpf;
pub mod cli;
pub mod platform;
pub mod run;
pub mod schema;
pub mod service;
pub mod trace;
pub mod vmm;
/// The hypervisor side, a crate of its own (xen/): pure logic, fuzzable alone.
pub use xevtchn_xen as xen;
