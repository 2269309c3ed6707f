//! `xevtchn serve`: the doorbell program as host infrastructure. One
//! service per host loads and attaches the program once; each VMM
//! registers its VM over a Unix socket and gets its own VM's maps as file
//! descriptors (SCM_RIGHTS), so that the VMM itself needs no BPF privilege:
//! only /dev/kvm and the socket.
//!
//! A registration lives as long as its connection: the VMM keeps it open
//! while its VM runs; when it closes (the VMM ended, or was killed), the
//! service unregisters the VM at once. The VMM is identified by the
//! socket's peer credentials (its pid, as the service's PID namespace, the
//! host's, sees it), never by what it says.
//!
//! The program's link and the maps are pinned in the BPF filesystem: if
//! the service dies, the program goes on serving the registered VMs, and a
//! restarted service takes the pins over, keeps the VMs whose VMM still
//! runs (same pid, same start time) and unregisters the others.

pub mod client;
pub mod metrics;
pub mod protocol;
pub mod server;

/// Where the service listens unless told otherwise, and where VMMs look.
pub const DEFAULT_SOCKET: &str = "/run/xevtchn/xevtchn.sock";
/// Where the service pins its program and maps unless told otherwise.
pub const DEFAULT_PINS: &str = "/sys/fs/bpf/xevtchn";
/// Where the service serves its metrics unless told otherwise.
pub const DEFAULT_METRICS: &str = "127.0.0.1:9848";
/// The environment variable naming another socket for VMMs.
pub const SOCKET_ENV: &str = "XEVTCHN_SOCKET";
