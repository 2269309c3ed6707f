//! Decoding kvm_xen_hypercall records (hosts with CONFIG_KVM_XEN, e.g.
//! QEMU's Xen emulation): the hypercall, its EVTCHNOP where it has one, and
//! its arguments.
//!
//! The record layout is the tracepoint's format file:
//! cpl u8 @8, nr @16, a0 @24, a1 @32, a2 @40, a3 @48, a4 @56, a5 @64
//! (unsigned long each). Kernels before the upstream fix 2b72f1674e42
//! (mid-2026) store a5 in the a4 field, so a4 cannot be trusted there.
//! EVTCHNOP_send's port is behind a guest pointer (a1), not in the record.

use serde::Serialize;
use xevtchn_common::xen::{evtchn, hypercall};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct XenHypercall {
    pub cpl: u8,
    pub nr: u64,
    pub name: &'static str,
    /// For event_channel_op: the EVTCHNOP (from a0).
    pub op: Option<&'static str>,
    /// a0..a5 in ABI order (rdi, rsi, rdx, r10, r8, r9); a4 is None where
    /// the kernel records a5 in its place.
    pub args: [Option<u64>; 6],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a kvm_xen_hypercall record has 72 bytes, not {0}")]
pub struct ShortRecord(pub usize);

fn field(record: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(record[offset..offset + 8].try_into().expect("8 bytes"))
}

pub fn hypercall_name(nr: u64) -> &'static str {
    match u32::try_from(nr) {
        Ok(hypercall::__HYPERVISOR_memory_op) => "memory_op",
        Ok(hypercall::__HYPERVISOR_set_timer_op) => "set_timer_op",
        Ok(hypercall::__HYPERVISOR_xen_version) => "xen_version",
        Ok(hypercall::__HYPERVISOR_vcpu_op) => "vcpu_op",
        Ok(hypercall::__HYPERVISOR_sched_op) => "sched_op",
        Ok(hypercall::__HYPERVISOR_event_channel_op) => "event_channel_op",
        Ok(hypercall::__HYPERVISOR_hvm_op) => "hvm_op",
        Ok(hypercall::__HYPERVISOR_grant_table_op) => "grant_table_op",
        Ok(hypercall::__HYPERVISOR_physdev_op) => "physdev_op",
        _ => "unknown",
    }
}

pub fn evtchnop_name(op: u64) -> &'static str {
    match u32::try_from(op) {
        Ok(evtchn::EVTCHNOP_bind_interdomain) => "bind_interdomain",
        Ok(evtchn::EVTCHNOP_bind_virq) => "bind_virq",
        Ok(evtchn::EVTCHNOP_bind_pirq) => "bind_pirq",
        Ok(evtchn::EVTCHNOP_close) => "close",
        Ok(evtchn::EVTCHNOP_send) => "send",
        Ok(evtchn::EVTCHNOP_status) => "status",
        Ok(evtchn::EVTCHNOP_alloc_unbound) => "alloc_unbound",
        Ok(evtchn::EVTCHNOP_bind_ipi) => "bind_ipi",
        Ok(evtchn::EVTCHNOP_bind_vcpu) => "bind_vcpu",
        Ok(evtchn::EVTCHNOP_unmask) => "unmask",
        Ok(evtchn::EVTCHNOP_reset) => "reset",
        Ok(evtchn::EVTCHNOP_init_control) => "init_control",
        Ok(evtchn::EVTCHNOP_expand_array) => "expand_array",
        Ok(evtchn::EVTCHNOP_set_priority) => "set_priority",
        _ => "unknown",
    }
}

/// Decodes a raw record; `a4_recorded` says whether this kernel records a4
/// itself (false before the upstream fix: the a4 field then holds a5).
pub fn decode(record: &[u8], a4_recorded: bool) -> Result<XenHypercall, ShortRecord> {
    if record.len() < 72 {
        return Err(ShortRecord(record.len()));
    }
    let nr = field(record, 16);
    let a = |i: usize| field(record, 24 + 8 * i);
    let args = [Some(a(0)), Some(a(1)), Some(a(2)), Some(a(3)), a4_recorded.then(|| a(4)), Some(a(5))];
    let op = (u32::try_from(nr) == Ok(hypercall::__HYPERVISOR_event_channel_op)).then(|| evtchnop_name(a(0)));
    Ok(XenHypercall { cpl: record[8], nr, name: hypercall_name(nr), op, args })
}

/// Whether running kernel `release` (uname -r) records a4 correctly: the
/// fix is in 7.1 and later.
pub fn kernel_records_a4(release: &str) -> bool {
    let mut parts = release.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse::<u32>().ok());
    matches!((parts.next(), parts.next()), (Some(major), Some(minor)) if (major, minor) >= (7, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the tracepoint lays it out (format file offsets).
    fn record(cpl: u8, nr: u64, args: [u64; 6]) -> Vec<u8> {
        let mut r = vec![0u8; 72];
        r[8] = cpl;
        r[16..24].copy_from_slice(&nr.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            r[24 + 8 * i..32 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        r
    }

    #[test]
    fn an_event_channel_send_decodes_with_its_op() {
        // EVTCHNOP_send(&send): a0 = 4, a1 = the guest pointer.
        let r = record(0, 32, [4, 0xffff_8880_0123_4000, 0, 0, 0, 0]);
        let h = decode(&r, true).unwrap();
        assert_eq!((h.name, h.op, h.args[1]), ("event_channel_op", Some("send"), Some(0xffff_8880_0123_4000)));
    }

    #[test]
    fn on_older_kernels_a4_is_not_trusted() {
        // The buggy tracepoint puts a5 (here 6) in both fields.
        let r = record(0, 34, [23, 0x1000, 3, 4, 6, 6]);
        let h = decode(&r, false).unwrap();
        assert_eq!((h.name, h.op), ("hvm_op", None));
        assert_eq!(h.args, [Some(23), Some(0x1000), Some(3), Some(4), None, Some(6)]);
        assert_eq!(decode(&r, true).unwrap().args[4], Some(6));
    }

    #[test]
    fn short_records_and_unknown_numbers() {
        assert_eq!(decode(&[0; 10], true), Err(ShortRecord(10)));
        assert_eq!(decode(&record(3, 99, [0; 6]), true).unwrap().name, "unknown");
        assert_eq!(decode(&record(3, 99, [0; 6]), true).unwrap().cpl, 3);
    }

    #[test]
    fn which_kernels_record_a4() {
        assert!(!kernel_records_a4("6.18.44-fc-v669"));
        assert!(kernel_records_a4("7.1.0"));
        assert!(kernel_records_a4("8.0.3-rc1"));
        assert!(!kernel_records_a4("garbage"));
    }
}
