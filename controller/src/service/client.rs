//! A VMM's side of the service: register this process's VM, get its maps,
//! and keep the connection (the registration) open for the VM's lifetime.

use std::{
    io::Write,
    os::{fd::AsRawFd, unix::net::UnixStream},
    path::{Path, PathBuf},
};

use super::{
    DEFAULT_SOCKET, SOCKET_ENV,
    protocol::{self, Progress, Reply, Request},
};
use crate::bpf::doorbell_host::VmMaps;

/// A registered VM: dropping it closes the connection, which unregisters it.
#[derive(Debug)]
pub struct Registration {
    connection: UnixStream,
    pub socket: PathBuf,
    pub host_tgid: u32,
}

impl Registration {
    /// Tells the service what only the VMM counts (best effort: the VM
    /// runs on without a service to tell).
    pub fn report(&self, progress: &Progress) {
        if let Ok(mut line) = serde_json::to_vec(progress) {
            line.push(b'\n');
            let _ = (&self.connection).write_all(&line);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no xevtchn service at {0}")]
    NotRunning(PathBuf, #[source] std::io::Error),
    #[error("talking to the xevtchn service at {0}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("the xevtchn service at {0} refused to register this VM: {1}")]
    Refused(PathBuf, String),
    #[error("the xevtchn service at {0} answered something this VMM does not understand: {1}")]
    Protocol(PathBuf, String),
}

/// The socket to use: `explicit`, else $XEVTCHN_SOCKET, else the default.
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(SOCKET_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
}

/// Registers this process's VM of `vcpus` vCPUs with the service at
/// `socket`: its maps, the activity map's size, and the registration.
pub fn register(socket: &Path, vcpus: u32) -> Result<(Registration, VmMaps, u32), ClientError> {
    let path = socket.to_path_buf();
    let mut stream = UnixStream::connect(socket).map_err(|e| ClientError::NotRunning(path.clone(), e))?;
    let request = serde_json::to_vec(&Request::Register { vcpus })
        .map_err(|e| ClientError::Protocol(path.clone(), e.to_string()))?;
    stream.write_all(&request).map_err(|e| ClientError::Io(path.clone(), e))?;
    let (message, fds) = protocol::receive(stream.as_raw_fd()).map_err(|e| ClientError::Io(path.clone(), e))?;
    let reply: Reply =
        serde_json::from_slice(&message).map_err(|e| ClientError::Protocol(path.clone(), e.to_string()))?;
    match reply {
        Reply::Refused(why) => Err(ClientError::Refused(path, why)),
        Reply::Status { .. } => Err(ClientError::Protocol(path, "a status instead of a registration".into())),
        Reply::Registered { host_tgid, cpus } => {
            let [state, stats, active]: [_; protocol::FDS] = fds.try_into().map_err(|fds: Vec<_>| {
                ClientError::Protocol(path.clone(), format!("{} fds instead of 3", fds.len()))
            })?;
            let maps = VmMaps { state, stats, active };
            Ok((Registration { connection: stream, socket: path, host_tgid }, maps, cpus))
        }
    }
}

/// The host tgids of the VMMs the service at `socket` serves.
pub fn status(socket: &Path) -> Result<Vec<u32>, ClientError> {
    let path = socket.to_path_buf();
    let mut stream = UnixStream::connect(socket).map_err(|e| ClientError::NotRunning(path.clone(), e))?;
    let request =
        serde_json::to_vec(&Request::Status).map_err(|e| ClientError::Protocol(path.clone(), e.to_string()))?;
    stream.write_all(&request).map_err(|e| ClientError::Io(path.clone(), e))?;
    let (message, _) = protocol::receive(stream.as_raw_fd()).map_err(|e| ClientError::Io(path.clone(), e))?;
    match serde_json::from_slice(&message) {
        Ok(Reply::Status { vms }) => Ok(vms),
        Ok(other) => Err(ClientError::Protocol(path, format!("{other:?}"))),
        Err(e) => Err(ClientError::Protocol(path, e.to_string())),
    }
}
