//! The event stream (`xevtchn trace --events`): ring-buffer records decoded
//! into lines.

use serde::Serialize;
use xevtchn_common::trace::{EVENT_SEND, EVENT_XEN_HYPERCALL, TraceEvent};

use super::xen_hypercall::{self, XenHypercall};

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventLine {
    Send {
        pid: u32,
        tid: u32,
        /// The CPU the send ran on.
        cpu: u32,
        port: u32,
        apicid: u32,
        vector: u32,
        path: &'static str,
        send_ns: u64,
        inject_ns: u64,
        latency_ns: u64,
    },
    XenHypercall {
        pid: u32,
        tid: u32,
        cpu: u32,
        at_ns: u64,
        #[serde(flatten)]
        call: XenHypercall,
    },
}

impl EventLine {
    /// When it happened (CLOCK_MONOTONIC ns, the programs' clock).
    pub fn at_ns(&self) -> u64 {
        match self {
            EventLine::Send { send_ns, .. } => *send_ns,
            EventLine::XenHypercall { at_ns, .. } => *at_ns,
        }
    }

    pub fn tid(&self) -> u32 {
        match self {
            EventLine::Send { tid, .. } | EventLine::XenHypercall { tid, .. } => *tid,
        }
    }
}

/// CLOCK_MONOTONIC now, in ns: the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass; the clock exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Thread names by tid, read once from /proc ("?" once the thread is gone).
#[derive(Default)]
pub struct ThreadNames(std::collections::HashMap<u32, String>);

impl ThreadNames {
    pub fn of(&mut self, pid: u32, tid: u32) -> &str {
        self.0.entry(tid).or_insert_with(|| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                .map_or_else(|_| "?".to_string(), |c| c.trim_end().to_string())
        })
    }
}

/// A record as the programs wrote it; None for a short or unknown one.
/// `a4_recorded`: whether this kernel's kvm_xen_hypercall records a4.
pub fn decode(bytes: &[u8], a4_recorded: bool) -> Option<EventLine> {
    if bytes.len() < size_of::<TraceEvent>() {
        return None;
    }
    // SAFETY: the program wrote a TraceEvent (repr(C), integers and bytes
    // only), and the buffer holds at least that many bytes.
    let e: TraceEvent = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    match e.kind {
        EVENT_SEND => Some(EventLine::Send {
            pid: e.tgid,
            tid: e.tid,
            cpu: e.cpu,
            port: e.port,
            apicid: e.apicid,
            vector: e.vector,
            path: if e.via_userspace != 0 { "userspace" } else { "kernel" },
            send_ns: e.send_ns,
            inject_ns: e.inject_ns,
            latency_ns: e.inject_ns.saturating_sub(e.send_ns),
        }),
        EVENT_XEN_HYPERCALL => xen_hypercall::decode(&e.record, a4_recorded).ok().map(|call| EventLine::XenHypercall {
            pid: e.tgid,
            tid: e.tid,
            cpu: e.cpu,
            at_ns: e.send_ns,
            call,
        }),
        _ => None,
    }
}

/// Whether this host's kvm_xen_hypercall records a4 (see xen_hypercall).
pub fn kernel_records_a4() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    xen_hypercall::kernel_records_a4(release.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_record_becomes_a_send_line_and_short_records_nothing() {
        let e = TraceEvent {
            kind: EVENT_SEND,
            tgid: 7,
            tid: 8,
            apicid: 1,
            vector: 0xf3,
            via_userspace: 0,
            port: 5,
            cpu: 1,
            send_ns: 100,
            inject_ns: 350,
            record: [0; xevtchn_common::trace::XEN_HYPERCALL_RECORD],
        };
        // SAFETY: a plain-data struct viewed as bytes.
        let bytes = unsafe { std::slice::from_raw_parts(std::ptr::addr_of!(e).cast::<u8>(), size_of::<TraceEvent>()) };
        match decode(bytes, true) {
            Some(EventLine::Send { pid: 7, port: 5, cpu: 1, latency_ns: 250, path: "kernel", .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(decode(&bytes[..8], true).is_none());
    }
}
