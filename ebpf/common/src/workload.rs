//! Workload numbers the VMM passes to the built-in guest's entry point in
//! `rdi` (with the workload's argument in `rsi` and the vCPU index in `rdx`).

/// vCPU 0 writes the smoke register `arg` times, then exits with status 0.
pub const SMOKE: u64 = 1;
