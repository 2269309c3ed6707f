//! Random calls at the hypervisor while vCPUs 0 and 1 play pingpong.
//!
//! Every other vCPU, from `Params::seed`, throws hypercalls (any number, in
//! and out of range, every sub-op, random and boundary arguments, pointers
//! into its scratch pages, across their end, past the end of RAM, into
//! non-RAM, into the harmless parts of shared_info and the hypercall page,
//! unmapped), writes and reads of MSRs around Xen's, and accesses to the
//! doorbell and hypercall windows (aligned or not, reads, 1 to 8 bytes).
//! Each hypercall's answer must be a success or a Xen errno; the pingpong
//! pair must lose nothing.
//!
//! What a guest may legitimately do to itself is left out, since it would
//! break the pingpong pair by Xen's own rules: closing, moving or sending
//! on the pair's ports, resetting the port table, moving shared_info, the
//! callback or the pair's upcall vectors, shutting down or blocking, and
//! pointing Xen's output into memory the guest uses.

use core::sync::atomic::{
    AtomicBool,
    Ordering::{Acquire, Relaxed, Release},
};

use xevtchn_common::{
    doorbell::{DOORBELL_BASE, DOORBELL_STRIDE},
    guest_abi::{Params, error::FUZZ_ANSWER},
    layout::{HYPERCALL_BASE, HYPERCALL_SIZE, RAM_SIZE, SHARED_INFO_GPA},
    two_level::NR_PORTS,
    xen::{
        errno,
        evtchn::*,
        hvm::{HVM_PARAM_CALLBACK_IRQ, HVMOP_set_evtchn_upcall_vector, HVMOP_set_param, MIN_UPCALL_VECTOR},
        hypercall::*,
        memory::XENMEM_add_to_physmap,
        version::{XENVER_capabilities, XENVER_changeset, XENVER_commandline, XENVER_compile_info},
    },
};

use super::{pingpong, port};
use crate::{
    arch::interrupts::{rdmsr_guarded, wrmsr_guarded},
    errors, report,
    xen::{hypercall, setup::HYPERCALL_MSR},
};

/// Set when the pingpong pair has played its rounds: the fuzzers stop.
static PAIR_DONE: AtomicBool = AtomicBool::new(false);

/// Two pages per fuzzing vCPU for hypercall arguments (and for Xen's
/// answers): random bytes, and the second page for pointers across the end
/// of the first.
#[repr(C, align(4096))]
struct Scratch([[u8; 8192]; MAX_FUZZERS]);
const MAX_FUZZERS: usize = 30;
static mut SCRATCH: Scratch = Scratch([[0; 8192]; MAX_FUZZERS]);

/// Hypercalls the guest's own code uses after set-up go through stubs 32
/// (event_channel_op) and the send path behind stub 63: the stubs of 0..32
/// are free for Xen to scribble on.
const FREE_STUBS: u64 = 32 * 32;
/// Above the identity map (4 GiB): no page table maps it.
const UNMAPPED: u64 = 0x10_0000_0000;
/// Identity-mapped, but no memslot: neither RAM nor MMIO of ours.
const NOT_RAM: u64 = 0x8000_0000;

pub fn prepare() -> Result<(), errors::Error> {
    pingpong::prepare()
}

pub fn play(vcpu: u32, params: &Params) -> Result<(), errors::Error> {
    match vcpu {
        0 => {
            let served = pingpong::serve(vcpu, params, port(0), port(1));
            PAIR_DONE.store(true, Release);
            served
        }
        1 => pingpong::answer(vcpu, params, port(0), port(1)),
        _ => {
            fuzz(vcpu, params);
            Ok(())
        }
    }
}

