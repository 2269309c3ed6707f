//! Errors of the VMM, each naming what failed and what to do.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error("/dev/kvm does not exist: this host has no KVM (load kvm_intel/kvm_amd, or use a host with KVM)")]
    NoKvm,
    #[error("/dev/kvm: permission denied: run as root, or give this user read-write access to /dev/kvm{0}")]
    KvmPermission(String),
    #[error("opening /dev/kvm")]
    OpenKvm(#[source] kvm_ioctls::Error),
    #[error("KVM ioctl {what} failed")]
    Kvm {
        what: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error("guest memory")]
    Memory(#[source] vm_memory::mmap::FromRangesError),
    #[error("guest memory access at {0:#x} failed")]
    GuestAccess(u64),
    #[error("the guest image is not a loadable ELF64 file: {0}")]
    BadImage(String),
    #[error(
        "this controller was built without the built-in guest (XEVTCHN_SKIP_GUEST=1); rebuild with `cargo xtask build`"
    )]
    NoGuestImage,
    #[error("spawning a vCPU thread")]
    Thread(#[source] io::Error),
    #[error("vCPU {0} thread panicked")]
    VcpuPanicked(u32),
    #[error("the guest stopped: {0}")]
    GuestFault(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the guest did not finish within {0:?}")]
    Timeout(std::time::Duration),
    #[error("the VM was stopped")]
    Stopped,
}

impl VmmError {
    /// Wraps a failed KVM ioctl, naming it.
    pub fn kvm(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> Self {
        move |source| Self::Kvm { what, source }
    }

    /// Maps the error of opening /dev/kvm to a precise message.
    pub fn open(e: kvm_ioctls::Error) -> Self {
        match e.errno() {
            libc::ENOENT => Self::NoKvm,
            libc::EACCES | libc::EPERM => Self::KvmPermission(kvm_group_hint()),
            _ => Self::OpenKvm(e),
        }
    }
}

/// " (join its group NAME)" when /dev/kvm belongs to a group other than
/// root's, else nothing: not every host has a kvm group.
fn kvm_group_hint() -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata("/dev/kvm") else { return String::new() };
    if meta.gid() == 0 || meta.mode() & 0o060 != 0o060 {
        return String::new();
    }
    // SAFETY: getgrgid returns a pointer to static storage or null; the
    // name is copied out before any other call.
    let name = unsafe {
        let entry = libc::getgrgid(meta.gid());
        if entry.is_null() {
            return String::new();
        }
        std::ffi::CStr::from_ptr((*entry).gr_name).to_string_lossy().into_owned()
    };
    format!(" (join its group {name})")
}
