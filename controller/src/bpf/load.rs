//! The embedded BPF object and how its programs are loaded and attached.

use std::path::Path;

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    programs::{
        Program, ProgramError, RawTracePoint, TracePoint, raw_trace_point::RawTracePointLinkId,
        trace_point::TracePointLinkId,
    },
};

use super::BpfError;

/// The BPF objects aya-build builds from `ebpf/programs`, one per job, so
/// that each loads only its own maps (empty when the controller was built
/// without bpf-linker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// The in-kernel send path and whoami.
    Doorbell,
    /// `xevtchn trace`'s hooks and whoami.
    Trace,
    /// The smoke counter and whoami.
    Smoke,
}

impl Object {
    fn bytes(self) -> &'static [u8] {
        match self {
            Self::Doorbell => aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xevtchn-doorbell")),
            Self::Trace => aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xevtchn-trace")),
            Self::Smoke => aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/xevtchn-smoke")),
        }
    }
}

const TRACEFS_EVENTS: &str = "/sys/kernel/tracing/events";

/// Loads an embedded object into the kernel (maps created, no program yet).
pub fn load_object(object: Object) -> Result<Ebpf, BpfError> {
    load_sized(object, &[])
}

/// Loads `object` with the maps named in `sizes` created with that many
/// entries instead of the object's own count.
pub fn load_sized(object: Object, sizes: &[(&'static str, u32)]) -> Result<Ebpf, BpfError> {
    let bytes = object.bytes();
    if bytes.is_empty() {
        return Err(BpfError::NotBuilt);
    }
    let mut loader = EbpfLoader::new();
    for &(map, entries) in sizes {
        loader.map_max_entries(map, entries);
    }
    loader.load(bytes).map_err(|e| match &e {
        EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. })
            if io_error.raw_os_error() == Some(libc::EPERM) =>
        {
            BpfError::Permission(Box::new(e))
        }
        _ => BpfError::Object(Box::new(e)),
    })
}

/// One attached program, which `detach` undoes.
#[derive(Debug)]
pub enum Attachment {
    Classic { program: &'static str, link: TracePointLinkId },
    Raw { program: &'static str, link: RawTracePointLinkId },
}

/// Loads `program` (once) and attaches it to the classic tracepoint `category:name`.
pub fn attach_tracepoint(
    ebpf: &mut Ebpf,
    program: &'static str,
    category: &'static str,
    name: &'static str,
) -> Result<Attachment, BpfError> {
    let tp: &mut TracePoint = program_mut(ebpf, program)?;
    if tp.fd().is_err() {
        tp.load().map_err(BpfError::load(program))?;
    }
    let link = tp.attach(category, name).map_err(|source| BpfError::Attach {
        program,
        category,
        name,
        hint: tracefs_hint(&Path::new(TRACEFS_EVENTS).join(category).join(name)),
        source: Box::new(source),
    })?;
    Ok(Attachment::Classic { program, link })
}

/// Why a classic tracepoint's directory in tracefs (`event`) could not be
/// used: tracefs missing, closed to this user, or no such tracepoint.
fn tracefs_hint(event: &Path) -> &'static str {
    let kind = |path: &Path| std::fs::metadata(path).err().map(|e| e.kind());
    match (kind(Path::new(TRACEFS_EVENTS)), kind(event)) {
        (Some(std::io::ErrorKind::PermissionDenied), _) | (_, Some(std::io::ErrorKind::PermissionDenied)) => {
            ": tracefs is mounted but root-only here, so this user cannot read it: run as root (aya, which \
             looked for it, reports)"
        }
        (Some(_), _) => ": tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)",
        (None, Some(_)) => ": this kernel has no such tracepoint",
        (None, None) => "",
    }
}

/// Loads `program` (once) and attaches it to the raw tracepoint `name`
/// (its arguments are the tracepoint's TP_PROTO, and it does not go
/// through perf).
pub fn attach_raw_tracepoint(
    ebpf: &mut Ebpf,
    program: &'static str,
    name: &'static str,
) -> Result<Attachment, BpfError> {
    let tp: &mut RawTracePoint = program_mut(ebpf, program)?;
    if tp.fd().is_err() {
        tp.load().map_err(BpfError::load(program))?;
    }
    let link = tp.attach(name).map_err(|source| BpfError::Attach {
        program,
        category: "raw",
        name,
        hint: "",
        source: Box::new(source),
    })?;
    Ok(Attachment::Raw { program, link })
}

/// Attaches `program` to the raw tracepoint `name` and pins the link at
/// `pin`: the program stays attached after this process ends, until the
/// pin is removed.
pub fn attach_raw_tracepoint_pinned(
    ebpf: &mut Ebpf,
    program: &'static str,
    name: &'static str,
    pin: &Path,
) -> Result<(), BpfError> {
    let Attachment::Raw { link, .. } = attach_raw_tracepoint(ebpf, program, name)? else {
        return Err(BpfError::NoProgram(program));
    };
    let tp: &mut RawTracePoint = program_mut(ebpf, program)?;
    let link = tp.take_link(link).map_err(BpfError::load(program))?;
    aya::programs::links::FdLink::from(link).pin(pin).map_err(|e| BpfError::Pin(pin.to_path_buf(), e.to_string()))?;
    Ok(())
}

/// Detaches what `attachment` attached (the program stays loaded).
pub fn detach(ebpf: &mut Ebpf, attachment: Attachment) -> Result<(), BpfError> {
    match attachment {
        Attachment::Classic { program, link } => {
            program_mut::<TracePoint>(ebpf, program)?.detach(link).map_err(BpfError::load(program))
        }
        Attachment::Raw { program, link } => {
            program_mut::<RawTracePoint>(ebpf, program)?.detach(link).map_err(BpfError::load(program))
        }
    }
}

/// The object's program `name`, as its kind `P`.
fn program_mut<'a, P>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut P, BpfError>
where
    &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    ebpf.program_mut(name).ok_or(BpfError::NoProgram(name))?.try_into().map_err(BpfError::load(name))
}
