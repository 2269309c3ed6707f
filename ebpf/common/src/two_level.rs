//! The 2-level event-channel algorithm, written once for every caller: the
//! BPF program, the userspace backend, the hypervisor side's control plane
//! and (for the guest-side scan) the built-in guest and the tests.
//!
//! # Sending (xen/common/event_2l.c: evtchn_2l_set_pending)
//! 1. port >= 4096 → invalid.
//! 2. test-and-set `evtchn_pending[port]`; already set → coalesced.
//! 3. `evtchn_mask[port]` set → masked (pending stays set; the upcall comes
//!    when the guest unmasks).
//! 4. test-and-set bit `port / 64` of the target vCPU's
//!    `evtchn_pending_sel`; already set → nothing more to do.
//! 5. test-and-set `evtchn_upcall_pending`; it was clear → raise the upcall
//!    (vcpu_mark_events_pending in xen/arch/x86/domain.c).
//!
//! # Word access
//! Everything goes through [`EventWords`]: 64-bit words of the 4096-byte
//! shared_info page, then (from [`PAGE_WORDS`] on) the vcpu_infos of vCPUs
//! [`SHARED_INFO_VCPUS`] to [`MAX_VCPUS`], which have no place in the page
//! (see [`vcpu_info_word`]). Words are accessed with `load`, `fetch_or`,
//! `fetch_and` and `swap`. That
//! is what BPF offers (atomic fetch_or/fetch_and/xchg on 64-bit words; no
//! compare-and-swap, no byte atomics), and it is enough: each step is one
//! atomic read-modify-write whose previous value tells what happened.
//! `evtchn_upcall_pending` is the byte at offset 0 of `vcpu_info`, so step 5
//! is a 64-bit `fetch_or` of bit 0 on the vcpu_info's first word (little
//! endian) — exactly what Xen itself does
//! (`test_and_set_bit(0, (unsigned long *)&vcpu_info(v, evtchn_upcall_pending))`).
//!
//! # evtchn_upcall_mask is not consulted
//! For HVM guests neither Xen nor KVM look at `evtchn_upcall_mask` when
//! raising an upcall, so neither does this code:
//! - Xen: vcpu_mark_events_pending() (xen/arch/x86/domain.c) calls
//!   hvm_assert_evtchn_irq() (xen/arch/x86/hvm/irq.c) as soon as
//!   `evtchn_upcall_pending` goes 0 → 1; that function injects the per-vCPU
//!   vector or kicks the vCPU without reading the mask, and
//!   hvm_set_callback_irq_level() says "Do not check the
//!   evtchn_upcall_mask. It is not used in HVM mode."
//! - KVM: kvm_xen_set_evtchn_fast() (arch/x86/kvm/xen.c) tests
//!   `evtchn_pending`, `evtchn_mask` and `evtchn_pending_sel`, writes
//!   `evtchn_upcall_pending = 1` and injects; it never reads the mask byte.
//!   (It also injects when `evtchn_upcall_pending` was already 1; Xen does
//!   not, and we follow Xen: [`Outcome::UpcallAlreadyPending`].)
//!
//! # Unmasking (event_2l.c: evtchn_2l_unmask)
//! Xen re-runs steps 4-5 only if the mask bit *was* set and the port is
//! pending. Linux knows this: its HVM unmask path re-masks a pending port
//! before calling EVTCHNOP_unmask (drivers/xen/events/events_2l.c).
//!
//! # Verifier friendliness
//! Every function is `#[inline(always)]`, has no recursion, indexes nothing
//! that can panic (word indices are computed from validated ports and vCPUs
//! and bounds-checked again by the `EventWords` implementation) and has only
//! loops bounded by constants. Compiled for `bpfel-unknown-none` (release,
//! `-C target-cpu=v3`), `set_pending` is straight-line code: two bounds
//! checks, three `atomic_fetch_or`, one load, no calls.
//!
//! Implementing `EventWords` in BPF: core's `AtomicU64` has no
//! read-modify-write methods on that target; use
//! `core::intrinsics::{atomic_or, atomic_and, atomic_xchg}` (BPF atomics
//! need `target-cpu=v3`) and a volatile read for `load` (the BPF backend
//! rejects a seq_cst atomic load).
//!
//! The unit tests are in `tests/two_level_outcomes.rs`.

