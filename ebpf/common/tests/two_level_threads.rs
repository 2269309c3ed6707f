//! The 2-level algorithm on real atomics under real concurrency: sender
//! threads hammer ports of two vCPUs with `set_pending`, a masker thread
//! masks and unmasks ports the way Linux does, and one handler thread per
//! vCPU consumes events like events_2l.c, but only when an upcall was
//! raised for its vCPU (an interrupt), never by polling the bitmaps.
//!
//! Checks: no event is left pending once every raised upcall has been
//! handled (no lost wakeup), and every send that was not coalesced was
//! consumed exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use xevtchn_common::two_level::guest::{self, ScanCursor, Unmask};
use xevtchn_common::two_level::{AtomicPage, Outcome, is_pending, set_pending, unmask, upcall_pending};
use xevtchn_common::xen::shared_info::EVTCHN_WORDS;

const VCPUS: u32 = 2;
/// One port in each of the 64 words, so that an event whose wakeup was lost
/// cannot be rescued by the scan of a neighbouring port in the same word.
const NR_TEST_PORTS: u32 = 64;
const SENDERS: usize = 3;
const SENDS_PER_SENDER: u64 = 300_000;

/// The i-th test port: word i, bit 5 + i % 50.
fn test_port(i: u32) -> u32 {
    i * 64 + 5 + i % 50
}

/// Test ports alternate between the vCPUs.
fn notify_vcpu(port: u32) -> u32 {
    (port / 64) % VCPUS
}

fn all_ports() -> impl Iterator<Item = u32> {
    (0..NR_TEST_PORTS).map(test_port)
}

struct Shared {
    page: AtomicPage,
    /// A latched upcall interrupt per vCPU (the LAPIC's IRR bit).
    irq: [AtomicBool; VCPUS as usize],
    /// Sends that set the pending bit, indexed by port.
    sent: Vec<AtomicU64>,
    /// Events handled, indexed by port.
    consumed: Vec<AtomicU64>,
    coalesced: AtomicU64,
    upcalls_raised: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn deliver(&self, outcome: Outcome, vcpu: u32) {
        assert!(!matches!(outcome, Outcome::InvalidPort | Outcome::InvalidVcpu));
        if outcome.must_raise() {
            self.upcalls_raised.fetch_add(1, Ordering::Relaxed);
            self.irq[vcpu as usize].store(true, Ordering::SeqCst);
        }
    }

    /// Linux's HVM unmask, falling back to EVTCHNOP_unmask.
    fn guest_unmask(&self, port: u32) {
        if guest::unmask(&self.page, port) == Unmask::NeedsHypercall {
            self.deliver(unmask(&self.page, port, notify_vcpu(port)), notify_vcpu(port));
        }
    }
}

/// xorshift64: cheap, deterministic per thread.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn random_port(state: &mut u64) -> u32 {
    test_port((next(state) % u64::from(NR_TEST_PORTS)) as u32)
}

fn sender(shared: &Shared, seed: u64) {
    let mut rng = seed;
    for n in 0..SENDS_PER_SENDER {
        // Give the handlers (2 cores, 6 threads) a chance to interleave.
        if n % 64 == 0 {
            thread::yield_now();
        }
        let port = random_port(&mut rng);
        let outcome = set_pending(&shared.page, port, notify_vcpu(port));
        if outcome == Outcome::Coalesced {
            shared.coalesced.fetch_add(1, Ordering::Relaxed);
        } else {
            shared.sent[port as usize].fetch_add(1, Ordering::Relaxed);
        }
        shared.deliver(outcome, notify_vcpu(port));
    }
}

fn masker(shared: &Shared, stop: &AtomicBool) {
    let mut rng = 0x9e37_79b9_7f4a_7c15;
    while !stop.load(Ordering::SeqCst) {
        let port = random_port(&mut rng);
        guest::mask(&shared.page, port);
        thread::yield_now();
        shared.guest_unmask(port);
    }
}

/// The vCPU's upcall handler, run for each latched interrupt
/// (__xen_evtchn_do_upcall + evtchn_2l_handle_events).
fn handler(shared: &Shared, vcpu: u32) {
    let mut local = [0u64; EVTCHN_WORDS];
    for port in all_ports() {
        if notify_vcpu(port) == vcpu {
            local[(port / 64) as usize] |= 1 << (port % 64);
        }
    }
    let mut cursor = ScanCursor::default();
    loop {
        if shared.irq[vcpu as usize].swap(false, Ordering::SeqCst) {
            loop {
                guest::clear_upcall_pending(&shared.page, vcpu);
                guest::scan(&shared.page, vcpu, &mut cursor, &local, |port| {
                    shared.consumed[port as usize].fetch_add(1, Ordering::Relaxed);
                });
                if !upcall_pending(&shared.page, vcpu) {
                    break;
                }
            }
        } else if shared.stop.load(Ordering::SeqCst) && !shared.irq[vcpu as usize].load(Ordering::SeqCst) {
            return;
        } else {
            thread::yield_now();
        }
    }
}

#[test]
fn every_send_is_consumed_once_or_coalesced_under_contention() {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        page: AtomicPage::new(),
        irq: [const { AtomicBool::new(false) }; VCPUS as usize],
        sent: (0..4096).map(|_| AtomicU64::new(0)).collect(),
        consumed: (0..4096).map(|_| AtomicU64::new(0)).collect(),
        coalesced: AtomicU64::new(0),
        upcalls_raised: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });

    let handlers: Vec<_> = (0..VCPUS)
        .map(|vcpu| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || handler(&shared, vcpu))
        })
        .collect();
    let masker_stop = Arc::new(AtomicBool::new(false));
    let masker_thread = {
        let shared = Arc::clone(&shared);
        let masker_stop = Arc::clone(&masker_stop);
        thread::spawn(move || masker(&shared, &masker_stop))
    };
    let senders: Vec<_> = (0..SENDERS)
        .map(|i| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || sender(&shared, 0x1234_5678 + i as u64 * 0x9e37_79b9))
        })
        .collect();

    for s in senders {
        s.join().expect("sender thread");
    }
    masker_stop.store(true, Ordering::SeqCst);
    masker_thread.join().expect("masker thread");
    // Every raise has happened; the handlers finish what is latched.
    shared.stop.store(true, Ordering::SeqCst);
    for h in handlers {
        h.join().expect("handler thread");
    }

    for port in all_ports() {
        assert!(!is_pending(&shared.page, port), "port {port} still pending: a wakeup was lost");
        let sent = shared.sent[port as usize].load(Ordering::SeqCst);
        let consumed = shared.consumed[port as usize].load(Ordering::SeqCst);
        assert_eq!(sent, consumed, "port {port}: {sent} sends set the pending bit, {consumed} were handled");
    }
    let total_sent: u64 = shared.sent.iter().map(|s| s.load(Ordering::SeqCst)).sum();
    let coalesced = shared.coalesced.load(Ordering::SeqCst);
    assert_eq!(total_sent + coalesced, SENDERS as u64 * SENDS_PER_SENDER);
    // With three senders on 64 ports, some sends must have merged and
    // some must have been delivered; otherwise the test did not contend.
    assert!(total_sent > 0 && coalesced > 0, "sent {total_sent}, coalesced {coalesced}");
    println!(
        "{total_sent} delivered, {coalesced} coalesced, {} upcalls raised in {:?}",
        shared.upcalls_raised.load(Ordering::SeqCst),
        started.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}
