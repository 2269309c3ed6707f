//! Each outcome of the 2-level algorithm, one step at a time, and the
//! guest-side helpers (mask, unmask, Linux's round-robin scan).

use std::sync::atomic::Ordering;

use xevtchn_common::two_level::guest::{self, ScanCursor, Unmask};
use xevtchn_common::two_level::*;
use xevtchn_common::xen::shared_info::EVTCHN_WORDS;

fn page() -> AtomicPage {
    AtomicPage::new()
}

fn sel(words: &AtomicPage, vcpu: u32) -> u64 {
    words.load(pending_sel_word(vcpu))
}

#[test]
fn word_indices_match_the_shared_info_layout() {
    assert_eq!(PENDING_BASE, 0x800 / 8);
    assert_eq!(MASK_BASE, 0xa00 / 8);
    assert_eq!(pending_sel_word(0), 1);
    assert_eq!(pending_sel_word(31), 31 * 8 + 1);
    assert_eq!(upcall_word(3), 24);
    assert_eq!(pending_word(4095), PENDING_BASE + 63);
    assert_eq!(mask_word(64), MASK_BASE + 1);
    assert_eq!(UPCALL_PENDING_BIT, 1);
    assert_eq!(UPCALL_MASK_BITS, 0xff00);
}

#[test]
fn vcpu_infos_from_32_on_follow_the_page() {
    assert_eq!(vcpu_info_word(31), 31 * 8);
    assert_eq!(vcpu_info_word(32), PAGE_WORDS);
    assert_eq!(pending_sel_word(33), PAGE_WORDS + 8 + 1);
    assert_eq!(upcall_word(MAX_VCPUS - 1), EVENT_WORDS - 8);
    for vcpu in 0..MAX_VCPUS {
        for w in 0..VCPU_INFO_WORDS {
            assert_eq!(vcpu_of_word(vcpu_info_word(vcpu) + w), Some(vcpu));
        }
    }
    // Neither the bitmaps nor the rest of the page belong to a vCPU.
    for word in SHARED_INFO_VCPUS as usize * VCPU_INFO_WORDS..PAGE_WORDS {
        assert_eq!(vcpu_of_word(word), None, "word {word}");
    }
    assert_eq!(vcpu_of_word(EVENT_WORDS), None);
}

/// The whole word space, as the VMM's shared_info does once vCPUs from 32
/// on have registered their vcpu_infos.
struct AllWords(Vec<std::sync::atomic::AtomicU64>);

impl EventWords for AllWords {
    fn load(&self, word: usize) -> u64 {
        self.0.get(word).map_or(0, |w| w.load(Ordering::SeqCst))
    }
    fn fetch_or(&self, word: usize, bits: u64) -> u64 {
        self.0.get(word).map_or(0, |w| w.fetch_or(bits, Ordering::SeqCst))
    }
    fn fetch_and(&self, word: usize, bits: u64) -> u64 {
        self.0.get(word).map_or(0, |w| w.fetch_and(bits, Ordering::SeqCst))
    }
    fn swap(&self, word: usize, value: u64) -> u64 {
        self.0.get(word).map_or(0, |w| w.swap(value, Ordering::SeqCst))
    }
}

#[test]
fn a_send_to_a_vcpu_above_31_marks_its_vcpu_info_past_the_page() {
    let w = AllWords((0..EVENT_WORDS).map(|_| Default::default()).collect());
    assert_eq!(set_pending(&w, 130, 40), Outcome::UpcallRaised);
    assert!(upcall_pending(&w, 40));
    assert_eq!(w.load(pending_sel_word(40)), 1 << 2);
    // Nothing of it landed in the page's vcpu_infos.
    assert!((0..SHARED_INFO_VCPUS as usize * VCPU_INFO_WORDS).all(|i| w.load(i) == 0));
    assert!(guest::clear_upcall_pending(&w, 40));
    assert_eq!(guest::take_pending_sel(&w, 40), 1 << 2);
    assert_eq!(set_pending(&w, 131, MAX_VCPUS - 1), Outcome::UpcallRaised);
    assert_eq!(set_pending(&w, 132, MAX_VCPUS), Outcome::InvalidVcpu);
}

