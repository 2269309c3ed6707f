//! Tracing programs: observe upcall delivery in any KVM process, one
//! module per hook. Sends (doorbell writes) are joined to the injection
//! that follows in the same vCPU thread, injections to their EOI.

mod accept_irq;
mod eoi;
mod irq_sources;
mod maps;
mod mmio;
mod pio;
mod userspace_exit;
mod xen_hypercall;
