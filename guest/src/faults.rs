//! Unexpected exceptions: end the VM with the vector in the exit status.

use xevtchn_common::guest_abi::error::EXIT_EXCEPTION;

/// Called by the exception stubs with the vector, error code and faulting rip.
pub extern "C" fn exception(vector: u64, _error_code: u64, rip: u64) -> ! {
    crate::report::note_fault(rip);
    crate::report::publish(crate::arch::cpu::current_vcpu());
    crate::exit(EXIT_EXCEPTION | vector as u32)
}
