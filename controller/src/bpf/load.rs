//! The embedded BPF object and how its programs are loaded and attached.

use std::path::Path;

use aya::{
    Ebpf, EbpfError,
    programs::{RawTracePoint, TracePoint},
};

use super::BpfError;

/// The BPF object built by aya-build from `ebpf/programs` (empty when the
/// controller was built without bpf-linker).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xevtchn"));

const TRACEFS_EVENTS: &str = "/sys/kernel/tracing/events";

/// Loads the embedded object into the kernel (maps created, no program yet).
pub fn load_object() -> Result<Ebpf, BpfError> {
    if OBJECT.is_empty() {
        return Err(BpfError::NotBuilt);
    }
    Ebpf::load(OBJECT).map_err(|e| match &e {
        EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. })
            if io_error.raw_os_error() == Some(libc::EPERM) =>
        {
            BpfError::Permission(Box::new(e))
        }
        _ => BpfError::Object(Box::new(e)),
    })
}

/// Loads `program` and attaches it to the classic tracepoint `category:name`.
pub fn attach_tracepoint(
    ebpf: &mut Ebpf,
    program: &'static str,
    category: &'static str,
    name: &'static str,
) -> Result<(), BpfError> {
    let tp: &mut TracePoint =
        ebpf.program_mut(program).ok_or(BpfError::NoProgram(program))?.try_into().map_err(BpfError::load(program))?;
    tp.load().map_err(BpfError::load(program))?;
    tp.attach(category, name).map_err(|source| {
        let hint = if !Path::new(TRACEFS_EVENTS).is_dir() {
            ": tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)"
        } else if !Path::new(TRACEFS_EVENTS).join(category).join(name).is_dir() {
            ": this kernel has no such tracepoint"
        } else {
            ""
        };
        BpfError::Attach { program, category, name, hint, source: Box::new(source) }
    })?;
    Ok(())
}

/// Loads `program` and attaches it to the raw tracepoint `name` (its
/// arguments are the tracepoint's TP_PROTO, and it does not go through perf).
pub fn attach_raw_tracepoint(ebpf: &mut Ebpf, program: &'static str, name: &'static str) -> Result<(), BpfError> {
    let tp: &mut RawTracePoint =
        ebpf.program_mut(program).ok_or(BpfError::NoProgram(program))?.try_into().map_err(BpfError::load(program))?;
    tp.load().map_err(BpfError::load(program))?;
    tp.attach(name).map_err(|source| BpfError::Attach {
        program,
        category: "raw",
        name,
        hint: "",
        source: Box::new(source),
    })?;
    Ok(())
}
