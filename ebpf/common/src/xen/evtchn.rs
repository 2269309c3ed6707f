//! Event-channel hypercall ABI: xen/include/public/event_channel.h.
//!
//! `HYPERVISOR_event_channel_op(cmd, arg)`: `cmd` is one of `EVTCHNOP_*`,
//! `arg` the guest address of the matching struct below (IN fields are read,
//! OUT fields written back).
#![allow(non_upper_case_globals)]

use core::mem::{offset_of, size_of};

use super::abi::impl_xen_abi;

/// `evtchn_port_t`.
pub type EvtchnPort = u32;

pub const EVTCHNOP_bind_interdomain: u32 = 0;
pub const EVTCHNOP_bind_virq: u32 = 1;
pub const EVTCHNOP_bind_pirq: u32 = 2;
pub const EVTCHNOP_close: u32 = 3;
pub const EVTCHNOP_send: u32 = 4;
pub const EVTCHNOP_status: u32 = 5;
pub const EVTCHNOP_alloc_unbound: u32 = 6;
pub const EVTCHNOP_bind_ipi: u32 = 7;
pub const EVTCHNOP_bind_vcpu: u32 = 8;
pub const EVTCHNOP_unmask: u32 = 9;
pub const EVTCHNOP_reset: u32 = 10;
/// FIFO ABI (11-13).
pub const EVTCHNOP_init_control: u32 = 11;
pub const EVTCHNOP_expand_array: u32 = 12;
pub const EVTCHNOP_set_priority: u32 = 13;

/// `evtchn_status.status` values.
pub const EVTCHNSTAT_closed: u32 = 0;
pub const EVTCHNSTAT_unbound: u32 = 1;
pub const EVTCHNSTAT_interdomain: u32 = 2;
pub const EVTCHNSTAT_pirq: u32 = 3;
pub const EVTCHNSTAT_virq: u32 = 4;
pub const EVTCHNSTAT_ipi: u32 = 5;

/// `evtchn_bind_pirq.flags`.
pub const BIND_PIRQ__WILL_SHARE: u32 = 1;

/// Ports of the 2-level ABI for a 64-bit guest:
/// `sizeof(xen_ulong_t) * sizeof(xen_ulong_t) * 64`.
pub const EVTCHN_2L_NR_CHANNELS: u32 = 8 * 8 * 64;

/// FIFO ABI limits, mirrored only so that FIFO can be added later.
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << EVTCHN_FIFO_LINK_BITS;
pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;

/// `struct evtchn_alloc_unbound` (event_channel.h): allocate a port in
/// domain `dom` that `remote_dom` may later bind to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnAllocUnbound {
    /// IN
    pub dom: u16,
    /// IN
    pub remote_dom: u16,
    /// OUT
    pub port: EvtchnPort,
}
const _: () = assert!(size_of::<EvtchnAllocUnbound>() == 8);
const _: () = assert!(offset_of!(EvtchnAllocUnbound, dom) == 0);
const _: () = assert!(offset_of!(EvtchnAllocUnbound, remote_dom) == 2);
const _: () = assert!(offset_of!(EvtchnAllocUnbound, port) == 4);

/// `struct evtchn_bind_interdomain` (event_channel.h): connect a new local
/// port to `remote_port`, an unbound port of `remote_dom`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindInterdomain {
    /// IN
    pub remote_dom: u16,
    pub _pad0: u16,
    /// IN
    pub remote_port: EvtchnPort,
    /// OUT
    pub local_port: EvtchnPort,
}
const _: () = assert!(size_of::<EvtchnBindInterdomain>() == 12);
const _: () = assert!(offset_of!(EvtchnBindInterdomain, remote_dom) == 0);
const _: () = assert!(offset_of!(EvtchnBindInterdomain, remote_port) == 4);
const _: () = assert!(offset_of!(EvtchnBindInterdomain, local_port) == 8);

