//! Errors of the VMM, each naming what failed and what to do.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error("/dev/kvm does not exist: this host has no KVM (load kvm_intel/kvm_amd, or use a host with KVM)")]
    NoKvm,
    #[error("/dev/kvm: permission denied: run as root or join the kvm group")]
    KvmPermission,
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
    #[error("the guest did not finish within {0:?}")]
    Timeout(std::time::Duration),
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
            libc::EACCES | libc::EPERM => Self::KvmPermission,
            _ => Self::OpenKvm(e),
        }
    }
}
