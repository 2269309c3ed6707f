//! Log lines a guest can cause, rate-limited: a guest looping on a bad
//! access or a refused request must not fill the host's disk. Each kind
//! is always counted; at most `LINES_PER_S` lines a second are written,
//! and the next line written says how many were held back meanwhile.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// Lines a second, over every kind of one VM.
pub const LINES_PER_S: u32 = 5;

#[derive(Debug)]
pub struct GuestLog {
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    written: u32,
    held_back: u64,
}

impl Default for GuestLog {
    fn default() -> Self {
        Self { window: Mutex::new(Window { start: None, written: 0, held_back: 0 }) }
    }
}

impl GuestLog {
    /// Logs `message()` as a warning unless the budget of this second is
    /// spent (then only counts it). Returns whether it was written.
    pub fn warn(&self, message: impl FnOnce() -> String) -> bool {
        self.warn_at(Instant::now(), message).map(|line| log::warn!("{line}")).is_some()
    }

    /// The line to write at `now`, if any (testable without a clock).
    fn warn_at(&self, now: Instant, message: impl FnOnce() -> String) -> Option<String> {
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.start.is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1)) {
            w.start = Some(now);
            w.written = 0;
        }
        if w.written >= LINES_PER_S {
            w.held_back += 1;
            return None;
        }
        w.written += 1;
        let line = message();
        Some(match std::mem::take(&mut w.held_back) {
            0 => line,
            n => format!("{line} ({n} similar lines held back by the guest-log rate limit)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_lines_a_second_and_then_a_count_of_the_rest() {
        let log = GuestLog::default();
        let t0 = Instant::now();
        let written = (0..1000).filter(|_| log.warn_at(t0, || "bad access".into()).is_some()).count();
        assert_eq!(written, LINES_PER_S as usize);
        let next = log.warn_at(t0 + Duration::from_millis(1001), || "bad access".into());
        assert_eq!(next.as_deref(), Some("bad access (995 similar lines held back by the guest-log rate limit)"));
        assert_eq!(log.warn_at(t0 + Duration::from_millis(1002), || "again".into()).as_deref(), Some("again"));
    }
}
