//! vCPUs 0 and 1 answer each other: 0 sends on port A (bound to 1), 1
//! answers on port B (bound to 0), strictly alternating, so every event is
//! consumed exactly once and each consumption is a one-way latency sample.

use core::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Release},
};

use xevtchn_common::guest_abi::Params;

use super::{bind_ipi, event_deadline, more, port};
use crate::{
    errors::{self, Error},
    events::{self, SEEN},
    sync,
};

/// Rounds the server played, published when it stops (u64::MAX until then).
static ROUNDS: AtomicU64 = AtomicU64::new(u64::MAX);
/// Events consumed on the ping and pong ports before this round started.
static PING_BASE: AtomicU64 = AtomicU64::new(0);
static PONG_BASE: AtomicU64 = AtomicU64::new(0);

pub fn prepare() -> Result<(), Error> {
    bind_ipi(1)?;
    bind_ipi(0)?;
    new_round(port(0), port(1));
    Ok(())
}

/// Before a serve/answer pair starts, and before the barrier that starts
/// it: a ping may be consumed before the answering side looks.
pub fn new_round(ping: u32, pong: u32) {
    ROUNDS.store(u64::MAX, Release);
    PING_BASE.store(seen(ping), Release);
    PONG_BASE.store(seen(pong), Release);
}

pub fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    match vcpu {
        0 => serve(vcpu, params, port(0), port(1)),
        1 => answer(vcpu, params, port(0), port(1)),
        _ => Ok(()),
    }
}

/// vCPU 0: ping, wait for the pong, `count` times (or until the deadline).
pub fn serve(vcpu: u32, params: &Params, ping: u32, pong: u32) -> Result<(), Error> {
    let base = PONG_BASE.load(Acquire);
    let mut rounds = 0;
    let result = loop {
        if !more(params, rounds) {
            break Ok(());
        }
        if let Err(e) = events::send(vcpu, ping) {
            break Err(e);
        }
        rounds += 1;
        let answered = sync::wait_until(vcpu, event_deadline(params), || seen(pong) >= base + rounds);
        if !answered {
            break Err(errors::TIMEOUT);
        }
    };
    ROUNDS.store(rounds, Release);
    result
}

/// vCPU 1: answer every ping until vCPU 0 says how many there were.
pub fn answer(vcpu: u32, params: &Params, ping: u32, pong: u32) -> Result<(), Error> {
    let base = PING_BASE.load(Acquire);
    let mut answered = 0;
    loop {
        let finished = || ROUNDS.load(Acquire) == answered;
        let deadline = event_deadline(params);
        if !sync::wait_until(vcpu, deadline, || seen(ping) > base + answered || finished()) {
            return Err(errors::TIMEOUT);
        }
        if seen(ping) > base + answered {
            answered += 1;
            events::send(vcpu, pong)?;
        } else {
            return Ok(());
        }
    }
}

fn seen(port: u32) -> u64 {
    SEEN[port as usize % SEEN.len()].load(Acquire)
}
