//! What the commands print as JSON: a versioned `schema` name on every
//! object, and the one shape of a latency distribution they share. The
//! reference is docs/json.md; docs/schema/*.json are JSON Schemas that the
//! privileged tests check every command's real output against.

use serde::Serialize;
use xevtchn_common::trace::BUCKETS;

/// `xevtchn run --json` (every workload but smoke).
pub const RUN: &str = "xevtchn.run/1";
/// `xevtchn run --kernel FILE --json`.
pub const RUN_KERNEL: &str = "xevtchn.run.kernel/1";
/// `xevtchn run --workload smoke --json`.
pub const SMOKE: &str = "xevtchn.smoke/1";
/// `xevtchn trace --json`: one per interval, and the totals.
pub const TRACE_INTERVAL: &str = "xevtchn.trace.interval/1";
/// `xevtchn trace --events --json`: one per event.
pub const TRACE_EVENT: &str = "xevtchn.trace.event/1";
/// `xevtchn bench --json` and its `--output` file.
pub const BENCH: &str = "xevtchn.bench/1";

/// A latency distribution in nanoseconds: how many samples, and the
/// nearest-rank percentiles of them (null without samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub n: u64,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

impl Percentiles {
    /// Nearest-rank percentiles of exact samples.
    pub fn of_samples(mut ns: Vec<u64>) -> Self {
        ns.sort_unstable();
        let rank = |p: f64| {
            let i = ((p / 100.0) * ns.len() as f64).ceil() as usize;
            ns.get(i.clamp(1, ns.len().max(1)) - 1).copied()
        };
        Self { n: ns.len() as u64, p50: rank(50.0), p90: rank(90.0), p99: rank(99.0), max: ns.last().copied() }
    }

    /// Percentiles of a log2 histogram (bucket b holds [2^b, 2^(b+1)) ns):
    /// each is the upper bound of the bucket that holds it, so within a
    /// factor of 2 above the true value.
    pub fn of_log2_histogram(histogram: &[u64; BUCKETS]) -> Self {
        let n: u64 = histogram.iter().sum();
        let upper = |b: usize| 1u64 << (b + 1).min(63);
        let rank = |p: f64| {
            let rank = ((p / 100.0) * n as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            histogram.iter().position(|&c| {
                seen += c;
                seen >= rank
            })
        };
        let at = |p: f64| if n == 0 { None } else { rank(p).map(upper) };
        Self { n, p50: at(50.0), p90: at(90.0), p99: at(99.0), max: histogram.iter().rposition(|&c| c > 0).map(upper) }
    }
}

/// One bucket of a log2 histogram as printed: samples below `upper_ns`
/// (and at or above half of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub upper_ns: u64,
    pub n: u64,
}

/// The non-empty buckets of a log2 histogram, fastest first.
pub fn buckets(histogram: &[u64; BUCKETS]) -> Vec<Bucket> {
    (0..BUCKETS)
        .filter(|&b| histogram[b] > 0)
        .map(|b| Bucket { upper_ns: 1u64 << (b + 1).min(63), n: histogram[b] })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_a_known_set() {
        let p = Percentiles::of_samples((1..=100).rev().collect());
        assert_eq!(p, Percentiles { n: 100, p50: Some(50), p90: Some(90), p99: Some(99), max: Some(100) });
    }

    #[test]
    fn no_samples_no_percentiles() {
        assert_eq!(Percentiles::of_samples(vec![]), Percentiles::default());
        assert_eq!(Percentiles::of_log2_histogram(&[0; BUCKETS]), Percentiles::default());
        assert_eq!(serde_json::to_value(Percentiles::default()).unwrap()["p50"], serde_json::Value::Null);
    }

    #[test]
    fn histogram_percentiles_are_upper_bounds_of_their_buckets() {
        let mut h = [0u64; BUCKETS];
        h[10] = 50; // [1024, 2048)
        h[14] = 49; // [16384, 32768)
        h[20] = 1;
        let p = Percentiles::of_log2_histogram(&h);
        assert_eq!(p, Percentiles { n: 100, p50: Some(2048), p90: Some(32768), p99: Some(32768), max: Some(1 << 21) });
        assert_eq!(buckets(&h), [(2048, 50), (32768, 49), (1 << 21, 1)].map(|(upper_ns, n)| Bucket { upper_ns, n }));
    }
}
