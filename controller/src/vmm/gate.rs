//! Stopping every vCPU for a moment, for changes KVM cannot make while a
//! vCPU might touch the memory concerned (splitting the RAM memslot).
//!
//! A vCPU thread holds the gate's read side only while inside KVM_RUN. To
//! pause, the caller (a vCPU thread handling an exit, so not inside
//! KVM_RUN itself) raises `pausing`, kicks every thread out of KVM_RUN and
//! takes the write side; threads wait at the gate until it is released.

use std::{
    sync::{
        Mutex, RwLock, RwLockReadGuard,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use vmm_sys_util::signal::Killable;

use super::vcpu::kick_signal;

#[derive(Default)]
pub struct VcpuGate {
    running: RwLock<()>,
    pausing: AtomicBool,
    /// pthreads of the vCPU threads, to kick them out of KVM_RUN.
    threads: Mutex<Vec<libc::pthread_t>>,
}

/// A pthread handle that `Killable` can signal.
struct Pthread(libc::pthread_t);

// SAFETY: the handles are those of vCPU threads still in their run loop
// (each deregisters before it returns), so they are live threads.
unsafe impl Killable for Pthread {
    fn pthread_handle(&self) -> libc::pthread_t {
        self.0
    }
}

impl VcpuGate {
    /// Called by each vCPU thread once, before its first KVM_RUN.
    pub fn register_current_thread(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.threads.lock().unwrap_or_else(|p| p.into_inner()).push(me);
    }

    /// Called by each vCPU thread when it leaves its run loop, so that
    /// `paused` never signals a thread that may have been joined.
    pub fn deregister_current_thread(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        // SAFETY: pthread_equal only compares two handles.
        self.threads.lock().unwrap_or_else(|p| p.into_inner()).retain(|&t| unsafe { libc::pthread_equal(t, me) } == 0);
    }

    /// Held while the calling vCPU is inside KVM_RUN.
    pub fn enter(&self) -> RwLockReadGuard<'_, ()> {
        while self.pausing.load(Ordering::Acquire) {
            thread::sleep(Duration::from_micros(50));
        }
        self.running.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` while no vCPU is inside KVM_RUN.
    pub fn paused<T>(&self, f: impl FnOnce() -> T) -> T {
        self.pausing.store(true, Ordering::Release);
        let guard = loop {
            if let Ok(guard) = self.running.try_write() {
                break guard;
            }
            for &t in self.threads.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = Pthread(t).kill(kick_signal());
            }
            thread::sleep(Duration::from_micros(50));
        };
        let result = f();
        drop(guard);
        self.pausing.store(false, Ordering::Release);
        result
    }
}
