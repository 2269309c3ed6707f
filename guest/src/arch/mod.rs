//! x86_64 plumbing of the built-in guest: descriptors, interrupts, the
//! local APIC, the other vCPUs' start, privilege switches and the TSC.

pub mod apic;
pub mod cpu;
pub mod descriptors;
pub mod interrupts;
mod pvh_entry;
pub mod smp;
pub mod user;
