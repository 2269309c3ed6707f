//! Loading xevtchn's BPF object and attaching its programs.

pub mod doorbell;
pub mod error;
pub mod load;
pub mod mmio_counter;
pub mod trace;

pub use error::BpfError;
