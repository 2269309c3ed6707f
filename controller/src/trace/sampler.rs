//! Successive snapshots of the tracing maps turned into intervals: the one
//! loop `xevtchn trace` (lines, JSON, live view) and `xevtchn run`'s live
//! view share.

use std::time::{Duration, Instant};

use super::{
    bpf::{Snapshot, Tracer},
    report::{Interval, interval},
};
use crate::bpf::BpfError;

pub struct Sampler {
    first: Snapshot,
    last: Snapshot,
    start: Instant,
    last_at: Instant,
}

impl Sampler {
    /// Takes the first snapshot: intervals and totals count from here.
    pub fn start(tracer: &mut Tracer) -> Result<Self, BpfError> {
        let first = tracer.snapshot()?;
        let now = Instant::now();
        Ok(Self { last: first.clone(), first, start: now, last_at: now })
    }

    /// When the interval that started at the last sample is `every` long.
    pub fn due(&self, every: Duration) -> Instant {
        self.last_at + every
    }

    /// What happened since the last sample (or the start).
    pub fn next(&mut self, tracer: &mut Tracer) -> Result<Interval, BpfError> {
        let now = tracer.snapshot()?;
        let at = Instant::now();
        let i = interval(&self.last, &now, (at - self.last_at).as_secs_f64());
        (self.last, self.last_at) = (now, at);
        Ok(i)
    }

    /// From the first sample to the last.
    pub fn since_start(&self) -> Duration {
        self.last_at - self.start
    }

    /// An interval of nothing, to draw before the first sample.
    pub fn nothing_yet(&self) -> Interval {
        interval(&self.last, &self.last, 0.0)
    }

    /// Everything from the start to the last sample.
    pub fn total(&self) -> Interval {
        interval(&self.first, &self.last, self.since_start().as_secs_f64())
    }
}

/// How long to wait: until `due` or the deadline, whichever comes first.
pub fn wait_until(due: Instant, deadline: Option<Instant>) -> Duration {
    deadline.map_or(due, |d| d.min(due)).saturating_duration_since(Instant::now())
}
