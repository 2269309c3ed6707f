//! Finding the traced VMs' doorbell programs while they exist: a VM's
//! fast-path counters go with its program, and a VM of a test lives a tenth
//! of a second. The tracing programs announce each VM they see for the
//! first time (`TRACE_NEW_VMS`); a thread then looks for its program at
//! once, and at least every second anyway. It also notes which VMs an
//! `xevtchn` process runs, while their process can still be asked.

use std::{
    collections::{BTreeMap, BTreeSet},
    os::fd::{AsFd, AsRawFd},
    sync::{Arc, Mutex, MutexGuard},
    thread,
};

use aya::maps::{MapData, RingBuf};
use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::FastPaths;

/// The longest wait between two looks.
const RESCAN_MS: i32 = 1000;

pub(super) struct Discovery {
    fast_paths: Arc<Mutex<FastPaths>>,
    /// By tgid: whether an `xevtchn` process runs the VM.
    kinds: Arc<Mutex<BTreeMap<u32, bool>>>,
    stop: Arc<EventFd>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Discovery {
    /// Finds the VMs running now, then starts the thread that finds the
    /// ones to come.
    pub(super) fn start(mut fast_paths: FastPaths, mut new_vms: RingBuf<MapData>) -> std::io::Result<Self> {
        fast_paths.discover();
        let fast_paths = Arc::new(Mutex::new(fast_paths));
        let stop = Arc::new(EventFd::new(EFD_NONBLOCK)?);
        let kinds = Arc::new(Mutex::new(BTreeMap::new()));
        let (paths, stopped, new_kinds) = (fast_paths.clone(), stop.clone(), kinds.clone());
        let thread = thread::Builder::new().name("trace-discovery".into()).spawn(move || {
            loop {
                let mut fds = [
                    libc::pollfd { fd: new_vms.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 },
                    libc::pollfd { fd: stopped.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                ];
                // SAFETY: `fds` is a valid array of two pollfds for the call.
                let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, RESCAN_MS) };
                if ready < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                    log::warn!("tracing: waiting for new VMs failed: {}", std::io::Error::last_os_error());
                    return;
                }
                if fds[1].revents != 0 {
                    return;
                }
                while let Some(item) = new_vms.next() {
                    if let Ok(tgid) = <[u8; 4]>::try_from(&item[..]).map(u32::from_ne_bytes) {
                        classify(&mut lock(&new_kinds), tgid);
                    }
                }
                lock(&paths).discover();
            }
        })?;
        Ok(Self { fast_paths, kinds, stop, thread: Some(thread) })
    }

    /// Of `tgids`, those an `xevtchn` process runs (asked now if not yet).
    pub(super) fn xevtchn_vms(&self, tgids: impl Iterator<Item = u32>) -> BTreeSet<u32> {
        let mut kinds = lock(&self.kinds);
        tgids.filter(|&tgid| classify(&mut kinds, tgid)).collect()
    }

    pub(super) fn fast_paths(&self) -> MutexGuard<'_, FastPaths> {
        lock(&self.fast_paths)
    }
}

fn lock<T>(shared: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves counts that are still readable.
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether an `xevtchn` process (by its name) runs VM `tgid`, asked once
/// while the process exists (a process gone unasked: no).
fn classify(kinds: &mut BTreeMap<u32, bool>, tgid: u32) -> bool {
    if let Some(&known) = kinds.get(&tgid) {
        return known;
    }
    let Ok(comm) = std::fs::read_to_string(format!("/proc/{tgid}/comm")) else { return false };
    let xevtchn = comm.trim_end() == "xevtchn";
    kinds.insert(tgid, xevtchn);
    xevtchn
}

impl Drop for Discovery {
    fn drop(&mut self) {
        let _ = self.stop.write(1);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
