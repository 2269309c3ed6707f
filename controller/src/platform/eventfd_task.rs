//! Watching an eventfd from the controller's Tokio runtime: the resample
//! eventfd of a level-triggered callback line, a host backend's eventfd.

use std::{
    io,
    os::fd::{AsRawFd, RawFd},
    sync::Arc,
};

use tokio::{io::unix::AsyncFd, runtime::Handle, task::JoinHandle};
use vmm_sys_util::eventfd::EventFd;

/// An eventfd shared with whoever signals it.
struct Shared(Arc<EventFd>);

impl AsRawFd for Shared {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Runs `on_signal` on `runtime` each time `eventfd` (non-blocking) is
/// signalled, until the returned task is aborted.
pub fn watch(
    runtime: &Handle,
    eventfd: Arc<EventFd>,
    mut on_signal: impl FnMut() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let _entered = runtime.enter();
    // SAFETY: `Shared` keeps the eventfd alive (an Arc) for as long as the
    // AsyncFd exists, and nothing closes or replaces the descriptor meanwhile.
    let fd = unsafe { AsyncFd::register(Shared(eventfd)) }.map_err(|e| io::Error::other(e.to_string()))?;
    Ok(runtime.spawn(async move {
        loop {
            let Ok(mut ready) = fd.readable().await else { return };
            match ready.try_io(|fd| fd.get_ref().0.read()) {
                Ok(Ok(_count)) => on_signal(),
                Ok(Err(e)) => {
                    log::error!("reading an eventfd: {e}");
                    return;
                }
                // Spurious readiness: wait again.
                Err(_would_block) => {}
            }
        }
    }))
}

/// A runtime for the controller's background tasks, one worker thread (the
/// vCPU threads do the heavy lifting; these tasks only wake on eventfds).
pub fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("xevtchn-tasks").enable_all().build()
}
