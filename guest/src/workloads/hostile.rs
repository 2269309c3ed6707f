//! Bad hypercalls from the guest, each answered with the errno Xen gives
//! (xen/common/event_channel.c, xen/arch/x86/hvm/hvm.c), then proof that
//! the VM still delivers: a ping-pong round between vCPUs 0 and 1.

use xevtchn_common::{
    guest_abi::Params,
    xen::{
        errno::{EEXIST, EFAULT, EINVAL, ENOENT, ENOSYS},
        evtchn::{EVTCHNOP_bind_ipi, EVTCHNOP_init_control},
        hvm::{HVMOP_set_param, MIN_UPCALL_VECTOR},
        hypercall::{
            __HYPERVISOR_event_channel_op, __HYPERVISOR_hvm_op, __HYPERVISOR_memory_op, __HYPERVISOR_xen_version,
        },
        memory::XENMEM_add_to_physmap,
        version::XENVER_version,
        virq::{VIRQ_CONSOLE, VIRQ_TIMER},
    },
};

use super::{add_port, pingpong};
use crate::{
    arch::interrupts::UPCALL_VECTOR,
    errors::{self, Error},
    sync,
    xen::ops::{self, XenResult},
};

/// Above the identity map (4 GiB): no page table maps it.
const UNMAPPED: u64 = 0x10_0000_0000;
/// Port numbers no one allocated, low and high in the table.
const CLOSED_FAST_PORT: u32 = 100;
const CLOSED_SLOW_PORT: u32 = 4000;
/// Stray MMIO accesses in a burst: each is counted by the host, and the
/// host's log of them stays a few lines a second.
const STRAY_BURST: u32 = 10_000;
const OUT_OF_RANGE_PORT: u32 = 5000;
const NO_SUCH_VCPU: u32 = 99;
/// Xen 4.17, as xen_version(XENVER_version) reports it.
const XEN_VERSION: i64 = (4 << 16) | 17;

fn errno<T>(r: XenResult<T>) -> i64 {
    match r {
        Ok(_) => 0,
        Err(e) => -i64::from(e),
    }
}

pub fn play(vcpu: u32, params: &Params) -> Result<(), Error> {
    if vcpu == 0 {
        let checked = check_all(params);
        pingpong::new_round(super::port(0), super::port(1));
        sync::barrier(vcpu, params.vcpus);
        checked?;
    } else {
        sync::barrier(vcpu, params.vcpus);
    }
    if params.vcpus < 2 {
        return Ok(());
    }
    match vcpu {
        0 => pingpong::serve(vcpu, params, super::port(0), super::port(1)),
        1 => pingpong::answer(vcpu, params, super::port(0), super::port(1)),
        _ => Ok(()),
    }
}

fn check_all(params: &Params) -> Result<(), Error> {
    // Ports for the ping-pong that follows: 0 -> 1 and 1 -> 0.
    let ping = ops::bind_ipi(params.vcpus.min(2) - 1).map_err(|e| errors::hypercall(errors::BIND, e))?;
    add_port(ping, params.vcpus.min(2) - 1);
    let pong = ops::bind_ipi(0).map_err(|e| errors::hypercall(errors::BIND, e))?;
    add_port(pong, 0);
    let timer = ops::bind_virq(VIRQ_TIMER, 0).map_err(|e| errors::hypercall(errors::BIND, e))?;
    add_port(timer, 0);

    let checks: [(i64, i32); 18] = [
        // Unknown hypercall and unknown event-channel op.
        (ops::raw(63, 0, 0), ENOSYS),
        (ops::raw(__HYPERVISOR_event_channel_op, 99, ping_struct()), ENOSYS),
        // FIFO ABI: not offered (like QEMU).
        (ops::raw(__HYPERVISOR_event_channel_op, u64::from(EVTCHNOP_init_control), ping_struct()), ENOSYS),
        // Ports out of range or closed (fast doorbell path and general path).
        (errno(counted_send(OUT_OF_RANGE_PORT)), EINVAL),
        (errno(counted_send(CLOSED_FAST_PORT)), EINVAL),
        (errno(counted_send(CLOSED_SLOW_PORT)), EINVAL),
        (errno(ops::close(CLOSED_SLOW_PORT)), EINVAL),
        (errno(ops::unmask(OUT_OF_RANGE_PORT)), EINVAL),
        (errno(ops::status(OUT_OF_RANGE_PORT)), EINVAL),
        (errno(ops::bind_vcpu(CLOSED_FAST_PORT, 0)), EINVAL),
        (errno(ops::bind_interdomain(xevtchn_common::xen::hypercall::DOMID_SELF, CLOSED_SLOW_PORT)), EINVAL),
        // vCPUs that do not exist.
        (errno(ops::bind_ipi(NO_SUCH_VCPU)), ENOENT),
        (errno(ops::bind_vcpu(ping, NO_SUCH_VCPU)), ENOENT),
        (errno(ops::set_upcall_vector(NO_SUCH_VCPU, UPCALL_VECTOR)), ENOENT),
        // Bad values: a vector below 0x10, a global VIRQ off vCPU 0 (checked
        // before the vCPU exists), a VIRQ bound twice.
        (errno(ops::set_upcall_vector(0, MIN_UPCALL_VECTOR - 1)), EINVAL),
        (errno(ops::bind_virq(VIRQ_CONSOLE, 1)), EINVAL),
        (errno(ops::bind_virq(VIRQ_TIMER, 0)), EEXIST),
        // Pointers that no page table maps.
        (ops::raw(__HYPERVISOR_event_channel_op, u64::from(EVTCHNOP_bind_ipi), UNMAPPED), EFAULT),
    ];
    let more: [(i64, i32); 2] = [
        (ops::raw(__HYPERVISOR_memory_op, XENMEM_add_to_physmap, UNMAPPED), EFAULT),
        (ops::raw(__HYPERVISOR_hvm_op, HVMOP_set_param, UNMAPPED), EFAULT),
    ];
    // Stray MMIO: between two doorbells, a doorbell written with another
    // port's number, and a read of an unclaimed address, in a burst.
    // Nothing happens; the VM runs on (checked by what follows).
    let mut stray = 0;
    for _ in 0..STRAY_BURST {
        crate::mmio::write_u32(xevtchn_common::layout::doorbell(5) + 4, 5);
        crate::mmio::write_u32(xevtchn_common::layout::doorbell(6), 7);
        stray = crate::mmio::read_u32(xevtchn_common::layout::CONTROL_BASE + 0x800);
    }
    let version = [
        (ops::raw(__HYPERVISOR_xen_version, u64::from(XENVER_version), 0), XEN_VERSION),
        (i64::from(stray), i64::from(u32::MAX)),
    ];
    let expected = checks.iter().chain(more.iter()).map(|&(got, errno)| (got, -i64::from(errno)));
    match expected.chain(version).position(|(got, want)| got != want) {
        Some(index) => Err(errors::WRONG_ERRNO | (index as u32) << 8),
        None => Ok(()),
    }
}

/// A valid pointer to a harmless argument, for ops that must fail before
/// reading it.
fn ping_struct() -> u64 {
    static ZEROES: [u64; 4] = [0; 4];
    ZEROES.as_ptr() as u64
}

/// EVTCHNOP_send counted as sent like every other send (the host accounts
/// for each send the guest makes).
fn counted_send(port: u32) -> XenResult<()> {
    crate::report::counters(0).sent.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    ops::send(port)
}
