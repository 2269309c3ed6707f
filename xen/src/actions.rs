//! What the delivery layer must do after an event-channel operation.
//!
//! The hypervisor side is pure logic: it updates its tables and the
//! shared_info words, and lists the side effects it cannot perform itself
//! (injecting interrupts, moving ioeventfds, updating the BPF port map,
//! mapping shared_info). The delivery layer applies them in order.

use xevtchn_common::two_level::Outcome;
use xevtchn_common::xen::hvm::CallbackVia;

use super::ports::PortInfo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `evtchn_upcall_pending` of `vcpu` went 0 → 1 (or Xen re-asserts
    /// delivery): inject the vCPU's upcall vector if it has one; otherwise,
    /// on vCPU 0, set the GSI / PCI INTx callback line to the level of
    /// `evtchn_upcall_pending` (hvm_assert_evtchn_irq). A spurious upcall
    /// is harmless.
    RaiseUpcall { vcpu: u32 },
    /// A free port was allocated (alloc_unbound, bind_*).
    PortBound { port: u32, info: PortInfo },
    /// A port in use changed state or send target (an unbound port got
    /// connected, a loopback peer moved or closed).
    PortUpdated { port: u32, info: PortInfo },
    /// A port now notifies vCPU `to` instead of `from` (EVTCHNOP_bind_vcpu).
    PortMoved { port: u32, from: u32, to: u32 },
    /// A port was closed and is free again; its pending bit was cleared.
    PortClosed { port: u32 },
    /// HVM_PARAM_CALLBACK_IRQ changed; this is the callback in effect (Xen's
    /// policy applied: an unusable GSI or unknown type means `None`).
    CallbackChanged { callback: CallbackVia },
    /// `vcpu` now takes upcalls on LAPIC vector `vector`, in preference to
    /// the callback.
    UpcallVectorSet { vcpu: u32, vector: u8 },
    /// The guest asked for shared_info at guest frame `gfn`.
    SharedInfoPlaced { gfn: u64 },
    /// `vcpu`'s vcpu_info now lives at guest-physical `gpa` (in RAM), not
    /// in shared_info: its content moves there, then every event is marked
    /// pending on it (map_vcpu_info: "The domain will get a spurious
    /// event, but it can cope").
    VcpuInfoMoved { vcpu: u32, gpa: u64 },
    /// The guest sent on `guest_port`, connected to host backend port
    /// `backend_port`.
    NotifyBackend { backend_port: u32, guest_port: u32 },
    /// The guest closed its end: `backend_port` is unbound again.
    BackendUnbound { backend_port: u32 },
}

/// Appends `RaiseUpcall` when a step of the 2-level algorithm says so.
pub(super) fn raise_if_needed(out: &mut Vec<Action>, outcome: Outcome, vcpu: u32) {
    if outcome.must_raise() {
        out.push(Action::RaiseUpcall { vcpu });
    }
}
