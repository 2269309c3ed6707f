//! Latency percentiles from the guest's TSC samples (send stamp to the
//! first look of the target's upcall handler).

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

/// TSC ticks at `tsc_khz` in nanoseconds.
pub fn ticks_to_ns(ticks: u64, tsc_khz: u32) -> u64 {
    if tsc_khz == 0 { 0 } else { (u128::from(ticks) * 1_000_000 / u128::from(tsc_khz)) as u64 }
}

/// Nearest-rank percentiles of `ticks`, converted to nanoseconds at `tsc_khz`.
pub fn percentiles(mut ticks: Vec<u64>, tsc_khz: u32) -> Percentiles {
    if ticks.is_empty() || tsc_khz == 0 {
        return Percentiles::default();
    }
    ticks.sort_unstable();
    let ns = |t: u64| ticks_to_ns(t, tsc_khz);
    let rank = |p: f64| {
        let i = ((p / 100.0) * ticks.len() as f64).ceil() as usize;
        ns(ticks[i.clamp(1, ticks.len()) - 1])
    };
    Percentiles {
        samples: ticks.len() as u64,
        p50: rank(50.0),
        p90: rank(90.0),
        p99: rank(99.0),
        max: ns(*ticks.last().expect("not empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_a_known_set() {
        // 1..=100 ticks at 1 GHz (1 tick = 1 ns).
        let p = percentiles((1..=100).rev().collect(), 1_000_000);
        assert_eq!((p.samples, p.p50, p.p90, p.p99, p.max), (100, 50, 90, 99, 100));
    }

    #[test]
    fn converts_ticks_at_the_tsc_rate() {
        // 2.5 GHz: 2500 ticks = 1000 ns.
        let p = percentiles(vec![2500], 2_500_000);
        assert_eq!((p.p50, p.max), (1000, 1000));
    }

    #[test]
    fn empty_is_all_zero() {
        assert_eq!(percentiles(vec![], 1), Percentiles::default());
    }
}