#[test]
fn a_view_of_the_page_alone_keeps_vcpus_above_31_out_of_it() {
    // The pending bit is the page's; the vcpu_info is not there to mark.
    let w = page();
    set_pending(&w, 7, 32);
    assert!(is_pending(&w, 7));
    assert!((0..SHARED_INFO_VCPUS as usize * VCPU_INFO_WORDS).all(|i| w.load(i) == 0));
}

#[test]
fn first_send_raises_the_upcall() {
    let w = page();
    assert_eq!(set_pending(&w, 70, 2), Outcome::UpcallRaised);
    assert!(is_pending(&w, 70));
    assert_eq!(sel(&w, 2), 1 << 1);
    assert!(upcall_pending(&w, 2));
    assert!(!upcall_pending(&w, 0));
}

#[test]
fn second_send_coalesces() {
    let w = page();
    set_pending(&w, 5, 0);
    assert_eq!(set_pending(&w, 5, 0), Outcome::Coalesced);
}

#[test]
fn masked_port_stays_pending_without_selector() {
    let w = page();
    guest::mask(&w, 9);
    assert_eq!(set_pending(&w, 9, 1), Outcome::Masked);
    assert!(is_pending(&w, 9));
    assert_eq!(sel(&w, 1), 0);
    assert!(!upcall_pending(&w, 1));
}

#[test]
fn another_port_in_the_same_word_finds_the_selector_set() {
    let w = page();
    set_pending(&w, 1, 0);
    assert_eq!(set_pending(&w, 2, 0), Outcome::SelectorAlreadySet);
}

#[test]
fn another_word_finds_the_upcall_already_pending() {
    let w = page();
    set_pending(&w, 1, 0);
    assert_eq!(set_pending(&w, 64, 0), Outcome::UpcallAlreadyPending);
    assert_eq!(sel(&w, 0), 0b11);
}

#[test]
fn upcall_mask_byte_is_ignored_and_preserved() {
    // HVM: Xen's hvm_assert_evtchn_irq and KVM's kvm_xen_set_evtchn_fast
    // never read evtchn_upcall_mask.
    let w = page();
    w.fetch_or(upcall_word(0), 1 << 8);
    assert_eq!(set_pending(&w, 3, 0), Outcome::UpcallRaised);
    assert_eq!(w.load(upcall_word(0)), (1 << 8) | 1);
}

#[test]
fn invalid_port_and_vcpu_touch_nothing() {
    let w = page();
    assert_eq!(set_pending(&w, NR_PORTS, 0), Outcome::InvalidPort);
    assert_eq!(set_pending(&w, 1, MAX_VCPUS), Outcome::InvalidVcpu);
    assert_eq!(raise_on_vcpu(&w, NR_PORTS, 0), Outcome::InvalidPort);
    assert_eq!(unmask(&w, 1, MAX_VCPUS), Outcome::InvalidVcpu);
    assert!(w.words.iter().all(|word| word.load(Ordering::SeqCst) == 0));
}

#[test]
fn unmask_of_a_pending_masked_port_raises() {
    let w = page();
    guest::mask(&w, 200);
    set_pending(&w, 200, 4);
    assert_eq!(unmask(&w, 200, 4), Outcome::UpcallRaised);
    assert!(!is_masked(&w, 200));
    assert_eq!(sel(&w, 4), 1 << (200 / 64));
}

#[test]
fn unmask_of_an_unmasked_port_does_nothing_like_xen() {
    // evtchn_2l_unmask: test_and_clear_bit(mask) must return true.
    let w = page();
    set_pending(&w, 7, 0);
    guest::clear_upcall_pending(&w, 0);
    guest::take_pending_sel(&w, 0);
    assert_eq!(unmask(&w, 7, 0), Outcome::NotMasked);
    assert_eq!(sel(&w, 0), 0);
}