/// `struct evtchn_bind_virq` (event_channel.h): bind VIRQ `virq` on `vcpu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVirq {
    /// IN
    pub virq: u32,
    /// IN
    pub vcpu: u32,
    /// OUT
    pub port: EvtchnPort,
}
const _: () = assert!(size_of::<EvtchnBindVirq>() == 12);
const _: () = assert!(offset_of!(EvtchnBindVirq, virq) == 0);
const _: () = assert!(offset_of!(EvtchnBindVirq, vcpu) == 4);
const _: () = assert!(offset_of!(EvtchnBindVirq, port) == 8);

/// `struct evtchn_bind_pirq` (event_channel.h): bind a physical IRQ.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindPirq {
    /// IN
    pub pirq: u32,
    /// IN: `BIND_PIRQ__*`
    pub flags: u32,
    /// OUT
    pub port: EvtchnPort,
}
const _: () = assert!(size_of::<EvtchnBindPirq>() == 12);
const _: () = assert!(offset_of!(EvtchnBindPirq, pirq) == 0);
const _: () = assert!(offset_of!(EvtchnBindPirq, flags) == 4);
const _: () = assert!(offset_of!(EvtchnBindPirq, port) == 8);

/// `struct evtchn_bind_ipi` (event_channel.h): a port for IPIs to `vcpu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindIpi {
    /// IN
    pub vcpu: u32,
    /// OUT
    pub port: EvtchnPort,
}
const _: () = assert!(size_of::<EvtchnBindIpi>() == 8);
const _: () = assert!(offset_of!(EvtchnBindIpi, vcpu) == 0);
const _: () = assert!(offset_of!(EvtchnBindIpi, port) == 4);

/// `struct evtchn_close` (event_channel.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnClose {
    /// IN
    pub port: EvtchnPort,
}
const _: () = assert!(size_of::<EvtchnClose>() == 4);
const _: () = assert!(offset_of!(EvtchnClose, port) == 0);

/// `struct evtchn_send` (event_channel.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSend {
    /// IN
    pub port: EvtchnPort,
}
const _: () = assert!(size_of::<EvtchnSend>() == 4);
const _: () = assert!(offset_of!(EvtchnSend, port) == 0);

/// `struct evtchn_status` (event_channel.h). The C union `u` is kept as two
/// raw words; use the setters and getters, which place each member where
/// the C union has it (little endian).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatus {
    /// IN
    pub dom: u16,
    pub _pad0: u16,
    /// IN
    pub port: EvtchnPort,
    /// OUT: `EVTCHNSTAT_*`
    pub status: u32,
    /// OUT: vCPU the channel notifies.
    pub vcpu: u32,
    /// OUT: union { unbound { domid_t dom }; interdomain { domid_t dom;
    /// evtchn_port_t port }; uint32_t pirq; uint32_t virq }.
    pub u: [u32; 2],
}
const _: () = assert!(size_of::<EvtchnStatus>() == 24);
const _: () = assert!(offset_of!(EvtchnStatus, dom) == 0);
const _: () = assert!(offset_of!(EvtchnStatus, port) == 4);
const _: () = assert!(offset_of!(EvtchnStatus, status) == 8);
const _: () = assert!(offset_of!(EvtchnStatus, vcpu) == 12);
const _: () = assert!(offset_of!(EvtchnStatus, u) == 16);

/// Offsets of the union members inside `evtchn_status.u`.
pub const EVTCHN_STATUS_U_DOM_OFFSET: usize = 0;
pub const EVTCHN_STATUS_U_INTERDOMAIN_PORT_OFFSET: usize = 4;

