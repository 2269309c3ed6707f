//! `task:task_rename`: tells a process its own tgid in the initial PID
//! namespace, which is what the other programs compare with
//! bpf_get_current_pid_tgid. A process inside a PID namespace cannot see
//! that number: it asks by renaming one of its threads while this program
//! is attached, and the kernel (bpf_get_ns_current_pid_tgid) vouches that
//! the renaming thread is the one asking, in the namespace it named.

use aya_ebpf::{
    EbpfContext,
    bindings::bpf_pidns_info,
    helpers::generated::bpf_get_ns_current_pid_tgid,
    macros::{map, raw_tracepoint},
    maps::Array,
    programs::RawTracePointContext,
};
use xevtchn_common::doorbell::WhoAmI;

#[map]
static WHOAMI: Array<WhoAmI> = Array::with_max_entries(1, 0);

/// Raw: TP_PROTO(struct task_struct *task, const char *comm); it fires in
/// the renaming thread.
#[raw_tracepoint(tracepoint = "task_rename")]
pub fn whoami(ctx: RawTracePointContext) -> i32 {
    let Some(query) = WHOAMI.get_ptr_mut(0) else { return 0 };
    // SAFETY: the map's value, valid for the program's run.
    let query = unsafe { &mut *query };
    let mut ns = bpf_pidns_info { pid: 0, tgid: 0 };
    // SAFETY: `ns` is a local of the size passed.
    let found = unsafe {
        bpf_get_ns_current_pid_tgid(
            query.pidns_dev,
            query.pidns_ino,
            &mut ns,
            core::mem::size_of::<bpf_pidns_info>() as u32,
        )
    };
    if found == 0 && ns.tgid == query.ns_tgid && ns.pid == query.ns_tid {
        query.host_tgid = ctx.tgid();
    }
    0
}
