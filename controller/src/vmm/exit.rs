//! What a vCPU exit means, as a plain function from exit to action, so it can
//! be tested with made-up exits.

use std::sync::atomic::{AtomicU64, Ordering};

use xevtchn_common::layout::{CONTROL_EXIT, CONTROL_SMOKE};

/// The parts of a KVM exit the VMM acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    MmioWrite { addr: u64, value: u64 },
    MmioRead { addr: u64, len: usize },
    Hlt,
    Shutdown,
    /// Anything else, by name, for the error message.
    Unexpected(String),
}

/// What the vCPU thread does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Resume,
    /// Complete an MMIO read with this value, then resume.
    CompleteRead(u64),
    /// Stop the whole VM with this outcome.
    Stop(Stop),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The guest wrote its exit status (0 = success).
    GuestExit(u32),
    /// The guest did something the VMM cannot continue from.
    Fault(String),
}

/// State shared by all vCPU threads of one VM.
#[derive(Debug, Default)]
pub struct Shared {
    /// Writes the guest made to the smoke register, counted by the VMM.
    pub smoke_writes: AtomicU64,
    /// MMIO exits handled in userspace, all vCPUs together.
    pub mmio_exits: AtomicU64,
}

pub fn handle_exit(shared: &Shared, exit: Exit) -> Action {
    match exit {
        Exit::MmioWrite { addr, value } => {
            shared.mmio_exits.fetch_add(1, Ordering::Relaxed);
            match addr {
                CONTROL_EXIT => Action::Stop(Stop::GuestExit(value as u32)),
                CONTROL_SMOKE => {
                    shared.smoke_writes.fetch_add(1, Ordering::Relaxed);
                    Action::Resume
                }
                _ => Action::Stop(Stop::Fault(format!("write of {value:#x} to unknown MMIO address {addr:#x}"))),
            }
        }
        Exit::MmioRead { addr, len } => {
            shared.mmio_exits.fetch_add(1, Ordering::Relaxed);
            Action::Stop(Stop::Fault(format!("{len}-byte read of unknown MMIO address {addr:#x}")))
        }
        // Every vCPU halts for good once its workload is done.
        Exit::Hlt => Action::Resume,
        Exit::Shutdown => Action::Stop(Stop::Fault("triple fault (KVM_EXIT_SHUTDOWN)".into())),
        Exit::Unexpected(what) => Action::Stop(Stop::Fault(format!("unexpected exit {what}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_write_stops_with_the_guest_status() {
        let shared = Shared::default();
        let action = handle_exit(&shared, Exit::MmioWrite { addr: CONTROL_EXIT, value: 7 });
        assert_eq!(action, Action::Stop(Stop::GuestExit(7)));
    }

    #[test]
    fn smoke_writes_are_counted_and_resume() {
        let shared = Shared::default();
        for i in 0..3 {
            let action = handle_exit(&shared, Exit::MmioWrite { addr: CONTROL_SMOKE, value: i });
            assert_eq!(action, Action::Resume);
        }
        assert_eq!(shared.smoke_writes.load(Ordering::Relaxed), 3);
        assert_eq!(shared.mmio_exits.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn unknown_mmio_is_a_fault_naming_the_address() {
        let shared = Shared::default();
        let Action::Stop(Stop::Fault(msg)) = handle_exit(&shared, Exit::MmioRead { addr: 0xdead_0000, len: 4 }) else {
            panic!("an unknown read must stop the VM");
        };
        assert!(msg.contains("0xdead0000"), "{msg}");
    }
}