#[cfg(target_has_atomic = "64")]
use core::sync::atomic::{AtomicU64, Ordering};

use core::mem::{offset_of, size_of};

use crate::xen::evtchn::EVTCHN_2L_NR_CHANNELS;
use crate::xen::shared_info::{BITS_PER_EVTCHN_WORD, EVTCHN_WORDS, SharedInfo, VcpuInfo, XEN_LEGACY_MAX_VCPUS};

/// 64-bit words in the shared_info page (4096 bytes).
pub const PAGE_WORDS: usize = 4096 / 8;
/// Ports of the 2-level ABI for 64-bit guests.
pub const NR_PORTS: u32 = EVTCHN_2L_NR_CHANNELS;
/// vCPUs whose vcpu_info lives in shared_info until the guest moves it.
pub const SHARED_INFO_VCPUS: u32 = XEN_LEGACY_MAX_VCPUS as u32;
/// vCPUs a domain may have: Xen's HVM_MAX_VCPUS (public/hvm/hvm_info_table.h).
/// Those from [`SHARED_INFO_VCPUS`] on have a vcpu_info only once the guest
/// registers one (VCPUOP_register_vcpu_info).
pub const MAX_VCPUS: u32 = 128;
/// Word index of the first vcpu_info outside the page, vCPU
/// [`SHARED_INFO_VCPUS`]'s: these words follow the page's.
pub const EXTRA_VCPU_INFO_BASE: usize = PAGE_WORDS;
/// The whole word space: the page, then the vcpu_infos outside it.
pub const EVENT_WORDS: usize = PAGE_WORDS + (MAX_VCPUS - SHARED_INFO_VCPUS) as usize * VCPU_INFO_WORDS;
/// Word index of `evtchn_pending[0]`.
pub const PENDING_BASE: usize = offset_of!(SharedInfo, evtchn_pending) / 8;
/// Word index of `evtchn_mask[0]`.
pub const MASK_BASE: usize = offset_of!(SharedInfo, evtchn_mask) / 8;
/// Words per vcpu_info.
pub const VCPU_INFO_WORDS: usize = size_of::<VcpuInfo>() / 8;
/// Word of `evtchn_pending_sel` inside a vcpu_info.
const SEL_WORD_IN_VCPU_INFO: usize = offset_of!(VcpuInfo, evtchn_pending_sel) / 8;
/// `evtchn_upcall_pending` inside the first word of a vcpu_info.
pub const UPCALL_PENDING_BIT: u64 = 1 << (8 * offset_of!(VcpuInfo, evtchn_upcall_pending));
/// `evtchn_upcall_mask` inside the first word of a vcpu_info.
pub const UPCALL_MASK_BITS: u64 = 0xff << (8 * offset_of!(VcpuInfo, evtchn_upcall_mask));
/// `evtchn_upcall_mask = 1` in the first word of a vcpu_info.
pub const UPCALL_MASKED: u64 = 1 << (8 * offset_of!(VcpuInfo, evtchn_upcall_mask));

const _: () = assert!(offset_of!(VcpuInfo, evtchn_upcall_pending) < 8);
const _: () = assert!(offset_of!(VcpuInfo, evtchn_upcall_mask) < 8);
const _: () = assert!(SHARED_INFO_VCPUS as usize * VCPU_INFO_WORDS <= PENDING_BASE);
const _: () = assert!(MASK_BASE + EVTCHN_WORDS <= PAGE_WORDS);
const _: () = assert!(NR_PORTS == BITS_PER_EVTCHN_WORD * EVTCHN_WORDS as u32);

