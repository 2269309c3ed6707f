//! Latency samples from the guest's TSC (send stamp to the first look of
//! the target's upcall handler), in nanoseconds.

/// TSC ticks at `tsc_khz` in nanoseconds.
pub fn ticks_to_ns(ticks: u64, tsc_khz: u32) -> u64 {
    if tsc_khz == 0 { 0 } else { (u128::from(ticks) * 1_000_000 / u128::from(tsc_khz)) as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_ticks_at_the_tsc_rate() {
        // 2.5 GHz: 2500 ticks = 1000 ns.
        assert_eq!(ticks_to_ns(2500, 2_500_000), 1000);
        assert_eq!(ticks_to_ns(2500, 0), 0);
    }
}
