//! Property test of the 2-level algorithm against a simple model: random
//! sequences of sends, guest masks and unmasks, EVTCHNOP_unmask, rebinds
//! (the port moves to another vCPU, then `raise_on_vcpu` on the new one)
//! and guest-side scans from several vCPUs, one step at a time.
//!
//! After every step it checks the no-lost-wakeup invariant: a pending,
//! unmasked port has its selector bit set and `evtchn_upcall_pending = 1`
//! on its vCPU, or that vCPU is in the middle of consuming it; and a set
//! `evtchn_upcall_pending` always has an interrupt on its way or a handler
//! running. At the end it unmasks everything, lets every vCPU handle its
//! interrupts, and checks that each send that was not coalesced was
//! consumed exactly once.

use proptest::prelude::*;
use xevtchn_common::two_level::guest::{self, ScanCursor, Unmask};
use xevtchn_common::two_level::{
    AtomicPage, EventWords, Outcome, is_masked, is_pending, pending_sel_word, raise_on_vcpu, set_pending, unmask,
    upcall_pending,
};
use xevtchn_common::xen::shared_info::EVTCHN_WORDS;

const VCPUS: usize = 4;
/// Ports sharing words and spread over several words (and the last one).
const PORTS: [u32; 8] = [1, 2, 63, 64, 65, 127, 2000, 4095];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScanState {
    /// Not in the upcall handler.
    Idle,
    /// Cleared evtchn_upcall_pending; about to take the selector.
    Begun,
    /// Took the selector; these words are still to be scanned.
    Taken(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Send(usize),
    GuestMask(usize),
    /// Linux's HVM unmask: clear the mask, and if pending re-mask and call
    /// EVTCHNOP_unmask.
    GuestUnmask(usize),
    /// EVTCHNOP_unmask straight away (a guest that never cleared the mask).
    HypercallUnmask(usize),
    /// Linux's rebind: mask, EVTCHNOP_bind_vcpu, unmask if it was unmasked.
    Rebind(usize, usize),
    /// The hypervisor moves the port without the guest masking it.
    RawRebind(usize, usize),
    /// One step of a vCPU's upcall handler.
    ScanStep(usize),
    /// A whole upcall handler run with `guest::scan`.
    Upcall(usize),
}

struct Model {
    page: Box<AtomicPage>,
    /// The hypervisor's notify vCPU of each port.
    notify: [u32; PORTS.len()],
    /// The guest's per-vCPU `cpu_evtchn_mask` (ports bound to that vCPU).
    local: [[u64; EVTCHN_WORDS]; VCPUS],
    /// An upcall interrupt is latched for the vCPU.
    irq: [bool; VCPUS],
    scan: [ScanState; VCPUS],
    cursor: [ScanCursor; VCPUS],
    /// Sends that were not coalesced (they set the pending bit).
    sent: [u64; PORTS.len()],
    consumed: [u64; PORTS.len()],
    /// Deliberately broken rebind, to show the invariant check can fail.
    skip_raise_on_rebind: bool,
}

fn bit(port: u32) -> (usize, u64) {
    ((port / 64) as usize, 1u64 << (port % 64))
}

impl Model {
    fn new() -> Self {
        let mut model = Model {
            page: Box::new(AtomicPage::new()),
            notify: [0; PORTS.len()],
            local: [[0; EVTCHN_WORDS]; VCPUS],
            irq: [false; VCPUS],
            scan: [ScanState::Idle; VCPUS],
            cursor: [ScanCursor::default(); VCPUS],
            sent: [0; PORTS.len()],
            consumed: [0; PORTS.len()],
            skip_raise_on_rebind: false,
        };
        for i in 0..PORTS.len() {
            model.bind_local(i, 0);
        }
        model
    }

    fn bind_local(&mut self, i: usize, vcpu: usize) {
        let (word, mask) = bit(PORTS[i]);
        for local in &mut self.local {
            local[word] &= !mask;
        }
        self.local[vcpu][word] |= mask;
        self.notify[i] = vcpu as u32;
    }

    fn index_of(port: u32) -> usize {
        PORTS.iter().position(|&p| p == port).expect("only model ports are ever pending")
    }

    /// Interrupt delivery: an outcome that raises latches the vCPU's vector.
    fn deliver(&mut self, outcome: Outcome, vcpu: u32) {
        assert!(!matches!(outcome, Outcome::InvalidPort | Outcome::InvalidVcpu), "{outcome:?}");
        if outcome.must_raise() {
            self.irq[vcpu as usize] = true;
        }
    }

    fn hypercall_unmask(&mut self, i: usize) {
        let outcome = unmask(&*self.page, PORTS[i], self.notify[i]);
        self.deliver(outcome, self.notify[i]);
    }

    fn guest_unmask(&mut self, i: usize) {
        if guest::unmask(&*self.page, PORTS[i]) == Unmask::NeedsHypercall {
            self.hypercall_unmask(i);
        }
    }

    /// EVTCHNOP_bind_vcpu as the hypervisor side does it: move, then re-run
    /// steps 4-5 on the new vCPU.
    fn move_port(&mut self, i: usize, vcpu: usize) {
        self.bind_local(i, vcpu);
        if !self.skip_raise_on_rebind {
            let outcome = raise_on_vcpu(&*self.page, PORTS[i], vcpu as u32);
            self.deliver(outcome, vcpu as u32);
        }
    }

    fn consume(&mut self, port: u32) {
        self.consumed[Self::index_of(port)] += 1;
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Send(i) => {
                let outcome = set_pending(&*self.page, PORTS[i], self.notify[i]);
                if outcome != Outcome::Coalesced {
                    self.sent[i] += 1;
                }
                self.deliver(outcome, self.notify[i]);
            }
            Op::GuestMask(i) => {
                guest::mask(&*self.page, PORTS[i]);
            }
            Op::GuestUnmask(i) => self.guest_unmask(i),
            Op::HypercallUnmask(i) => self.hypercall_unmask(i),
            Op::Rebind(i, vcpu) => {
                let was_masked = guest::mask(&*self.page, PORTS[i]);
                self.move_port(i, vcpu);
                if !was_masked {
                    self.guest_unmask(i);
                }
            }
            Op::RawRebind(i, vcpu) => self.move_port(i, vcpu),
            Op::ScanStep(v) => self.scan_step(v),
            Op::Upcall(v) => self.upcall(v),
        }
    }

    fn scan_step(&mut self, v: usize) {
        let vcpu = v as u32;
        let page = &*self.page;
        match self.scan[v] {
            ScanState::Idle => {
                if std::mem::take(&mut self.irq[v]) {
                    guest::clear_upcall_pending(page, vcpu);
                    self.scan[v] = ScanState::Begun;
                }
            }
            ScanState::Begun => self.scan[v] = ScanState::Taken(guest::take_pending_sel(page, vcpu)),
            ScanState::Taken(0) => {
                // Linux: `while (vcpu_info->evtchn_upcall_pending)`.
                self.scan[v] = if guest::clear_upcall_pending(page, vcpu) { ScanState::Begun } else { ScanState::Idle };
            }
            ScanState::Taken(words) => {
                let word = words.trailing_zeros();
                let active = guest::active_bits(page, word) & self.local[v][word as usize];
                let mut handled = Vec::new();
                for b in 0..64 {
                    let port = word * 64 + b;
                    if active & (1 << b) != 0 && guest::clear_pending(page, port) {
                        handled.push(port);
                    }
                }
                for port in handled {
                    self.consume(port);
                }
                self.scan[v] = ScanState::Taken(words & !(1 << word));
            }
        }
    }

    fn upcall(&mut self, v: usize) {
        if self.scan[v] != ScanState::Idle || !std::mem::take(&mut self.irq[v]) {
            return;
        }
        let vcpu = v as u32;
        let mut handled = Vec::new();
        for _ in 0..4 {
            guest::clear_upcall_pending(&*self.page, vcpu);
            guest::scan(&*self.page, vcpu, &mut self.cursor[v], &self.local[v], |port| handled.push(port));
            if !upcall_pending(&*self.page, vcpu) {
                break;
            }
        }
        for port in handled {
            self.consume(port);
        }
    }

    /// The no-lost-wakeup invariant; `Err` says which port or vCPU broke it.
    fn check(&self) -> Result<(), String> {
        let page = &*self.page;
        for (i, &port) in PORTS.iter().enumerate() {
            if !is_pending(page, port) || is_masked(page, port) {
                continue;
            }
            let v = self.notify[i] as usize;
            let (word, _) = bit(port);
            let sel = page.load(pending_sel_word(v as u32)) & (1 << word) != 0;
            let announced = sel && upcall_pending(page, v as u32);
            let being_consumed = match self.scan[v] {
                ScanState::Idle => false,
                ScanState::Begun => sel,
                ScanState::Taken(words) => words & (1 << word) != 0,
            };
            if !announced && !being_consumed {
                return Err(format!(
                    "port {port} is pending and unmasked on vCPU {v}, but selector={sel}, \
                     upcall_pending={}, handler={:?}",
                    upcall_pending(page, v as u32),
                    self.scan[v]
                ));
            }
        }
        for v in 0..VCPUS {
            if upcall_pending(page, v as u32) && !self.irq[v] && self.scan[v] == ScanState::Idle {
                return Err(format!("vCPU {v} has evtchn_upcall_pending set but no interrupt and no handler"));
            }
        }
        Ok(())
    }

    /// Unmask everything and let every vCPU run its handler until quiet.
    fn drain(&mut self) {
        for (i, &port) in PORTS.iter().enumerate() {
            if is_masked(&*self.page, port) {
                self.guest_unmask(i);
            }
        }
        for _ in 0..100 {
            for v in 0..VCPUS {
                self.scan_step(v);
            }
        }
        assert!(self.scan.iter().all(|s| *s == ScanState::Idle) && self.irq.iter().all(|i| !i));
    }
}

