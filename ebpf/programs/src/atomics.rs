//! The shared_info page of a BPF map as `EventWords`, with BPF atomics.
//!
//! The bpfel target has no compare-and-swap, so core's `AtomicU64` offers
//! no fetch_or/fetch_and/swap there; the intrinsics compile to BPF's
//! `atomic_fetch_or`, `atomic_fetch_and` and `atomic_xchg`. Loads are
//! volatile: the BPF backend rejects seq_cst atomic loads, and a plain
//! 64-bit load is single-copy atomic on every host.

use core::intrinsics::{AtomicOrdering, atomic_and, atomic_or, atomic_xadd, atomic_xchg};

use xevtchn_common::{two_level::EventWords, wire::SharedInfoWords};

const WORDS: usize = 512;

pub struct MapWords(pub *mut SharedInfoWords);

impl MapWords {
    #[inline(always)]
    fn word(&self, word: usize) -> Option<*mut u64> {
        if word >= WORDS {
            return None;
        }
        // SAFETY: `word` is within the 512-word map value the pointer
        // designates (checked above).
        Some(unsafe { (self.0 as *mut u64).add(word) })
    }
}

impl EventWords for MapWords {
    #[inline(always)]
    fn load(&self, word: usize) -> u64 {
        // SAFETY: an in-bounds, aligned u64 of the map value.
        self.word(word).map_or(0, |p| unsafe { core::ptr::read_volatile(p) })
    }

    #[inline(always)]
    fn fetch_or(&self, word: usize, bits: u64) -> u64 {
        // SAFETY: as above; the map value is shared memory, accessed atomically.
        self.word(word).map_or(0, |p| unsafe { atomic_or::<u64, u64, { AtomicOrdering::SeqCst }>(p, bits) })
    }

    #[inline(always)]
    fn fetch_and(&self, word: usize, bits: u64) -> u64 {
        // SAFETY: as above.
        self.word(word).map_or(0, |p| unsafe { atomic_and::<u64, u64, { AtomicOrdering::SeqCst }>(p, bits) })
    }

    #[inline(always)]
    fn swap(&self, word: usize, value: u64) -> u64 {
        // SAFETY: as above.
        self.word(word).map_or(0, |p| unsafe { atomic_xchg::<u64, { AtomicOrdering::SeqCst }>(p, value) })
    }
}

/// Atomically adds `n` to the u64 at `p` (a map value's word), fully
/// ordered (BPF_ATOMIC | BPF_FETCH, a lock-prefixed add on x86).
#[inline(always)]
pub fn add(p: *mut u64, n: u64) {
    // SAFETY: the callers pass aligned u64s of map values from lookups.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::SeqCst }>(p, n) };
}

/// A single-copy atomic load of the u64 at `p` (a map value's word).
#[inline(always)]
pub fn load(p: *const u64) -> u64 {
    // SAFETY: as for `add`.
    unsafe { core::ptr::read_volatile(p) }
}
