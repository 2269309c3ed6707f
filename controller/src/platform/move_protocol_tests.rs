//! The order `FastPath::retarget` moves a port in, checked against every
//! interleaving with a send of the doorbell program: no event is lost.
//!
//! A port moves from vCPU 0 to vCPU 1 (EVTCHNOP_bind_vcpu) while the guest
//! sends on it once. The guest has already bound the port to vCPU 1 (as
//! the built-in guest does before the hypercall), and its handler, like
//! Linux's, consumes only ports bound to its own vCPU. Steps, with the real
//! 2-level functions on a real page:
//! - the program: read the port's entry; `set_pending` on the vCPU read;
//!   leave (its grace-period count); then its ioeventfd injects through the
//!   port's route as it is at that moment;
//! - the mover: the hypervisor's own steps 4-5 on vCPU 1 (Domain::bind_vcpu);
//!   store the new entry; the grace period (waits for a program that is
//!   inside); steps 4-5 on vCPU 1 again (`announce_on`); the route moves to
//!   vCPU 1; then vCPU 0 and vCPU 1 are raised if their upcall is pending
//!   (the route-commit thread).
//!
//! Upcall handlers may also run between any two steps. At the end every
//! interrupted vCPU runs its handler until none is left, and the event must
//! have been consumed. The same search without the grace period, or
//! without the raises after the route moved, finds a lost event: the test
//! can fail.

use xevtchn_common::two_level::{AtomicPage, guest, is_pending, raise_on_vcpu, set_pending, upcall_pending};

const PORT: u32 = 5;
const OLD: u32 = 0;
const NEW: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    // The program.
    ReadEntry,
    SetPending,
    Leave,
    Inject,
    // The mover.
    HypervisorAnnounce,
    StoreEntry,
    GracePeriod,
    Announce,
    MoveRoute,
    RaiseBoth,
    // The guest.
    Handler(u32),
}

const PROGRAM: [Step; 4] = [Step::ReadEntry, Step::SetPending, Step::Leave, Step::Inject];

#[derive(Clone, Copy)]
struct Protocol {
    grace_period: bool,
    raise_after_route: bool,
}

struct World {
    page: Box<AtomicPage>,
    entry: u32,
    route: u32,
    read: Option<u32>,
    inside: bool,
    interrupted: [bool; 2],
}

impl World {
    fn new() -> Self {
        Self { page: Box::default(), entry: OLD, route: OLD, read: None, inside: false, interrupted: [false; 2] }
    }

    fn raise_if_pending(&mut self, vcpu: u32) {
        if upcall_pending(&*self.page, vcpu) {
            self.interrupted[vcpu as usize] = true;
        }
    }

    /// One run of vCPU `vcpu`'s handler, if it was interrupted.
    fn handler(&mut self, vcpu: u32) {
        if !std::mem::take(&mut self.interrupted[vcpu as usize]) {
            return;
        }
        guest::clear_upcall_pending(&*self.page, vcpu);
        let mut selector = guest::take_pending_sel(&*self.page, vcpu);
        while selector != 0 {
            let word = selector.trailing_zeros();
            selector &= selector - 1;
            let bits = guest::active_bits(&*self.page, word);
            // The port is bound to NEW: only NEW's handler consumes it.
            if vcpu == NEW && word == PORT / 64 && bits & (1 << (PORT % 64)) != 0 {
                guest::clear_pending(&*self.page, PORT);
            }
        }
    }

    fn run(&mut self, step: Step) {
        match step {
            Step::ReadEntry => {
                self.inside = true;
                self.read = Some(self.entry);
            }
            Step::SetPending => {
                let _ = set_pending(&*self.page, PORT, self.read.unwrap_or(OLD));
            }
            Step::Leave => self.inside = false,
            Step::Inject => self.interrupted[self.route as usize] = true,
            Step::HypervisorAnnounce | Step::Announce => {
                if raise_on_vcpu(&*self.page, PORT, NEW).must_raise() {
                    self.interrupted[NEW as usize] = true;
                }
            }
            Step::StoreEntry => self.entry = NEW,
            Step::GracePeriod => {}
            Step::MoveRoute => self.route = NEW,
            Step::RaiseBoth => {
                self.raise_if_pending(OLD);
                self.raise_if_pending(NEW);
            }
            Step::Handler(vcpu) => self.handler(vcpu),
        }
    }

