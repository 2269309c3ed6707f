//! Host-side userspace backends (QEMU's device models, in Xen terms): a
//! backend port in the backend domain, connected to a guest port by the
//! guest's EVTCHNOP_bind_interdomain. A guest send on that port signals the
//! backend's eventfd; the backend answers through `XenPlatform::backend_send`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use vmm_sys_util::eventfd::EventFd;

#[derive(Default)]
pub struct Backends {
    eventfds: Mutex<HashMap<u32, Arc<EventFd>>>,
}

impl Backends {
    pub fn register(&self, backend_port: u32, eventfd: Arc<EventFd>) {
        self.eventfds.lock().unwrap_or_else(|p| p.into_inner()).insert(backend_port, eventfd);
    }

    /// The guest sent on the port connected to `backend_port`.
    pub fn notify(&self, backend_port: u32) {
        if let Some(eventfd) = self.eventfds.lock().unwrap_or_else(|p| p.into_inner()).get(&backend_port) {
            let _ = eventfd.write(1);
        }
    }
}