impl EvtchnStatus {
    /// `u.unbound.dom`.
    pub fn set_unbound(&mut self, remote_dom: u16) {
        self.u = [u32::from(remote_dom), 0];
    }
    /// `u.interdomain.dom` and `u.interdomain.port`.
    pub fn set_interdomain(&mut self, remote_dom: u16, remote_port: EvtchnPort) {
        self.u = [u32::from(remote_dom), remote_port];
    }
    /// `u.virq`.
    pub fn set_virq(&mut self, virq: u32) {
        self.u = [virq, 0];
    }
    /// `u.pirq`.
    pub fn set_pirq(&mut self, pirq: u32) {
        self.u = [pirq, 0];
    }
    /// `u.unbound.dom` / `u.interdomain.dom` (the low 16 bits of word 0).
    pub fn remote_dom(&self) -> u16 {
        (self.u[0] & 0xffff) as u16
    }
    /// `u.interdomain.port`.
    pub fn remote_port(&self) -> EvtchnPort {
        self.u[1]
    }
    /// `u.virq` / `u.pirq`.
    pub fn virq(&self) -> u32 {
        self.u[0]
    }
}

/// `struct evtchn_bind_vcpu` (event_channel.h): notify `vcpu` instead.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVcpu {
    /// IN
    pub port: EvtchnPort,
    /// IN
    pub vcpu: u32,
}
const _: () = assert!(size_of::<EvtchnBindVcpu>() == 8);
const _: () = assert!(offset_of!(EvtchnBindVcpu, port) == 0);
const _: () = assert!(offset_of!(EvtchnBindVcpu, vcpu) == 4);

/// `struct evtchn_unmask` (event_channel.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnUnmask {
    /// IN
    pub port: EvtchnPort,
}
const _: () = assert!(size_of::<EvtchnUnmask>() == 4);
const _: () = assert!(offset_of!(EvtchnUnmask, port) == 0);

/// `struct evtchn_reset` (event_channel.h): close every port of `dom`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnReset {
    /// IN
    pub dom: u16,
}
const _: () = assert!(size_of::<EvtchnReset>() == 2);
const _: () = assert!(offset_of!(EvtchnReset, dom) == 0);

/// `struct evtchn_init_control` (event_channel.h, FIFO ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnInitControl {
    /// IN
    pub control_gfn: u64,
    /// IN
    pub offset: u32,
    /// IN
    pub vcpu: u32,
    /// OUT
    pub link_bits: u8,
    pub _pad: [u8; 7],
}
const _: () = assert!(size_of::<EvtchnInitControl>() == 24);
const _: () = assert!(offset_of!(EvtchnInitControl, control_gfn) == 0);
const _: () = assert!(offset_of!(EvtchnInitControl, offset) == 8);
const _: () = assert!(offset_of!(EvtchnInitControl, vcpu) == 12);
const _: () = assert!(offset_of!(EvtchnInitControl, link_bits) == 16);

/// `struct evtchn_expand_array` (event_channel.h, FIFO ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnExpandArray {
    /// IN
    pub array_gfn: u64,
}
const _: () = assert!(size_of::<EvtchnExpandArray>() == 8);
const _: () = assert!(offset_of!(EvtchnExpandArray, array_gfn) == 0);

/// `struct evtchn_set_priority` (event_channel.h, FIFO ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSetPriority {
    /// IN
    pub port: EvtchnPort,
    /// IN
    pub priority: u32,
}
const _: () = assert!(size_of::<EvtchnSetPriority>() == 8);
const _: () = assert!(offset_of!(EvtchnSetPriority, port) == 0);
const _: () = assert!(offset_of!(EvtchnSetPriority, priority) == 4);

impl_xen_abi!(
    EvtchnAllocUnbound,
    EvtchnBindInterdomain,
    EvtchnBindVirq,
    EvtchnBindPirq,
    EvtchnBindIpi,
    EvtchnClose,
    EvtchnSend,
    EvtchnStatus,
    EvtchnBindVcpu,
    EvtchnUnmask,
    EvtchnReset,
    EvtchnInitControl,
    EvtchnExpandArray,
    EvtchnSetPriority,
);
