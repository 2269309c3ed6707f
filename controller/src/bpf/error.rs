//! BPF errors, each naming the program, the hook and what to do.

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error(
        "this controller was built without its BPF object (bpf-linker was missing): rebuild with `cargo xtask build`"
    )]
    NotBuilt,
    #[error("loading the BPF object: permission denied: run as root, or grant CAP_BPF and CAP_PERFMON")]
    Permission(#[source] Box<aya::EbpfError>),
    #[error("loading the BPF object")]
    Object(#[source] Box<aya::EbpfError>),
    #[error("the BPF object has no program {0} (object and controller out of step: rebuild)")]
    NoProgram(&'static str),
    #[error("the BPF object has no map {0} (object and controller out of step: rebuild)")]
    NoMap(&'static str),
    #[error("program {program}: the kernel refused it")]
    Load {
        program: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("program {program}: attaching to tracepoint {category}:{name} failed{hint}")]
    Attach {
        program: &'static str,
        category: &'static str,
        name: &'static str,
        hint: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("finding this process's PID in the initial PID namespace: {0}")]
    WhoAmI(String),
    #[error("mapping BPF map {map} into the controller")]
    Mmap {
        map: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("pinning at {0} (is the BPF filesystem mounted at /sys/fs/bpf?): {1}")]
    Pin(std::path::PathBuf, String),
    #[error("starting the thread that finds the traced VMs' doorbell programs")]
    Discovery(#[source] std::io::Error),
    #[error("map {map}")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

impl BpfError {
    pub fn map(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> Self {
        move |source| Self::Map { map, source: Box::new(source) }
    }

    pub fn load(program: &'static str) -> impl FnOnce(aya::programs::ProgramError) -> Self {
        move |source| Self::Load { program, source: Box::new(source) }
    }
}