fn op() -> impl Strategy<Value = Op> {
    let port = 0..PORTS.len();
    let vcpu = 0..VCPUS;
    prop_oneof![
        6 => port.clone().prop_map(Op::Send),
        1 => port.clone().prop_map(Op::GuestMask),
        1 => port.clone().prop_map(Op::GuestUnmask),
        1 => port.clone().prop_map(Op::HypercallUnmask),
        1 => (port.clone(), vcpu.clone()).prop_map(|(p, v)| Op::Rebind(p, v)),
        1 => (port, vcpu.clone()).prop_map(|(p, v)| Op::RawRebind(p, v)),
        6 => vcpu.clone().prop_map(Op::ScanStep),
        2 => vcpu.prop_map(Op::Upcall),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_wakeup_is_lost_and_every_send_is_consumed_once(ops in prop::collection::vec(op(), 1..200)) {
        let mut model = Model::new();
        for (step, op) in ops.iter().enumerate() {
            model.apply(op);
            if let Err(broken) = model.check() {
                prop_assert!(false, "after step {step} ({op:?}): {broken}");
            }
        }
        model.drain();
        for (i, &port) in PORTS.iter().enumerate() {
            prop_assert!(!is_pending(&*model.page, port), "port {port} still pending after the drain");
            prop_assert_eq!(model.sent[i], model.consumed[i], "port {}: sends vs. consumed", port);
        }
    }
}

/// The checker is not vacuous: a rebind that forgets `raise_on_vcpu` loses
/// the wakeup of an event pending on the old vCPU.
#[test]
fn invariant_check_catches_a_rebind_without_raise() {
    let mut model = Model::new();
    model.skip_raise_on_rebind = true;
    model.apply(&Op::Send(0)); // port 1 pending on vCPU 0, upcall raised there
    model.apply(&Op::RawRebind(0, 2));
    assert!(model.check().unwrap_err().contains("port 1"));
}

/// And the end-of-run accounting is not vacuous either: the drain cannot
/// consume an event whose wakeup was lost.
#[test]
fn drain_leaves_an_event_whose_wakeup_was_lost() {
    let mut model = Model::new();
    model.skip_raise_on_rebind = true;
    model.apply(&Op::Send(0));
    model.apply(&Op::RawRebind(0, 2));
    model.drain();
    assert!(is_pending(&*model.page, PORTS[0]));
    assert_eq!((model.sent[0], model.consumed[0]), (1, 0));
}
