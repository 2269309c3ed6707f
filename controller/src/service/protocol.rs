//! The service's protocol: one JSON request from the VMM, one JSON reply
//! from the service carrying the VM's map file descriptors (SCM_RIGHTS),
//! then nothing but the open connection, whose end is the VM's end.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::{
    cmsg_space,
    sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg},
};
use serde::{Deserialize, Serialize};

/// What a client asks: a VMM registers its VM; anyone may ask which VMs
/// are registered.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Request {
    /// Serve this process's VM, of `vcpus` vCPUs.
    Register { vcpus: u32 },
    /// Which VMs are registered.
    Status,
}

/// What the service answers; on success, three fds come with it: the VM's
/// state (read-write), its counters and the activity counts (read-only).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Reply {
    Registered {
        /// The VMM's pid as the program sees it (the host's namespace).
        host_tgid: u32,
        /// Entries of the activity map (the host's possible CPUs).
        cpus: u32,
    },
    Refused(String),
    /// The host tgids of the registered VMMs.
    Status {
        vms: Vec<u32>,
    },
}

/// What a registered VMM tells the service about its VM (one JSON object
/// a line, on the registration's connection): the sends the program cannot
/// see, and the canary's verdict. For the service's metrics.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Progress {
    /// Sends done in the VMM (doorbell exits and the general path).
    pub userspace_sends: u64,
    /// Upcalls those sends raised.
    pub userspace_upcalls: u64,
    /// false: the canary failed, the VM is delivered in userspace.
    pub canary_passed: bool,
}

/// Longest message either side sends.
pub const MAX_MESSAGE: usize = 4096;
/// File descriptors a registration hands over.
pub const FDS: usize = 3;

/// Sends `message` with `fds` attached on the stream socket `socket`.
pub fn send(socket: RawFd, message: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let iov = [std::io::IoSlice::new(message)];
    let control = if raw.is_empty() { Vec::new() } else { vec![ControlMessage::ScmRights(&raw)] };
    let sent = sendmsg::<()>(socket, &iov, &control, MsgFlags::MSG_NOSIGNAL, None)?;
    if sent != message.len() {
        return Err(std::io::Error::other(format!("sent {sent} of {} bytes", message.len())));
    }
    Ok(())
}

/// Receives one message and the fds attached to it.
pub fn receive(socket: RawFd) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut control = cmsg_space!([RawFd; FDS]);
    let (len, fds) = {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(socket, &mut iov, Some(&mut control), MsgFlags::MSG_CMSG_CLOEXEC)?;
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                // SAFETY: the kernel just installed these fds in this
                // process for this message; nothing else owns them.
                fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        (msg.bytes, fds)
    };
    buf.truncate(len);
    Ok((buf, fds))
}
