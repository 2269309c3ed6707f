//! Xen system time: nanoseconds since the VM was set up, which the guest
//! reads from each vcpu_info's pvclock fields (`struct vcpu_time_info`,
//! xen.h) and SCHEDOP_poll's timeout is expressed in. Guest TSC equals host
//! TSC on this host kind (notes/host.md), so the VMM reads the same clock.
//!
//! The fields are written once, when shared_info is placed: with a
//! constant, invariant TSC they stay right; XENFEAT_hvm_safe_pvclock is
//! not advertised since nothing rewrites them if the TSC changed.

use std::time::{Duration, Instant};

use xevtchn_common::two_level::{EventWords, vcpu_info_word};

/// Word of `vcpu_time_info` inside a vcpu_info (offset 32).
const TIME_WORD_IN_VCPU_INFO: usize = 4;

#[derive(Clone, Copy, Debug)]
pub struct GuestClock {
    start_tsc: u64,
    mul: u32,
    shift: i8,
}

impl GuestClock {
    /// A clock starting now, for a TSC of `tsc_khz`.
    pub fn new(tsc_khz: u32) -> Self {
        let (mul, shift) = time_scale(u64::from(tsc_khz.max(1)) * 1000);
        Self { start_tsc: tsc(), mul, shift }
    }

    /// System time at TSC value `tsc`, as a guest computes it.
    pub fn ns_at(&self, tsc: u64) -> u64 {
        scale(tsc.wrapping_sub(self.start_tsc), self.mul, self.shift)
    }

    pub fn now_ns(&self) -> u64 {
        self.ns_at(tsc())
    }

    /// How long until system time `ns` (zero if it passed).
    pub fn until(&self, ns: u64) -> Duration {
        Duration::from_nanos(ns.saturating_sub(self.now_ns()))
    }

    /// Writes vcpu_info.time of vCPUs `0..vcpus`, wherever their vcpu_info
    /// is (from vCPU 32 on, Xen's dummy until they register one), with the
    /// version odd while the fields change, as Xen does.
    pub fn write_time_info<W: EventWords + ?Sized>(&self, page: &W, vcpus: u32) {
        let now = tsc();
        let system_time = self.ns_at(now);
        for vcpu in 0..vcpus {
            let base = vcpu_info_word(vcpu) + TIME_WORD_IN_VCPU_INFO;
            let version = page.load(base) as u32;
            store(page, base, u64::from(version.wrapping_add(1) | 1));
            store(page, base + 1, now);
            store(page, base + 2, system_time);
            store(page, base + 3, u64::from(self.mul) | u64::from(self.shift as u8) << 32);
            store(page, base, u64::from((version | 1).wrapping_add(1)));
        }
    }
}

fn store<W: EventWords + ?Sized>(page: &W, word: usize, value: u64) {
    page.swap(word, value);
}

/// The host's TSC.
fn tsc() -> u64 {
    // SAFETY: rdtsc has no memory effects; every x86_64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// pvclock's scale: ns = ((delta << shift or >> -shift) * mul) >> 32, as
/// Linux's kvm_get_time_scale computes it for 10^9 from `tsc_hz`.
fn time_scale(tsc_hz: u64) -> (u32, i8) {
    let scaled: u64 = 1_000_000_000;
    let mut base = tsc_hz;
    let mut shift: i8 = 0;
    while base > scaled * 2 || base >> 32 != 0 {
        base >>= 1;
        shift -= 1;
    }
    let mut base32 = base as u32;
    let mut scaled64 = scaled;
    while u64::from(base32) <= scaled64 || scaled64 >> 32 != 0 {
        if scaled64 >> 32 != 0 || base32 & 0x8000_0000 != 0 {
            scaled64 >>= 1;
        } else {
            base32 <<= 1;
        }
        shift += 1;
    }
    (((scaled64 << 32) / u64::from(base32)) as u32, shift)
}

fn scale(delta: u64, mul: u32, shift: i8) -> u64 {
    let delta = if shift >= 0 { delta << shift } else { delta >> -shift };
    ((u128::from(delta) * u128::from(mul)) >> 32) as u64
}

/// Sleeps in short steps until `ready`, `deadline` or `stop`.
pub fn wait_until(ready: impl Fn() -> bool, deadline: Option<Instant>, stop: impl Fn() -> bool) {
    while !ready() && !stop() && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_micros(50));
    }
}

#[cfg(test)]
mod tests {
    use xevtchn_common::two_level::AtomicPage;

    use super::*;

    #[test]
    fn scale_turns_tsc_ticks_into_nanoseconds() {
        for hz in [1_000_000_000u64, 2_596_000_000, 3_000_000_000, 100_000_000] {
            let (mul, shift) = time_scale(hz);
            let ns = scale(hz, mul, shift);
            assert!(ns.abs_diff(1_000_000_000) < 10, "{hz} Hz: one second is {ns} ns");
        }
    }

    #[test]
    fn time_info_is_written_with_an_even_version() {
        let page = AtomicPage::new();
        let clock = GuestClock::new(2_000_000);
        clock.write_time_info(&page, 2);
        for vcpu in 0..2 {
            let base = vcpu_info_word(vcpu) + TIME_WORD_IN_VCPU_INFO;
            assert_eq!(page.load(base) as u32 % 2, 0);
            assert_ne!(page.load(base + 3) as u32, 0, "tsc_to_system_mul");
        }
        clock.write_time_info(&page, 1);
        assert_eq!(page.load(TIME_WORD_IN_VCPU_INFO) as u32, 4, "each update moves the version by 2");
    }
}
