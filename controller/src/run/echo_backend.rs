//! A host backend that answers every guest send on its channel: the
//! eventfd-backed userspace backend of the upstream selftest's scenario
//! "send to a port whose delivery is an eventfd".

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
};

use anyhow::{Context, Result};
use vmm_sys_util::eventfd::EventFd;

use crate::platform::XenPlatform;

pub struct EchoBackend {
    /// The backend port offered to the guest.
    pub port: u32,
    eventfd: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    pub answered: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EchoBackend {
    pub fn start(platform: Arc<XenPlatform>) -> Result<Self> {
        let eventfd = Arc::new(EventFd::new(0).context("creating the backend's eventfd")?);
        let port = platform.offer_backend_port(eventfd.clone()).context("offering a backend port")?;
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let thread = {
            let (eventfd, stop, answered) = (eventfd.clone(), stop.clone(), answered.clone());
            thread::Builder::new().name(format!("backend{port}")).spawn(move || {
                // Each read returns how many sends were signalled since the
                // last one; one answer per wake-up is the channel's semantics
                // (events coalesce like the guest's own).
                while eventfd.read().is_ok() && !stop.load(Ordering::Acquire) {
                    match platform.backend_send(port) {
                        Ok(()) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => log::error!("backend port {port}: {e}"),
                    }
                }
            })?
        };
        Ok(Self { port, eventfd, stop, answered, thread: Some(thread) })
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.eventfd.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
