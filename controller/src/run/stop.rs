//! Stopping a run early: the user's SIGINT, SIGTERM or `q` sets the guest's
//! stop word (`layout::STOP_REQUEST`); its senders stop, it checks that
//! every event sent arrived and writes its report, as at a normal end.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use vm_memory::{Bytes, GuestAddress};
use xevtchn_common::layout::STOP_REQUEST;

use crate::vmm::memory::GuestRam;

/// What asked this process's runs to stop ("SIGINT", "SIGTERM", "q").
static REQUESTED_BY: Mutex<Option<&'static str>> = Mutex::new(None);

/// Asks the running guest (and any later one of this process) to stop.
pub fn request(by: &'static str) {
    REQUESTED_BY.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(by);
}

/// Who asked, if anyone did.
pub fn requested_by() -> Option<&'static str> {
    *REQUESTED_BY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Until `finished`, passes a stop request on to the guest in `ram`.
pub fn forward(ram: GuestRam, finished: Arc<AtomicBool>) -> std::io::Result<thread::JoinHandle<()>> {
    thread::Builder::new().name("run-stop".into()).spawn(move || {
        while !finished.load(Ordering::Acquire) {
            if requested_by().is_some() {
                if let Err(e) = ram.write_obj(1u64, GuestAddress(STOP_REQUEST)) {
                    log::warn!("could not ask the guest to stop: {e}");
                }
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
    })
}
