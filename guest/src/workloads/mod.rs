//! The workloads. Each runs at CPL3 on every vCPU in three phases separated
//! by barriers: vCPU 0 binds the ports (`prepare`), every vCPU plays its
//! part (`run`), then vCPU 0 drains, counts losses and resets the event
//! channels, checking that every port it used is closed afterwards.

mod backend;
mod callback;
mod fanout;
mod flood;
mod fuzz;
mod hostile;
mod mask;
mod pingpong;
mod ports;
mod rebind;

use core::sync::atomic::{
    AtomicU32, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};

use xevtchn_common::{
    guest_abi::{Params, workload},
    xen::evtchn::EVTCHNSTAT_closed,
};

use crate::{
    arch::cpu::rdtsc,
    errors::{self, Error},
    events::{self, BOUND},
    report, sync,
    xen::ops,
};

/// Ports a workload set up, in the order it chose; read by every vCPU.
pub static PORTS: [AtomicU32; MAX_PORTS] = [const { AtomicU32::new(0) }; MAX_PORTS];
pub static PORT_COUNT: AtomicU32 = AtomicU32::new(0);
const MAX_PORTS: usize = 32 * 32;
/// TSC at which a `--duration` run ends (0: run `count` sends).
static END_TSC: AtomicU64 = AtomicU64::new(0);
/// How long to wait for an event that must come.
pub const EVENT_TIMEOUT_MS: u64 = 2000;

pub fn run(vcpu: u32, params: &Params) -> Result<(), Error> {
    let needed = match params.workload {
        workload::HOSTILE | workload::BACKEND => 1,
        workload::PINGPONG
        | workload::FLOOD
        | workload::FANOUT
        | workload::MASK
        | workload::REBIND
        | workload::CALLBACK
        | workload::PORTS => 2,
        workload::FUZZ => 3,
        _ => return Err(errors::UNKNOWN_WORKLOAD),
    };
    if params.vcpus < needed {
        return Err(errors::TOO_FEW_VCPUS);
    }
    if vcpu == 0 {
        // A failed set-up must not leave the other vCPUs at the barrier.
        let prepared = prepare(params);
        if params.duration_tsc != 0 {
            END_TSC.store(rdtsc() + params.duration_tsc, Release);
        }
        sync::barrier(vcpu, params.vcpus);
        prepared?;
    } else {
        sync::barrier(vcpu, params.vcpus);
    }
    let counters = report::counters(vcpu);
    counters.play_start_tsc.store(rdtsc(), Relaxed);
    let ran = play(vcpu, params);
    counters.play_end_tsc.store(rdtsc(), Relaxed);
    sync::barrier(vcpu, params.vcpus);
    if vcpu == 0 {
        finish(vcpu, params)?;
    }
    ran
}

fn prepare(params: &Params) -> Result<(), Error> {
    match params.workload {
        workload::PINGPONG | workload::CALLBACK => pingpong::prepare(),
        workload::FLOOD => flood::prepare(params.vcpus),
        workload::FANOUT => fanout::prepare(params.vcpus),
        workload::MASK => mask::prepare(),
        workload::REBIND => rebind::prepare(params.vcpus),
        workload::BACKEND => backend::prepare(params),
        workload::PORTS => ports::prepare(params.vcpus),
        workload::FUZZ => fuzz::prepare(),
        _ => Ok(()),
    }
}

fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    match params.workload {
        workload::PINGPONG => pingpong::play(vcpu, params),
        workload::FLOOD => flood::play(vcpu, params),
        workload::FANOUT => fanout::play(vcpu, params),
        workload::MASK => mask::play(vcpu, params),
        workload::REBIND => rebind::play(vcpu, params),
        workload::CALLBACK => callback::play(vcpu, params),
        workload::HOSTILE => hostile::play(vcpu, params),
        workload::BACKEND => backend::play(vcpu, params),
        workload::PORTS => ports::play(vcpu, params),
        workload::FUZZ => fuzz::play(vcpu, params),
        _ => Err(errors::UNKNOWN_WORKLOAD),
    }
}

/// Waits for every used port to be consumed (the no-lost-wakeup check),
/// counts what never arrived as lost, then resets and checks the reset.
fn finish(vcpu: u32, params: &Params) -> Result<(), Error> {
    let ports = used_ports();
    let deadline = rdtsc() + EVENT_TIMEOUT_MS * params.tsc_per_ms;
    sync::wait_until(vcpu, deadline, || ports.clone().all(|p| events::unconsumed(p) == 0));
    let lost: u64 = ports.clone().map(events::unconsumed).sum();
    report::counters(vcpu).lost.fetch_add(lost, Relaxed);
    ops::reset().map_err(|e| errors::hypercall(errors::RESET, e))?;
    for port in ports {
        match ops::status(port) {
            Ok(status) if status.status == EVTCHNSTAT_closed => {}
            Ok(_) => return Err(errors::WRONG_STATUS),
            Err(e) => return Err(errors::hypercall(errors::STATUS, e)),
        }
    }
    Ok(())
}

/// Records a port bound to `vcpu` (or ANY_VCPU) for the run and the checks.
pub fn add_port(port: u32, vcpu: u32) {
    BOUND[port as usize % BOUND.len()].store(vcpu, Relaxed);
    events::note_bare_port(port, vcpu);
    let i = PORT_COUNT.fetch_add(1, Relaxed) as usize;
    PORTS[i % MAX_PORTS].store(port, Release);
}

pub fn port(i: usize) -> u32 {
    PORTS[i % MAX_PORTS].load(Acquire)
}

fn used_ports() -> impl Iterator<Item = u32> + Clone {
    (0..PORT_COUNT.load(Acquire) as usize).map(port)
}

pub fn bind_ipi(vcpu: u32) -> Result<u32, Error> {
    let port = ops::bind_ipi(vcpu).map_err(|e| errors::hypercall(errors::BIND, e))?;
    add_port(port, vcpu);
    Ok(port)
}

/// Waits until `vcpu`'s send number `done` is due, when the run paces its
/// senders (`Params::send_interval_tsc`), so that every backend carries
/// the same event load.
#[inline(always)]
pub fn pace(params: &Params, vcpu: u32, done: u64) {
    if params.send_interval_tsc == 0 {
        return;
    }
    let due = report::counters(vcpu).play_start_tsc.load(Relaxed) + done * params.send_interval_tsc;
    while rdtsc() < due {
        core::hint::spin_loop();
    }
}

/// Whether a sender should go on after `done` sends.
#[inline(always)]
pub fn more(params: &Params, done: u64) -> bool {
    if stop_requested() {
        return false;
    }
    match END_TSC.load(Relaxed) {
        0 => done < params.count,
        end => rdtsc() < end,
    }
}

/// Whether the VMM asked the guest to stop now (its user did).
fn stop_requested() -> bool {
    // SAFETY: the word lies in the Params page, which is RAM the VMM
    // writes; an aligned u64 read volatile, since the VMM may set it any time.
    unsafe { core::ptr::read_volatile(xevtchn_common::layout::STOP_REQUEST as *const u64) != 0 }
}

/// A deadline `EVENT_TIMEOUT_MS` from now.
pub fn event_deadline(params: &Params) -> u64 {
    rdtsc() + EVENT_TIMEOUT_MS * params.tsc_per_ms
}
