//! The live view of `xevtchn run`: the tracing programs on this process's
//! own VM, drawn from a thread while the VM runs.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use crate::trace::{
    bpf::{TraceOptions, Tracer},
    sampler::Sampler,
    view::LiveView,
};

pub struct Running {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl Running {
    /// Closes the view (restoring the terminal) and waits for it.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

/// Starts the view; without BPF (or a terminal) it quietly does nothing.
pub fn spawn() -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = thread::spawn(move || {
        let Ok(mut tracer) = Tracer::attach_self(TraceOptions::new(0)) else { return };
        let Ok(mut view) = LiveView::start("xevtchn run: this VM (q or Ctrl-C stops the run; its report follows)")
        else {
            return;
        };
        let Ok(mut sampler) = Sampler::start(&mut tracer) else { return };
        while !flag.load(Ordering::Acquire) {
            // q (or Ctrl-C, a key in raw mode) stops the run, as SIGINT would.
            match view.quit_requested(Duration::from_millis(500)) {
                Ok(true) => return crate::run::stop::request("q"),
                Ok(false) => {}
                Err(_) => return,
            }
            let Ok(i) = sampler.next(&mut tracer) else { return };
            if view.draw(&i).is_err() {
                return;
            }
        }
    });
    Running { stop, thread }
}