#[test]
fn unmask_of_a_masked_idle_port_reports_not_pending() {
    let w = page();
    guest::mask(&w, 7);
    assert_eq!(unmask(&w, 7, 0), Outcome::NotPending);
    assert!(!is_masked(&w, 7));
}

#[test]
fn raise_on_vcpu_announces_a_pending_port_on_the_new_vcpu() {
    let w = page();
    set_pending(&w, 100, 0);
    assert_eq!(raise_on_vcpu(&w, 100, 3), Outcome::UpcallRaised);
    assert_eq!(sel(&w, 3), 1 << 1);
    assert_eq!(raise_on_vcpu(&w, 101, 3), Outcome::NotPending);
    guest::mask(&w, 100);
    assert_eq!(raise_on_vcpu(&w, 100, 5), Outcome::Masked);
}

#[test]
fn guest_unmask_of_a_pending_port_remasks_and_asks_for_the_hypercall() {
    let w = page();
    guest::mask(&w, 12);
    set_pending(&w, 12, 0);
    assert_eq!(guest::unmask(&w, 12), Unmask::NeedsHypercall);
    assert!(is_masked(&w, 12));
    assert_eq!(unmask(&w, 12, 0), Outcome::UpcallRaised);
    guest::mask(&w, 13);
    assert_eq!(guest::unmask(&w, 13), Unmask::Done);
    assert!(!is_masked(&w, 13));
}

fn all_local() -> [u64; EVTCHN_WORDS] {
    [u64::MAX; EVTCHN_WORDS]
}

#[test]
fn scan_consumes_each_pending_port_once_and_leaves_masked_ones() {
    let w = page();
    for port in [1, 63, 64, 4095] {
        set_pending(&w, port, 0);
    }
    guest::mask(&w, 500);
    set_pending(&w, 500, 0);
    assert!(guest::clear_upcall_pending(&w, 0));
    let mut seen = [0u32; 8];
    let mut n = 0;
    let handled = guest::scan(&w, 0, &mut ScanCursor::default(), &all_local(), |p| {
        seen[n] = p;
        n += 1;
    });
    assert_eq!(handled, 4);
    assert_eq!(&seen[..4], &[1, 63, 64, 4095]);
    assert!(is_pending(&w, 500));
    assert_eq!(sel(&w, 0), 0);
}

#[test]
fn scan_is_round_robin_from_the_cursor() {
    let w = page();
    for port in [2, 10, 70] {
        set_pending(&w, port, 0);
    }
    let mut cursor = ScanCursor { word: 0, bit: 5 };
    let mut order = [0u32; 3];
    let mut n = 0;
    guest::scan(&w, 0, &mut cursor, &all_local(), |p| {
        order[n] = p;
        n += 1;
    });
    assert_eq!(order, [10, 70, 2]);
    assert_eq!(cursor, ScanCursor { word: 0, bit: 3 });
}

#[test]
fn scan_skips_ports_bound_elsewhere() {
    let w = page();
    set_pending(&w, 3, 0);
    set_pending(&w, 4, 0);
    let mut local = [0u64; EVTCHN_WORDS];
    local[0] = 1 << 4;
    let mut handled_port = None;
    let n = guest::scan(&w, 0, &mut ScanCursor::default(), &local, |p| handled_port = Some(p));
    assert_eq!((n, handled_port), (1, Some(4)));
    assert!(is_pending(&w, 3));
}

#[test]
fn send_after_the_guest_took_the_selector_raises_again() {
    let w = page();
    assert_eq!(set_pending(&w, 1, 0), Outcome::UpcallRaised);
    guest::clear_upcall_pending(&w, 0);
    guest::scan(&w, 0, &mut ScanCursor::default(), &all_local(), |_| {});
    assert_eq!(set_pending(&w, 1, 0), Outcome::UpcallRaised);
}

#[test]
fn out_of_page_words_are_ignored_by_the_atomic_page() {
    let w = page();
    assert_eq!(w.fetch_or(PAGE_WORDS, 1), 0);
    assert_eq!(w.swap(usize::MAX, 1), 0);
    assert_eq!(w.load(PAGE_WORDS), 0);
}
