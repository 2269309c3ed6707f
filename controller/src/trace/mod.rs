//! `xevtchn trace`: what the tracing programs saw, per VM and per vCPU
//! (APIC), as rates over an interval and log2 latency histograms.

pub mod report;
pub mod target;
pub mod view;
pub mod xen_hypercall;
