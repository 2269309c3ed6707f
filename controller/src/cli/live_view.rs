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

use crate::{
    bpf::trace::{TraceOptions, Tracer},
    trace::{report::interval, view::LiveView},
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
        let Ok(mut tracer) = Tracer::attach(TraceOptions::new(std::process::id())) else { return };
        let Ok(mut view) = LiveView::start() else { return };
        let Ok(mut last) = tracer.snapshot() else { return };
        let mut at = std::time::Instant::now();
        while !flag.load(Ordering::Acquire) {
            // q closes the view; the VM runs on.
            if LiveView::quit_requested(Duration::from_millis(500)).unwrap_or(true) {
                return;
            }
            let Ok(now) = tracer.snapshot() else { return };
            let seconds = at.elapsed().as_secs_f64();
            at = std::time::Instant::now();
            if view.draw("xevtchn run: this VM (q hides this view)", &interval(&last, &now, seconds)).is_err() {
                return;
            }
            last = now;
        }
    });
    Running { stop, thread }
}