/// Atomic access to the 64-bit words of the shared_info page and of the
/// vcpu_infos outside it.
///
/// `word` indexes [0, [`EVENT_WORDS`]): the page's 512 words, then one
/// vcpu_info per vCPU from [`SHARED_INFO_VCPUS`] on. Implementations
/// bounds-check: an index they do not hold must not touch memory (`load`
/// and the `fetch_*` return 0); a view of the page alone (the BPF program's,
/// [`AtomicPage`]) holds no vcpu_info from [`SHARED_INFO_VCPUS`] on. The
/// algorithm only produces in-range indices for the ports and vCPUs it has
/// validated. All operations are sequentially consistent, like
/// x86's lock-prefixed instructions that Xen and Linux use.
pub trait EventWords {
    /// Atomically reads a word.
    fn load(&self, word: usize) -> u64;
    /// Atomically ORs `bits` into a word and returns its previous value.
    fn fetch_or(&self, word: usize, bits: u64) -> u64;
    /// Atomically ANDs `bits` into a word and returns its previous value.
    fn fetch_and(&self, word: usize, bits: u64) -> u64;
    /// Atomically replaces a word and returns its previous value (xchg).
    fn swap(&self, word: usize, value: u64) -> u64;
}

/// What a step of the algorithm did. `#[repr(u32)]` so that BPF can count
/// outcomes in an array map indexed by the discriminant.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Port >= [`NR_PORTS`]: nothing was touched.
    InvalidPort = 0,
    /// vCPU >= [`MAX_VCPUS`]: nothing was touched.
    InvalidVcpu = 1,
    /// The port was already pending: the event merged with the earlier one.
    Coalesced = 2,
    /// The port is pending but masked: no upcall until it is unmasked.
    Masked = 3,
    /// The vCPU's selector bit for the port's word was already set: an
    /// upcall for it is already on its way.
    SelectorAlreadySet = 4,
    /// `evtchn_upcall_pending` was already 1: the vCPU has an upcall in
    /// flight and will scan the selector.
    UpcallAlreadyPending = 5,
    /// `evtchn_upcall_pending` went 0 → 1: the caller must raise the upcall
    /// on the vCPU (inject the vector or assert the callback line).
    UpcallRaised = 6,
    /// Unmask of a port whose mask bit was already clear: Xen does nothing.
    NotMasked = 7,
    /// Unmask or re-raise of a port that is not pending: nothing to deliver.
    NotPending = 8,
}

/// Number of [`Outcome`] variants (size of a BPF counter array).
pub const OUTCOME_COUNT: usize = 9;

impl Outcome {
    /// True if the caller must raise the upcall on the target vCPU.
    #[inline(always)]
    pub const fn must_raise(self) -> bool {
        matches!(self, Outcome::UpcallRaised)
    }
}

/// Word index and bit of `port` in `evtchn_pending`/`evtchn_mask`, counted
/// from the bitmap's start. `port` must be < NR_PORTS.
#[inline(always)]
const fn port_word_and_bit(port: u32) -> (usize, u64) {
    let word = (port / BITS_PER_EVTCHN_WORD) as usize;
    let bit = 1u64.wrapping_shl(port % BITS_PER_EVTCHN_WORD);
    (word, bit)
}

/// Word index of the first word of `vcpu`'s vcpu_info (`vcpu` <
/// [`MAX_VCPUS`]): in the page's `vcpu_info` array below
/// [`SHARED_INFO_VCPUS`], after the page from there on. The word holds
/// `evtchn_upcall_pending` and `evtchn_upcall_mask`.
#[inline(always)]
pub const fn vcpu_info_word(vcpu: u32) -> usize {
    if vcpu < SHARED_INFO_VCPUS {
        vcpu as usize * VCPU_INFO_WORDS
    } else {
        EXTRA_VCPU_INFO_BASE + (vcpu - SHARED_INFO_VCPUS) as usize * VCPU_INFO_WORDS
    }
}

