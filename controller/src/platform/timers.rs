//! Each vCPU's singleshot timer (set_timer_op, VCPUOP_set_singleshot_timer):
//! one thread per VM sleeps until the earliest deadline and, when one
//! passes, fires it: the platform sends that vCPU's VIRQ_TIMER.

use std::{
    sync::{Arc, Condvar, Mutex},
    thread,
    time::Duration,
};

use super::clock::GuestClock;

#[derive(Default)]
struct State {
    /// Per vCPU: the system time it fires at.
    deadlines: Vec<Option<u64>>,
    stop: bool,
}

#[derive(Default)]
pub struct Timers {
    state: Mutex<State>,
    changed: Condvar,
}

impl Timers {
    pub fn new(vcpus: u32) -> Self {
        Self {
            state: Mutex::new(State { deadlines: vec![None; vcpus as usize], stop: false }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets (or stops, with None) `vcpu`'s timer; a new setting replaces
    /// the old one, as in Xen.
    pub fn set(&self, vcpu: u32, deadline_ns: Option<u64>) {
        if let Some(slot) = self.lock().deadlines.get_mut(vcpu as usize) {
            *slot = deadline_ns;
        }
        self.changed.notify_one();
    }

    /// Ends the thread of `start`.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_one();
    }

    /// Runs the timers on a thread of their own: `fire(vcpu)` when a
    /// deadline passes (the timer is then disarmed), until `stop`.
    pub fn start(self: &Arc<Self>, clock: GuestClock, fire: impl Fn(u32) + Send + 'static) -> thread::JoinHandle<()> {
        let timers = self.clone();
        thread::Builder::new()
            .name("xen-timers".into())
            .spawn(move || {
                let mut state = timers.lock();
                while !state.stop {
                    let now = clock.now_ns();
                    let due: Vec<u32> = (0..state.deadlines.len() as u32)
                        .filter(|&v| state.deadlines[v as usize].is_some_and(|d| d <= now))
                        .collect();
                    if !due.is_empty() {
                        for &vcpu in &due {
                            state.deadlines[vcpu as usize] = None;
                        }
                        drop(state);
                        due.into_iter().for_each(&fire);
                        state = timers.lock();
                        continue;
                    }
                    let wait =
                        state.deadlines.iter().flatten().min().map_or(Duration::from_secs(3600), |&d| clock.until(d));
                    state = timers.changed.wait_timeout(state, wait).unwrap_or_else(|p| p.into_inner()).0;
                }
            })
            .expect("spawning the timer thread")
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::mpsc, time::Duration};

    use super::*;

    #[test]
    fn a_timer_fires_once_at_its_deadline_and_a_stopped_one_never() {
        let clock = GuestClock::new(2_000_000);
        let timers = Arc::new(Timers::new(2));
        let (tx, rx) = mpsc::channel();
        let thread = timers.start(clock, move |vcpu| tx.send((vcpu, clock.now_ns())).unwrap());
        let deadline = clock.now_ns() + 20_000_000;
        timers.set(1, Some(deadline));
        timers.set(0, Some(clock.now_ns() + 10_000_000));
        timers.set(0, None);
        let (vcpu, at) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(vcpu, 1);
        assert!(at >= deadline, "fired at {at} ns, before its deadline {deadline} ns");
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err(), "vCPU 0's was stopped; 1's fired once");
        timers.stop();
        thread.join().unwrap();
    }
}
