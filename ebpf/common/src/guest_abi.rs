//! The contract between the VMM and the built-in guest: what to run
//! (`Params`, written by the VMM before start) and what the guest saw
//! (`VcpuReport`, read by the VMM after the guest exits). Both live in guest
//! RAM at the addresses of `layout`.

use core::mem::{offset_of, size_of};

/// Workload numbers (`Params::workload`).
pub mod workload {
    /// vCPU 0 writes the smoke register `count` times, then exits.
    pub const SMOKE: u32 = 1;
    /// vCPUs 0 and 1 answer each other over IPI ports; one-way latency.
    pub const PINGPONG: u32 = 2;
    /// Every vCPU but the last sends as fast as it can to the last.
    pub const FLOOD: u32 = 3;
    /// Every vCPU sends to every other.
    pub const FANOUT: u32 = 4;
    /// Sends to a masked port raise no upcall; the unmask raises one.
    pub const MASK: u32 = 5;
    /// Ports move between vCPUs (EVTCHNOP_bind_vcpu) while being sent to.
    pub const REBIND: u32 = 6;
    /// vCPU 0 takes its upcall through a GSI, then a PCI INTx callback.
    pub const CALLBACK: u32 = 7;
    /// Invalid hypercalls, ops, ports and pointers, each errno checked.
    pub const HOSTILE: u32 = 8;
    /// vCPU 0 pings a host-side userspace backend over an interdomain
    /// port; the backend (woken by an eventfd) answers on the same port.
    pub const BACKEND: u32 = 9;
    /// vCPU 0 fills the port table (alloc_unbound until -ENOSPC), binds
    /// IPI and interdomain ports at its top and sends on them.
    pub const PORTS: u32 = 10;
    /// vCPUs 0 and 1 play pingpong while the others throw random
    /// hypercalls, MSR writes and MMIO accesses at the hypervisor, from
    /// `Params::seed`; every answer must be a Xen errno or a success.
    pub const FUZZ: u32 = 11;
}

/// How vCPU 0 is called back (`Params::callback`); other vCPUs always use
/// their per-vCPU upcall vector.
pub mod callback {
    pub const VECTOR: u32 = 0;
    pub const GSI: u32 = 1;
    pub const PCI_INTX: u32 = 2;
}

/// Written by the VMM at `layout::PARAMS` before the vCPUs start.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params {
    pub workload: u32,
    pub vcpus: u32,
    /// Sends per sender (when `duration_tsc` is 0).
    pub count: u64,
    /// Run for this many TSC ticks instead of `count` sends (0: use count).
    pub duration_tsc: u64,
    pub callback: u32,
    /// The GSI for `callback::GSI`.
    pub callback_gsi: u32,
    /// TSC ticks per millisecond, for the guest's timeouts.
    pub tsc_per_ms: u64,
    /// The host backend's port offered to the guest (BACKEND workload).
    pub backend_port: u32,
    /// The backend's domain id (the `remote_dom` to bind to).
    pub backend_domid: u32,
    /// Where the guest places shared_info (0: layout::SHARED_INFO_GPA,
    /// outside RAM; layout::SHARED_INFO_IN_RAM_GPA makes the VMM split RAM).
    pub shared_info_gpa: u64,
    /// 1: the bare ioeventfd + irqfd chain, with no event-channel state. An
    /// upcall then consumes every port bound to the vCPU with a send not
    /// yet seen, instead of scanning shared_info (benchmark reference only).
    pub bare: u32,
    pub _pad: u32,
    /// Senders of flood, fanout and rebind send at most one event per this
    /// many TSC ticks (0: as fast as they can).
    pub send_interval_tsc: u64,
    /// The fuzz workload's random seed (each fuzzing vCPU derives its own).
    pub seed: u64,
}
const _: () = assert!(size_of::<Params>() == 80);
const _: () = assert!(offset_of!(Params, tsc_per_ms) == 32);