/// The vCPU whose vcpu_info holds `word`, if it is a vcpu_info word.
#[inline(always)]
pub const fn vcpu_of_word(word: usize) -> Option<u32> {
    if word < SHARED_INFO_VCPUS as usize * VCPU_INFO_WORDS {
        Some((word / VCPU_INFO_WORDS) as u32)
    } else if word >= EXTRA_VCPU_INFO_BASE && word < EVENT_WORDS {
        Some(((word - EXTRA_VCPU_INFO_BASE) / VCPU_INFO_WORDS) as u32 + SHARED_INFO_VCPUS)
    } else {
        None
    }
}

/// Word index of `evtchn_pending_sel` of `vcpu` (< MAX_VCPUS).
#[inline(always)]
pub const fn pending_sel_word(vcpu: u32) -> usize {
    vcpu_info_word(vcpu) + SEL_WORD_IN_VCPU_INFO
}

/// Word index of the first word of `vcpu`'s vcpu_info (< MAX_VCPUS), which
/// holds `evtchn_upcall_pending` and `evtchn_upcall_mask`.
#[inline(always)]
pub const fn upcall_word(vcpu: u32) -> usize {
    vcpu_info_word(vcpu)
}

/// Word index of the `evtchn_pending` word holding `port` (< NR_PORTS).
#[inline(always)]
pub const fn pending_word(port: u32) -> usize {
    PENDING_BASE + port_word_and_bit(port).0
}

/// Word index of the `evtchn_mask` word holding `port` (< NR_PORTS).
#[inline(always)]
pub const fn mask_word(port: u32) -> usize {
    MASK_BASE + port_word_and_bit(port).0
}

/// Sends an event on `port` to `vcpu`: steps 1-5.
#[inline(always)]
pub fn set_pending<W: EventWords + ?Sized>(words: &W, port: u32, vcpu: u32) -> Outcome {
    if port >= NR_PORTS {
        return Outcome::InvalidPort;
    }
    if vcpu >= MAX_VCPUS {
        return Outcome::InvalidVcpu;
    }
    let (word, bit) = port_word_and_bit(port);
    if words.fetch_or(PENDING_BASE + word, bit) & bit != 0 {
        return Outcome::Coalesced;
    }
    if words.load(MASK_BASE + word) & bit != 0 {
        return Outcome::Masked;
    }
    mark_selector_and_upcall(words, word, vcpu)
}

/// Steps 4-5 alone, for a port already pending: used after a port moved to
/// another vCPU (bind_vcpu), so that an event that was pending and unmasked
/// is announced on the new vCPU too. Does nothing for a port that is not
/// pending ([`Outcome::NotPending`]) or masked ([`Outcome::Masked`]).
#[inline(always)]
pub fn raise_on_vcpu<W: EventWords + ?Sized>(words: &W, port: u32, vcpu: u32) -> Outcome {
    if port >= NR_PORTS {
        return Outcome::InvalidPort;
    }
    if vcpu >= MAX_VCPUS {
        return Outcome::InvalidVcpu;
    }
    let (word, bit) = port_word_and_bit(port);
    if words.load(PENDING_BASE + word) & bit == 0 {
        return Outcome::NotPending;
    }
    if words.load(MASK_BASE + word) & bit != 0 {
        return Outcome::Masked;
    }
    mark_selector_and_upcall(words, word, vcpu)
}

/// EVTCHNOP_unmask: clears the port's mask bit; if it was set and the port
/// is pending, re-runs steps 4-5 on `vcpu` (the port's notify vCPU).
#[inline(always)]
pub fn unmask<W: EventWords + ?Sized>(words: &W, port: u32, vcpu: u32) -> Outcome {
    if port >= NR_PORTS {
        return Outcome::InvalidPort;
    }
    if vcpu >= MAX_VCPUS {
        return Outcome::InvalidVcpu;
    }
    let (word, bit) = port_word_and_bit(port);
    if words.fetch_and(MASK_BASE + word, !bit) & bit == 0 {
        return Outcome::NotMasked;
    }
    if words.load(PENDING_BASE + word) & bit == 0 {
        return Outcome::NotPending;
    }
    mark_selector_and_upcall(words, word, vcpu)
}

