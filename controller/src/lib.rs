//! xevtchn: Xen event channels for KVM guests, with the delivery fast path
//! in the kernel (eBPF on KVM tracepoints + ioeventfd/irqfd).

pub mod bpf;
pub mod cli;
pub mod vmm;
pub mod xen;