    /// Handlers until no interrupt is left; then whether the event was lost.
    fn lost(mut self) -> bool {
        while self.interrupted.iter().any(|&i| i) {
            self.handler(OLD);
            self.handler(NEW);
        }
        is_pending(&*self.page, PORT)
    }
}

fn mover(p: Protocol) -> Vec<Step> {
    let mut steps = vec![Step::HypervisorAnnounce, Step::StoreEntry];
    if p.grace_period {
        steps.push(Step::GracePeriod);
    }
    steps.extend([Step::Announce, Step::MoveRoute]);
    if p.raise_after_route {
        steps.push(Step::RaiseBoth);
    }
    steps
}

/// Every interleaving of the program's and the mover's steps, with up to
/// one handler run of each vCPU anywhere; the grace period waits while the
/// program is inside.
fn interleavings(p: Protocol) -> Vec<Vec<Step>> {
    fn walk(
        program: &[Step],
        mover: &[Step],
        handlers: [bool; 2],
        inside: bool,
        prefix: &mut Vec<Step>,
        out: &mut Vec<Vec<Step>>,
    ) {
        if program.is_empty() && mover.is_empty() {
            out.push(prefix.clone());
        }
        if let Some((&next, rest)) = program.split_first() {
            prefix.push(next);
            let inside = match next {
                Step::ReadEntry => true,
                Step::Leave => false,
                _ => inside,
            };
            walk(rest, mover, handlers, inside, prefix, out);
            prefix.pop();
        }
        if let Some((&next, rest)) = mover.split_first()
            && !(next == Step::GracePeriod && inside)
        {
            prefix.push(next);
            walk(program, rest, handlers, inside, prefix, out);
            prefix.pop();
        }
        for vcpu in [OLD, NEW] {
            if handlers[vcpu as usize] && (!program.is_empty() || !mover.is_empty()) {
                let mut left = handlers;
                left[vcpu as usize] = false;
                prefix.push(Step::Handler(vcpu));
                walk(program, mover, left, inside, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    walk(&PROGRAM, &mover(p), [true; 2], false, &mut Vec::new(), &mut out);
    out
}

/// The first interleaving that loses the event under `p`, if any.
fn loss(p: Protocol) -> Option<Vec<Step>> {
    interleavings(p).into_iter().find(|steps| {
        let mut world = World::new();
        for &step in steps {
            world.run(step);
        }
        world.lost()
    })
}

#[test]
fn no_interleaving_of_a_send_with_a_move_loses_the_event() {
    let p = Protocol { grace_period: true, raise_after_route: true };
    assert!(interleavings(p).len() > 1000, "the search covers many orders");
    assert_eq!(loss(p), None);
}

#[test]
fn without_the_grace_period_a_send_is_lost() {
    let lost = loss(Protocol { grace_period: false, raise_after_route: true });
    let steps = lost.expect("a stale program marks the old vCPU after the announcement");
    let read = steps.iter().position(|&s| s == Step::ReadEntry);
    assert!(read < steps.iter().position(|&s| s == Step::StoreEntry), "{steps:?}");
}

#[test]
fn without_the_raise_after_the_route_moved_a_send_is_lost() {
    let lost = loss(Protocol { grace_period: true, raise_after_route: false });
    let steps = lost.expect("a send on the new entry injects through the old route");
    let inject = steps.iter().position(|&s| s == Step::Inject);
    assert!(inject < steps.iter().position(|&s| s == Step::MoveRoute), "{steps:?}");
}