/// Clears `port`'s pending bit, as Xen does when a port is closed
/// (evtchn_free → evtchn_2l_clear_pending). Returns whether it was set.
#[inline(always)]
pub fn clear_pending<W: EventWords + ?Sized>(words: &W, port: u32) -> bool {
    if port >= NR_PORTS {
        return false;
    }
    let (word, bit) = port_word_and_bit(port);
    words.fetch_and(PENDING_BASE + word, !bit) & bit != 0
}

/// Whether `port` is pending (false for an invalid port).
#[inline(always)]
pub fn is_pending<W: EventWords + ?Sized>(words: &W, port: u32) -> bool {
    if port >= NR_PORTS {
        return false;
    }
    let (word, bit) = port_word_and_bit(port);
    words.load(PENDING_BASE + word) & bit != 0
}

/// Whether `port` is masked (true for an invalid port, like Xen's
/// evtchn_2l_is_masked).
#[inline(always)]
pub fn is_masked<W: EventWords + ?Sized>(words: &W, port: u32) -> bool {
    if port >= NR_PORTS {
        return true;
    }
    let (word, bit) = port_word_and_bit(port);
    words.load(MASK_BASE + word) & bit != 0
}

/// Whether `vcpu`'s `evtchn_upcall_pending` is set (false for an invalid
/// vCPU). The GSI / PCI INTx callback line follows this for vCPU 0.
#[inline(always)]
pub fn upcall_pending<W: EventWords + ?Sized>(words: &W, vcpu: u32) -> bool {
    if vcpu >= MAX_VCPUS {
        return false;
    }
    words.load(upcall_word(vcpu)) & UPCALL_PENDING_BIT != 0
}

/// Steps 4-5 for a validated port word index and vCPU.
#[inline(always)]
fn mark_selector_and_upcall<W: EventWords + ?Sized>(words: &W, port_word: usize, vcpu: u32) -> Outcome {
    let sel_bit = 1u64.wrapping_shl(port_word as u32);
    if words.fetch_or(pending_sel_word(vcpu), sel_bit) & sel_bit != 0 {
        return Outcome::SelectorAlreadySet;
    }
    if words.fetch_or(upcall_word(vcpu), UPCALL_PENDING_BIT) & UPCALL_PENDING_BIT != 0 {
        return Outcome::UpcallAlreadyPending;
    }
    Outcome::UpcallRaised
}

/// The guest side of the 2-level ABI, as Linux's
/// drivers/xen/events/events_2l.c does it for an HVM guest. The built-in
/// guest and the tests share it, so that the tests exercise the protocol a
/// real guest follows.
///
/// An upcall handler runs, like Linux's __xen_evtchn_do_upcall:
/// ```text
/// loop {
///     clear_upcall_pending(vcpu);
///     scan(vcpu, ...);            // xchg(pending_sel, 0), then the words
///     if !upcall_pending(vcpu) { break; }
/// }
/// ```
pub mod guest {
    use super::{
        BITS_PER_EVTCHN_WORD, EVTCHN_WORDS, EventWords, MASK_BASE, MAX_VCPUS, NR_PORTS, PENDING_BASE,
        UPCALL_PENDING_BIT, pending_sel_word, port_word_and_bit, upcall_word,
    };

    /// Clears `evtchn_upcall_pending` (Linux: `vcpu_info->evtchn_upcall_pending
    /// = 0`, before scanning). Returns whether it was set.
    #[inline(always)]
    pub fn clear_upcall_pending<W: EventWords + ?Sized>(words: &W, vcpu: u32) -> bool {
        if vcpu >= MAX_VCPUS {
            return false;
        }
        words.fetch_and(upcall_word(vcpu), !UPCALL_PENDING_BIT) & UPCALL_PENDING_BIT != 0
    }

    /// Takes the selector: `xchg(&vcpu_info->evtchn_pending_sel, 0)`.
    #[inline(always)]
    pub fn take_pending_sel<W: EventWords + ?Sized>(words: &W, vcpu: u32) -> u64 {
        if vcpu >= MAX_VCPUS {
            return 0;
        }
        words.swap(pending_sel_word(vcpu), 0)
    }

