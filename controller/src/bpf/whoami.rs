//! This process's tgid in the initial PID namespace, which BPF programs see
//! as `bpf_get_current_pid_tgid() >> 32`. Inside a PID namespace (a
//! container, `unshare --pid`) getpid() answers another number, and nothing
//! in /proc inside the namespace tells the outer one; so the kernel is
//! asked: the `whoami` program on `task_rename` records the host tgid of
//! the thread that renames itself, if bpf_get_ns_current_pid_tgid confirms
//! it is this thread of this process in this namespace.

use std::{ffi::CStr, os::unix::fs::MetadataExt};

use aya::{
    Ebpf,
    maps::{Array, MapData},
};
use xevtchn_common::doorbell::WhoAmI;

use super::{BpfError, load};

const PROGRAM: &str = "whoami";
const MAP: &str = "WHOAMI";
const PID_NAMESPACE: &str = "/proc/self/ns/pid";

/// Asks the kernel for this process's host tgid, with `ebpf`'s `whoami`.
pub fn host_tgid(ebpf: &mut Ebpf) -> Result<u32, BpfError> {
    let namespace = std::fs::metadata(PID_NAMESPACE).map_err(|e| {
        BpfError::WhoAmI(format!("{PID_NAMESPACE} cannot be read ({e}): mount /proc, which names the PID namespace"))
    })?;
    let mut query: Array<&mut MapData, WhoAmI> =
        Array::try_from(ebpf.map_mut(MAP).ok_or(BpfError::NoMap(MAP))?).map_err(BpfError::map(MAP))?;
    // SAFETY: getpid and gettid have no preconditions.
    let (ns_tgid, ns_tid) = unsafe { (libc::getpid() as u32, libc::gettid() as u32) };
    let asked = WhoAmI { pidns_dev: namespace.dev(), pidns_ino: namespace.ino(), ns_tgid, ns_tid, ..WhoAmI::default() };
    query.set(0, &asked, 0).map_err(BpfError::map(MAP))?;
    let attachment = load::attach_raw_tracepoint(ebpf, PROGRAM, "task_rename")?;
    let renamed = rename_to_own_name();
    load::detach(ebpf, attachment)?;
    renamed.map_err(|e| BpfError::WhoAmI(format!("renaming the thread to ask: {e}")))?;
    let query: Array<&MapData, WhoAmI> =
        Array::try_from(ebpf.map(MAP).ok_or(BpfError::NoMap(MAP))?).map_err(BpfError::map(MAP))?;
    match query.get(&0, 0).map_err(BpfError::map(MAP))?.host_tgid {
        0 => Err(BpfError::WhoAmI(
            "the kernel did not report this process's host PID (the task_rename tracepoint did not fire)".into(),
        )),
        tgid => Ok(tgid),
    }
}

/// prctl(PR_SET_NAME) with the thread's own name: fires task_rename.
fn rename_to_own_name() -> std::io::Result<()> {
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes, NUL included, to `name`.
    if unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let name = CStr::from_bytes_until_nul(&name).map_err(std::io::Error::other)?;
    // SAFETY: `name` is NUL-terminated and at most 16 bytes.
    if unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
