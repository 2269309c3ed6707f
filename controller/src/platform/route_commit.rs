//! Committing port-route changes off the moving vCPU's path.
//!
//! EVTCHNOP_bind_vcpu of a port with a route of its own changes that route.
//! KVM_SET_GSI_ROUTING copies the whole table and waits for the VM's
//! in-flight injections (tens of microseconds to milliseconds, growing with
//! the table), so the hypercall does not wait for it: it stores the port's
//! new entry, waits for the program's grace period and announces the port
//! on its new vCPU, then hands the route to this thread. Until the thread
//! has committed, the port's injections still reach the old vCPU, so once
//! it has, it raises every vCPU a move involved if its upcall is pending:
//! a send that marked the new vCPU meanwhile is announced then (late by
//! the commit, never lost). Moves that come faster than commits share one.

use std::{
    collections::BTreeSet,
    sync::{Arc, Condvar, Mutex, MutexGuard, atomic::Ordering::Relaxed},
    thread,
};

use kvm_ioctls::VmFd;
use vmm_sys_util::eventfd::EventFd;
use xevtchn_common::two_level::upcall_pending;

use super::{gsi_routes::Routes, shared_info::SharedInfoPage, upcalls::InjectStats};

pub struct RouteCommitter {
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

struct Shared {
    pending: Mutex<Pending>,
    changed: Condvar,
}

#[derive(Default)]
struct Pending {
    /// vCPUs to raise (if their upcall is pending) after the next commit.
    raise: BTreeSet<u32>,
    /// Requests made, and requests whose commit is done.
    requested: u64,
    committed: u64,
    stop: bool,
}

/// What the committing thread works with.
pub struct Committing {
    pub vm: Arc<VmFd>,
    pub routes: Arc<Routes>,
    /// Each vCPU's upcall eventfd E_v: writing it raises the vCPU's upcall.
    pub upcall_eventfds: Vec<Arc<EventFd>>,
    pub shared_info: Arc<SharedInfoPage>,
    pub stats: Arc<InjectStats>,
}

impl RouteCommitter {
    pub fn start(work: Committing) -> std::io::Result<Self> {
        let shared = Arc::new(Shared { pending: Mutex::default(), changed: Condvar::new() });
        let worker = shared.clone();
        let thread = thread::Builder::new().name("route-commit".into()).spawn(move || worker.run(&work))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// The routing table changed; after committing it, raise each of
    /// `vcpus` whose upcall is pending.
    pub fn request(&self, vcpus: impl IntoIterator<Item = u32>) {
        let mut p = self.shared.lock();
        p.raise.extend(vcpus);
        p.requested += 1;
        self.shared.changed.notify_all();
    }

    /// Returns once every request made so far has been committed.
    pub fn flush(&self) {
        let mut p = self.shared.lock();
        let target = p.requested;
        while p.committed < target && !p.stop {
            p = self.shared.changed.wait(p).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, work: &Committing) {
        batch_scheduling();
        loop {
            let (raise, upto) = {
                let mut p = self.lock();
                while p.committed == p.requested && !p.stop {
                    p = self.changed.wait(p).unwrap_or_else(|e| e.into_inner());
                }
                if p.committed == p.requested {
                    return;
                }
                (std::mem::take(&mut p.raise), p.requested)
            };
            let committed = work.routes.commit(&work.vm);
            if let Err(e) = committed {
                log::error!("committing the VM's interrupt routes: {e}");
            }
            for vcpu in raise {
                if upcall_pending(work.shared_info.words(), vcpu)
                    && let Some(eventfd) = work.upcall_eventfds.get(vcpu as usize)
                {
                    let _ = eventfd.write(1);
                    work.stats.eventfd_writes.fetch_add(1, Relaxed);
                }
            }
            let mut p = self.lock();
            p.committed = upto;
            self.changed.notify_all();
        }
    }
}

impl Drop for RouteCommitter {
    fn drop(&mut self) {
        {
            let mut p = self.shared.lock();
            p.stop = true;
            self.shared.changed.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// SCHED_BATCH for this thread: when a move wakes it, it does not preempt
/// the vCPU thread that moved the port (the scheduler runs it at its next
/// decision), so the hypercall returns without waiting for the commit.
fn batch_scheduling() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is valid for the call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        log::debug!("route-commit thread: SCHED_BATCH refused: {}", std::io::Error::last_os_error());
    }
}