    /// `evtchn_pending[word] & ~evtchn_mask[word]` (0 for word >= 64).
    #[inline(always)]
    pub fn active_bits<W: EventWords + ?Sized>(words: &W, word: u32) -> u64 {
        if word as usize >= EVTCHN_WORDS {
            return 0;
        }
        words.load(PENDING_BASE + word as usize) & !words.load(MASK_BASE + word as usize)
    }

    /// Clears a port's pending bit, as the guest's ack does before handling
    /// it. Returns whether it was set: the event is consumed exactly once,
    /// by whoever clears the bit.
    #[inline(always)]
    pub fn clear_pending<W: EventWords + ?Sized>(words: &W, port: u32) -> bool {
        super::clear_pending(words, port)
    }

    /// Sets a port's mask bit. Returns whether it was already set.
    #[inline(always)]
    pub fn mask<W: EventWords + ?Sized>(words: &W, port: u32) -> bool {
        if port >= NR_PORTS {
            return true;
        }
        let (word, bit) = port_word_and_bit(port);
        words.fetch_or(MASK_BASE + word, bit) & bit != 0
    }

    /// What the guest must do after [`unmask`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Unmask {
        /// The port is unmasked and was not pending: nothing to do.
        Done,
        /// The port is pending: it has been masked again and the guest must
        /// call EVTCHNOP_unmask, which unmasks it and raises the upcall
        /// (Xen only re-raises if the mask bit was set).
        NeedsHypercall,
    }

    /// Unmasks a port the way Linux's evtchn_2l_unmask does for an HVM
    /// guest: clear the mask; if the port is pending, set the mask again and
    /// leave it to EVTCHNOP_unmask.
    #[inline(always)]
    pub fn unmask<W: EventWords + ?Sized>(words: &W, port: u32) -> Unmask {
        if port >= NR_PORTS {
            return Unmask::Done;
        }
        let (word, bit) = port_word_and_bit(port);
        words.fetch_and(MASK_BASE + word, !bit);
        if words.load(PENDING_BASE + word) & bit == 0 {
            return Unmask::Done;
        }
        words.fetch_or(MASK_BASE + word, bit);
        Unmask::NeedsHypercall
    }

    /// Where the next scan starts: Linux's per-CPU `current_word_idx` and
    /// `current_bit_idx`, which make the scan round robin.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ScanCursor {
        pub word: u32,
        pub bit: u32,
    }

    /// `w` with its `i` least significant bits cleared (Linux MASK_LSBS).
    #[inline(always)]
    fn mask_lsbs(w: u64, i: u32) -> u64 {
        w & u64::MAX.checked_shl(i).unwrap_or(0)
    }

    /// Upper bound on the passes of [`scan`]'s outer loop: the start word
    /// twice, every other word once, and one wrap-around per sweep.
    const MAX_SCAN_PASSES: u32 = 2 * BITS_PER_EVTCHN_WORD + 2;

    /// Linux's evtchn_2l_handle_events (without its VIRQ_TIMER shortcut):
    /// takes `vcpu`'s selector, then for each selected word handles the
    /// ports that are pending, unmasked and bound to this vCPU
    /// (`local[word]`, Linux's per-CPU `cpu_evtchn_mask`), round robin from
    /// `cursor`. Each port is handled after its pending bit is cleared, and
    /// only if this call cleared it. Returns the number of ports handled.
    ///
    /// Ports pending in a selected word but bound to another vCPU are left
    /// alone: the hypervisor announces them on their own vCPU.
    #[inline(always)]
    pub fn scan<W, F>(words: &W, vcpu: u32, cursor: &mut ScanCursor, local: &[u64; EVTCHN_WORDS], mut handle: F) -> u32
    where
        W: EventWords + ?Sized,
        F: FnMut(u32),
    {
        let mut pending_words = take_pending_sel(words, vcpu);
        let start_word = cursor.word % BITS_PER_EVTCHN_WORD;
        let start_bit = cursor.bit % BITS_PER_EVTCHN_WORD;
        let mut word_idx = start_word;
        let mut handled = 0u32;

        for pass in 0..MAX_SCAN_PASSES {
            if pending_words == 0 {
                break;
            }
            let selected = mask_lsbs(pending_words, word_idx);
            if selected == 0 {
                // Nothing at or above word_idx: wrap to the beginning.
                word_idx = 0;
                continue;
            }
            word_idx = selected.trailing_zeros();

            let local_bits = local.get(word_idx as usize).copied().unwrap_or(0);
            let pending_bits = active_bits(words, word_idx) & local_bits;
            // The start word is scanned twice: first from the cursor's bit,
            // later from bit 0.
            let mut bit_idx = if word_idx == start_word && pass == 0 { start_bit } else { 0 };

            for _ in 0..BITS_PER_EVTCHN_WORD {
                let bits = mask_lsbs(pending_bits, bit_idx);
                if bits == 0 {
                    break;
                }
                bit_idx = bits.trailing_zeros();
                let port = word_idx * BITS_PER_EVTCHN_WORD + bit_idx;
                if clear_pending(words, port) {
                    handle(port);
                    handled += 1;
                }
                bit_idx = (bit_idx + 1) % BITS_PER_EVTCHN_WORD;
                // The next scan starts at the port after this one.
                *cursor = ScanCursor {
                    word: if bit_idx != 0 { word_idx } else { (word_idx + 1) % BITS_PER_EVTCHN_WORD },
                    bit: bit_idx,
                };
                if bit_idx == 0 {
                    break;
                }
            }

            if word_idx != start_word || pass != 0 {
                pending_words &= !1u64.wrapping_shl(word_idx);
            }
            word_idx = (word_idx + 1) % BITS_PER_EVTCHN_WORD;
        }
        handled
    }
}