/// xorshift64*: small, and the same sequence for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn fuzz(vcpu: u32, params: &Params) {
    let slot = (vcpu as usize - 2) % MAX_FUZZERS;
    // SAFETY: each fuzzing vCPU owns its slot of SCRATCH.
    let scratch = unsafe { core::ptr::addr_of_mut!(SCRATCH.0[slot]) as u64 };
    let mut rng = Rng((params.seed ^ u64::from(vcpu).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
    let counters = report::counters(vcpu);
    let protected = [port(0), port(1)];
    let mut own = OwnPorts::new();
    while !PAIR_DONE.load(Acquire) {
        counters.fuzz_calls.fetch_add(1, Relaxed);
        match rng.below(10) {
            0..=5 => {
                // Half well-formed event-channel calls on this vCPU's own
                // ports (to get past validation), half anything.
                let call = if rng.below(2) == 0 {
                    Some(event_channel_call(&mut rng, scratch, &mut own, params.vcpus))
                } else {
                    random_hypercall(&mut rng, scratch, &protected, params.vcpus)
                };
                if let Some((nr, cmd, ret)) = call {
                    // The host counts every EVTCHNOP_send it is asked for.
                    if nr == __HYPERVISOR_event_channel_op && cmd == u64::from(EVTCHNOP_send) {
                        counters.sent.fetch_add(1, Relaxed);
                    }
                    if ret >= 0 {
                        counters.fuzz_accepted.fetch_add(1, Relaxed);
                    }
                    if !is_xen_answer(ret) {
                        errors::record(vcpu, FUZZ_ANSWER | ((nr & 0xff) << 8));
                    }
                }
            }
            6 | 7 => {
                if !random_msr(&mut rng, scratch) {
                    counters.fuzz_faults.fetch_add(1, Relaxed);
                }
            }
            _ => {
                if random_window_access(&mut rng, &protected) {
                    counters.sent.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

/// Ports this fuzzing vCPU bound (the pair's are never among them: Xen
/// does not hand out a port twice), the latest 64.
struct OwnPorts {
    ports: [u32; 64],
    count: usize,
}

impl OwnPorts {
    const fn new() -> Self {
        Self { ports: [0; 64], count: 0 }
    }

    fn add(&mut self, port: u32) {
        self.ports[self.count % 64] = port;
        self.count += 1;
    }

    /// One of them, or a port nobody may have bound (the table's top).
    fn any(&self, rng: &mut Rng) -> u32 {
        match self.count.min(64) {
            0 => NR_PORTS - 1,
            n => self.ports[rng.below(n as u64) as usize],
        }
    }
}

/// A well-formed EVTCHNOP on this vCPU's own ports, as a guest's driver
/// makes them (Xen's public/event_channel.h layouts); the ports it binds
/// are kept for later calls. Returns (nr, cmd, answer).
fn event_channel_call(rng: &mut Rng, scratch: u64, own: &mut OwnPorts, vcpus: u32) -> (u32, u64, i64) {
    let at = scratch + rng.below(4096 - 64) / 8 * 8;
    let vcpu = rng.below(u64::from(vcpus) + 1) as u32;
    let self_id = u32::from(xevtchn_common::xen::hypercall::DOMID_SELF);
    // (cmd, the struct's words, the word where Xen writes a new port)
    let (cmd, words, new_port): (u32, [u32; 3], Option<u64>) = match rng.below(9) {
        0 => (EVTCHNOP_alloc_unbound, [self_id | (self_id << 16), 0, 0], Some(4)),
        1 => (EVTCHNOP_bind_ipi, [vcpu, 0, 0], Some(4)),
        2 => (EVTCHNOP_bind_virq, [rng.below(24) as u32, vcpu, 0], Some(8)),
        3 => (EVTCHNOP_bind_interdomain, [self_id, own.any(rng), 0], Some(8)),
        4 => (EVTCHNOP_close, [own.any(rng), 0, 0], None),
        5 => (EVTCHNOP_bind_vcpu, [own.any(rng), vcpu, 0], None),
        6 => (EVTCHNOP_unmask, [own.any(rng), 0, 0], None),
        7 => (EVTCHNOP_status, [self_id, own.any(rng), 0], None),
        _ => (EVTCHNOP_send, [own.any(rng), 0, 0], None),
    };
    for (i, word) in words.iter().enumerate() {
        // SAFETY: inside this vCPU's scratch pages (at + 12 < scratch + 4096).
        unsafe { core::ptr::write_volatile((at + i as u64 * 4) as *mut u32, *word) };
    }
    let ret = hypercall::call(__HYPERVISOR_event_channel_op, u64::from(cmd), at, 0, 0, 0);
    if ret == 0
        && let Some(offset) = new_port
    {
        // SAFETY: as above; Xen wrote the new port there.
        own.add(unsafe { core::ptr::read_volatile((at + offset) as *const u32) });
    }
    (__HYPERVISOR_event_channel_op, u64::from(cmd), ret)
}

/// A success (any value >= 0) or minus one of Xen's errnos.
fn is_xen_answer(ret: i64) -> bool {
    ret >= 0 || errno::ALL.iter().any(|&(_, e)| i64::from(e) == -ret)
}

/// The 64 bytes at `at` (when inside the scratch pages): random, with
/// boundary values among them, and none of the pair's ports (as a u32 at
/// any aligned offset: any field may be a port). Only so much, since this
/// vCPU runs at CPL0, which this host kind emulates.
fn fill(at: u64, scratch: u64, rng: &mut Rng, protected: &[u32; 2], vcpus: u32) {
    // Saturating: a pointer near u64::MAX must not wrap into the pages.
    if at < scratch || at.saturating_add(64) > scratch + 8192 {
        return;
    }
    let at = at & !3;
    let boundaries = [0, 1, vcpus, vcpus + 1, 31, 32, NR_PORTS - 1, NR_PORTS, u32::MAX, 0x7ff0, 0x7ff4];
    for i in 0..16 {
        let mut word = match rng.below(4) {
            0 => boundaries[rng.below(boundaries.len() as u64) as usize],
            1 => rng.below(u64::from(NR_PORTS)) as u32,
            _ => rng.next() as u32,
        };
        if protected.contains(&word) {
            word = NR_PORTS - 1;
        }
        // SAFETY: inside this vCPU's two scratch pages (checked above).
        unsafe { core::ptr::write_volatile((at + i * 4) as *mut u32, word) };
    }
}

/// A pointer argument: somewhere a guest might point, never at memory the
/// guest relies on.
fn pointer(rng: &mut Rng, scratch: u64) -> u64 {
    match rng.below(9) {
        0..=2 => scratch + rng.below(4096 - 64) / 8 * 8,
        // Across the end of the first page (into the second).
        3 => scratch + 4096 - 1 - rng.below(15),
        4 => RAM_SIZE - 1 - rng.below(15),
        5 => NOT_RAM + rng.below(1 << 20),
        // The tail of shared_info: wallclock and arch fields the guest never reads.
        6 => SHARED_INFO_GPA + 0xc00 + rng.below(0x3c0) / 8 * 8,
        7 => hypercall::page_address() + rng.below(FREE_STUBS - 64),
        _ => [0, 8, UNMAPPED, UNMAPPED + rng.below(1 << 30), u64::MAX, 0xffff_f000][rng.below(6) as usize],
    }
}

/// One hypercall through the MMIO window (any number, not only the
/// stubs'); None when it was one a guest would only make to hurt itself.
fn random_hypercall(rng: &mut Rng, scratch: u64, protected: &[u32; 2], vcpus: u32) -> Option<(u32, u64, i64)> {
    const KNOWN: [u32; 10] = [
        __HYPERVISOR_memory_op,
        __HYPERVISOR_xen_version,
        __HYPERVISOR_event_channel_op,
        __HYPERVISOR_hvm_op,
        __HYPERVISOR_sched_op,
        __HYPERVISOR_vcpu_op,
        __HYPERVISOR_console_io,
        __HYPERVISOR_set_timer_op,
        __HYPERVISOR_grant_table_op,
        __HYPERVISOR_physdev_op,
    ];
    let nr = if rng.below(4) == 0 {
        rng.below(HYPERCALL_SIZE / 8) as u32
    } else {
        KNOWN[rng.below(KNOWN.len() as u64) as usize]
    };
    let cmd = if rng.below(8) == 0 { rng.next() } else { rng.below(40) };
    let args = [cmd, pointer(rng, scratch), pointer(rng, scratch), rng.next(), rng.next()];
    fill(args[1], scratch, rng, protected, vcpus);
    fill(args[2], scratch, rng, protected, vcpus);
    if harms_itself(nr, cmd, args[1], scratch, vcpus) {
        return None;
    }
    let ret: i64;
    // SAFETY: an 8-byte read of the hypercall window (MMIO, identity-mapped),
    // which the VMM completes with the call's result; the argument registers
    // are inputs only, and Xen writes only where they point (see `pointer`).
    unsafe {
        core::arch::asm!(
            "mov rax, [{addr}]",
            addr = in(reg) HYPERCALL_BASE + u64::from(nr) * 8,
            in("rdi") args[0], in("rsi") args[1], in("rdx") args[2], in("r10") args[3], in("r8") args[4],
            lateout("rax") ret,
            options(nostack),
        );
    }
    Some((nr, cmd, ret))
}

/// Calls that would break the pingpong pair by Xen's rules, not by a bug.
// Xen's constant names, matched as patterns.
#[allow(non_upper_case_globals)]
fn harms_itself(nr: u32, cmd: u64, arg: u64, scratch: u64, vcpus: u32) -> bool {
    let in_scratch = arg >= scratch && arg.saturating_add(16) <= scratch + 8192;
    // Memory the guest can read outside its scratch (the top of RAM, the
    // tail of shared_info, free stubs) may hold the pair's port numbers:
    // no port operation reads its argument there.
    let elsewhere_readable =
        !in_scratch && (arg < RAM_SIZE + 16 || (SHARED_INFO_GPA..SHARED_INFO_GPA + 4096 + 16).contains(&arg));
    // SAFETY: read only when inside this vCPU's scratch pages.
    let u32_at = |offset: u64| unsafe { core::ptr::read_volatile((arg + offset) as *const u32) };
    match nr {
        __HYPERVISOR_event_channel_op => cmd == u64::from(EVTCHNOP_reset) || elsewhere_readable,
        // xen_add_to_physmap { domid: u16, size: u16, space: u32, .. }: shared_info is space 0.
        __HYPERVISOR_memory_op => cmd == XENMEM_add_to_physmap && (!in_scratch || u32_at(4) == 0),
        __HYPERVISOR_hvm_op => match cmd {
            // xen_hvm_param { domid: u16, pad: u16, index: u32, value: u64 }
            HVMOP_set_param => !in_scratch || u32_at(4) == HVM_PARAM_CALLBACK_IRQ,
            // { vcpu: u32, vector: u8 }: the pair's vectors, or a vector
            // the guest has no handler for (it would fault on delivery).
            HVMOP_set_evtchn_upcall_vector => {
                !in_scratch || (u32_at(0) < vcpus && (u32_at(4) & 0xff) as u8 >= MIN_UPCALL_VECTOR)
            }
            _ => false,
        },
        // These write 64 to 1024 bytes where they point: outside the
        // scratch pages that may be the guest's own code (its hypercall
        // page's free stubs are a target) or data.
        __HYPERVISOR_xen_version => {
            !in_scratch
                && [XENVER_compile_info, XENVER_capabilities, XENVER_changeset, XENVER_commandline]
                    .contains(&(cmd as u32))
        }
        // Shutdown, block, poll and the vCPU's own up/down and vcpu_info:
        // not all are served yet, and each may stop a vCPU by design.
        __HYPERVISOR_sched_op | __HYPERVISOR_sched_op_compat | __HYPERVISOR_vcpu_op => true,
        _ => false,
    }
}

/// A write or read of an MSR around Xen's hypercall-page MSR; false when
/// it raised #GP (the access was refused, which a guest must survive).
fn random_msr(rng: &mut Rng, scratch: u64) -> bool {
    let xen = HYPERCALL_MSR.load(Relaxed);
    let msr = match rng.below(4) {
        0 => xen,
        1 => xen.wrapping_add(rng.below(16) as u32),
        2 => 0x4000_0000 + rng.below(0x200) as u32,
        _ => xen.wrapping_sub(1 + rng.below(16) as u32),
    };
    if rng.below(3) == 0 {
        return rdmsr_guarded(msr).is_some();
    }
    // Xen's MSR takes a page to fill: this vCPU's scratch, the page it
    // has, or no RAM at all. Any other page would be the guest's own code.
    let value = if msr == xen {
        match rng.below(3) {
            0 => scratch,
            1 => hypercall::page_address(),
            _ => NOT_RAM + rng.below(16) * 4096,
        }
    } else {
        rng.next()
    };
    wrmsr_guarded(msr, value)
}

/// A read or write of 1, 2, 4 or 8 bytes anywhere in the doorbell or
/// hypercall windows (aligned or not), never on the pair's doorbells or the
/// canary's. Returns whether it was a well-formed doorbell write: a send
/// (of a port that may or may not be bound), which the host counts as one.
fn random_window_access(rng: &mut Rng, protected: &[u32; 2]) -> bool {
    let doorbells = u64::from(NR_PORTS) * DOORBELL_STRIDE;
    let port_of = |gpa: u64| ((gpa.saturating_sub(DOORBELL_BASE)) / DOORBELL_STRIDE) as u32;
    let spared = |gpa: u64| {
        gpa >= DOORBELL_BASE && [port_of(gpa), port_of(gpa + 7)].iter().any(|p| *p == 0 || protected.contains(p))
    };
    if rng.below(4) == 0 {
        // A send through the doorbell, as the hypercall page's stub makes it.
        let port = 1 + rng.below(u64::from(NR_PORTS) - 1) as u32;
        if protected.contains(&port) {
            return false;
        }
        access(DOORBELL_BASE + u64::from(port) * DOORBELL_STRIDE, 2, true, u64::from(port));
        return true;
    }
    let gpa = if rng.below(4) == 0 {
        // Aligned reads of the hypercall window are hypercalls with
        // whatever the registers hold: reads there are misaligned.
        HYPERCALL_BASE + rng.below(HYPERCALL_SIZE - 8)
    } else {
        DOORBELL_BASE + rng.below(doorbells - 16)
    };
    let write = rng.below(3) != 0;
    if spared(gpa) || (!write && gpa < DOORBELL_BASE && gpa.is_multiple_of(8)) {
        return false;
    }
    let width = rng.below(4);
    let value = rng.next();
    access(gpa, width, write, value);
    // A 4-byte write of its own port number at a doorbell is a send.
    write
        && width == 2
        && gpa >= DOORBELL_BASE
        && (gpa - DOORBELL_BASE).is_multiple_of(DOORBELL_STRIDE)
        && value as u32 == port_of(gpa)
}

/// One MMIO access of 1 << `width` bytes. rax is given up: the VMM sets it
/// when a doorbell write exits (the send's errno), as for the stub.
fn access(gpa: u64, width: u64, write: bool, value: u64) {
    use core::arch::asm;
    // SAFETY: MMIO of the VMM's windows (identity-mapped, no memory behind
    // them): each access traps to KVM and touches no guest memory; rax is
    // declared clobbered.
    unsafe {
        match (width, write) {
            (0, true) => {
                asm!("mov byte ptr [{a}], {v}", a = in(reg) gpa, v = in(reg_byte) value as u8, out("rax") _, options(nostack))
            }
            (1, true) => {
                asm!("mov word ptr [{a}], {v:x}", a = in(reg) gpa, v = in(reg) value, out("rax") _, options(nostack))
            }
            (2, true) => {
                asm!("mov dword ptr [{a}], {v:e}", a = in(reg) gpa, v = in(reg) value, out("rax") _, options(nostack))
            }
            (_, true) => {
                asm!("mov qword ptr [{a}], {v}", a = in(reg) gpa, v = in(reg) value, out("rax") _, options(nostack))
            }
            (0, false) => asm!("mov al, byte ptr [{a}]", a = in(reg) gpa, out("rax") _, options(nostack)),
            (1, false) => asm!("mov ax, word ptr [{a}]", a = in(reg) gpa, out("rax") _, options(nostack)),
            (2, false) => asm!("mov eax, dword ptr [{a}]", a = in(reg) gpa, out("rax") _, options(nostack)),
            (_, false) => asm!("mov rax, qword ptr [{a}]", a = in(reg) gpa, out("rax") _, options(nostack)),
        }
    }
}