/// Written by each vCPU of the guest at `layout::report(vcpu)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuReport {
    /// Non-zero once the vCPU finished its part.
    pub done: u64,
    /// EVTCHNOP_send hypercalls made.
    pub sent: u64,
    /// Events consumed with a new sequence number.
    pub delivered: u64,
    /// Ports found pending whose sequence number had already been seen
    /// (the upcall of a send another upcall already consumed).
    pub stale: u64,
    /// Upcall handler runs.
    pub upcalls: u64,
    /// Upcalls that found nothing pending.
    pub spurious_upcalls: u64,
    /// Events sent to an unmasked port that this vCPU never consumed,
    /// counted by the sender after the drain timeout.
    pub lost: u64,
    /// Protocol violations the guest detected.
    pub errors: u64,
    /// Code of the first error (see the guest's `errors` module).
    pub first_error: u64,
    /// Latency samples written to `layout::samples(vcpu)` (TSC ticks,
    /// send stamp to upcall handler); the ring keeps the latest.
    pub samples: u64,
    /// Sends to a masked port (mask workload).
    pub masked_sends: u64,
    /// rip of an unexpected exception, if one ended the VM.
    pub fault_rip: u64,
    /// TSC when this vCPU started and ended its part of the workload.
    pub play_start_tsc: u64,
    pub play_end_tsc: u64,
    /// Ports this vCPU moved with EVTCHNOP_bind_vcpu (rebind workload),
    /// and the TSC ticks it spent in those hypercalls.
    pub moves: u64,
    pub move_tsc: u64,
    /// Fuzz workload: calls and accesses made, the #GP faults (refused
    /// MSR accesses) the guest recovered from, and the hypercalls that
    /// succeeded (answered >= 0).
    pub fuzz_calls: u64,
    pub fuzz_faults: u64,
    pub fuzz_accepted: u64,
}
const _: () = assert!(size_of::<VcpuReport>() == 152);
const _: () = assert!(size_of::<VcpuReport>() as u64 <= crate::layout::REPORT_STRIDE);

/// Error codes the guest reports in `VcpuReport::first_error` and in its
/// exit status (`EXIT_ERROR | code`). A code from `hypercall_failed` carries
/// the operation in bits 16.. and the Xen errno in bits 0..16.
pub mod error {
    /// Exit status bit: the guest failed; the low bits are an error code.
    pub const EXIT_ERROR: u32 = 0x8000_0000;
    /// Exit status of an unexpected exception: `EXIT_EXCEPTION | vector`.
    pub const EXIT_EXCEPTION: u32 = 0x4000_0000;

    pub const NO_XEN: u32 = 0x1;
    pub const NO_HYPERCALL_PAGE: u32 = 0x2;
    pub const NO_UPCALL_VECTOR: u32 = 0x3;
    pub const CALLBACK_READBACK: u32 = 0x4;
    /// A send to a masked port raised an upcall.
    pub const MASKED_UPCALL: u32 = 0x7;
    /// Unmasking a pending port did not raise exactly one upcall.
    pub const UNMASK_UPCALL: u32 = 0x8;
    /// A hostile hypercall returned another errno than Xen's; bits 8..16
    /// carry the index of the first such check.
    pub const WRONG_ERRNO: u32 = 0x9;
    /// The workload needs more vCPUs than the VM has.
    pub const TOO_FEW_VCPUS: u32 = 0xa;
    /// A status query disagreed with what the guest set up.
    pub const WRONG_STATUS: u32 = 0xb;
    /// Timed out waiting for an event that must arrive.
    pub const TIMEOUT: u32 = 0xc;
    pub const UNKNOWN_WORKLOAD: u32 = 0xd;
    /// A fuzzed hypercall got an answer that is neither a success nor a
    /// Xen errno; bits 8..16 carry the hypercall number (mod 256).
    pub const FUZZ_ANSWER: u32 = 0xe;

    /// Operations named in `hypercall_failed` codes.
    pub mod op {
        pub const SHARED_INFO: u32 = 1;
        pub const UPCALL_VECTOR: u32 = 2;
        pub const CALLBACK_IRQ: u32 = 3;
        pub const BIND: u32 = 4;
        pub const SEND: u32 = 5;
        pub const UNMASK: u32 = 6;
        pub const BIND_VCPU: u32 = 7;
        pub const CLOSE: u32 = 8;
        pub const RESET: u32 = 9;
        pub const STATUS: u32 = 10;
    }

    /// The code of hypercall `op` failing with Xen errno `errno`.
    pub const fn hypercall_failed(op: u32, errno: i32) -> u32 {
        (op << 16) | (errno as u32 & 0xffff)
    }

    /// A short description of `code`, for the VMM's messages.
    pub const fn describe(code: u32) -> &'static str {
        if code >> 16 != 0 {
            return "a hypercall failed";
        }
        match code & 0xff {
            NO_XEN => "no Xen CPUID signature",
            NO_HYPERCALL_PAGE => "Xen offers no hypercall page",
            NO_UPCALL_VECTOR => "Xen lacks XEN_HVM_CPUID_UPCALL_VECTOR",
            CALLBACK_READBACK => "HVM_PARAM_CALLBACK_IRQ read back differently",
            MASKED_UPCALL => "a masked port raised an upcall",
            UNMASK_UPCALL => "unmasking a pending port did not raise exactly one upcall",
            WRONG_ERRNO => "a bad hypercall returned the wrong errno",
            TOO_FEW_VCPUS => "the workload needs more vCPUs",
            WRONG_STATUS => "EVTCHNOP_status disagreed with the guest's set-up",
            TIMEOUT => "timed out waiting for an event",
            UNKNOWN_WORKLOAD => "unknown workload number",
            FUZZ_ANSWER => "a fuzzed hypercall got an answer that is no Xen errno",
            _ => "unknown error",
        }
    }
}