/// The shared_info page as real atomics, aligned like the page it stands
/// for: what the userspace backend can view the guest's page as, and what
/// the tests use.
#[cfg(target_has_atomic = "64")]
#[repr(C, align(4096))]
pub struct AtomicPage {
    pub words: [AtomicU64; PAGE_WORDS],
}

#[cfg(target_has_atomic = "64")]
const _: () = assert!(size_of::<AtomicPage>() == 4096);

#[cfg(target_has_atomic = "64")]
impl AtomicPage {
    /// A zeroed page: every port clear and unmasked, no upcall pending.
    pub const fn new() -> Self {
        Self { words: [const { AtomicU64::new(0) }; PAGE_WORDS] }
    }
}

#[cfg(target_has_atomic = "64")]
impl Default for AtomicPage {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(target_has_atomic = "64")]
impl EventWords for [AtomicU64; PAGE_WORDS] {
    #[inline(always)]
    fn load(&self, word: usize) -> u64 {
        self.get(word).map_or(0, |w| w.load(Ordering::SeqCst))
    }
    #[inline(always)]
    fn fetch_or(&self, word: usize, bits: u64) -> u64 {
        self.get(word).map_or(0, |w| w.fetch_or(bits, Ordering::SeqCst))
    }
    #[inline(always)]
    fn fetch_and(&self, word: usize, bits: u64) -> u64 {
        self.get(word).map_or(0, |w| w.fetch_and(bits, Ordering::SeqCst))
    }
    #[inline(always)]
    fn swap(&self, word: usize, value: u64) -> u64 {
        self.get(word).map_or(0, |w| w.swap(value, Ordering::SeqCst))
    }
}

#[cfg(target_has_atomic = "64")]
impl EventWords for AtomicPage {
    #[inline(always)]
    fn load(&self, word: usize) -> u64 {
        self.words.load(word)
    }
    #[inline(always)]
    fn fetch_or(&self, word: usize, bits: u64) -> u64 {
        self.words.fetch_or(word, bits)
    }
    #[inline(always)]
    fn fetch_and(&self, word: usize, bits: u64) -> u64 {
        self.words.fetch_and(word, bits)
    }
    #[inline(always)]
    fn swap(&self, word: usize, value: u64) -> u64 {
        self.words.swap(word, value)
    }
}
