//! A host backend that answers every guest send on its channel: the
//! eventfd-backed userspace backend of the upstream selftest's scenario
//! "send to a port whose delivery is an eventfd". It is a Tokio task woken
//! by its eventfd.

use std::sync::Arc;

use anyhow::{Context, Result};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use crate::platform::{XenPlatform, eventfd_task};

pub struct EchoBackend {
    /// The backend port offered to the guest.
    pub port: u32,
    task: tokio::task::JoinHandle<()>,
}

impl EchoBackend {
    pub fn start(platform: Arc<XenPlatform>, tasks: &tokio::runtime::Handle) -> Result<Self> {
        let eventfd = Arc::new(EventFd::new(EFD_NONBLOCK).context("creating the backend's eventfd")?);
        let port = platform.offer_backend_port(eventfd.clone()).context("offering a backend port")?;
        // One answer per wake-up: sends signalled together coalesce, as the
        // guest's own events do.
        let task = eventfd_task::watch(tasks, eventfd, move || match platform.backend_send(port) {
            Ok(()) => {}
            Err(e) => log::error!("backend port {port}: {e}"),
        })?;
        Ok(Self { port, task })
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}
