//! One exit, handled: a plain function over the Xen side and the exiting
//! vCPU's registers. It performs what the domain does (hypercalls, a
//! doorbell's send, the hypercall page) and returns the vCPU's reply and
//! the side effects for KVM, which the platform applies. The doorbell path:
//! vCPU loop -> `handle_exit` -> `Domain::doorbell_send` -> `Action`s ->
//! `XenPlatform::apply` -> `Upcalls::raise`. What a hypercall leaves for
//! the VMM (`FollowUp`) happens here: the console, stopping, waiting.

use std::time::Instant;

use vm_memory::{Bytes, GuestAddress};
use xevtchn_common::{
    doorbell::{DOORBELL_WIDTH, PIO_DOORBELL_BASE, PIO_DOORBELL_END, PIO_DOORBELL_STRIDE, PIO_DOORBELL_VALUE},
    layout::HYPERCALL_PORT,
    two_level::{is_pending, upcall_pending},
    xen::{evtchn::EVTCHNOP_send, hypercall::__HYPERVISOR_event_channel_op},
};

use super::{clock, xen_side::XenSide};
use crate::{
    vmm::{
        exit::{Exit, Mmio, Reply, VcpuState, classify},
        guest_virtual::GuestVirtual,
        hypercall_page,
        vcpu::Stop,
        xen_cpuid::HYPERCALL_PAGE_MSR,
    },
    xen::{Action, CompatGuestUnsupported, FollowUp, GuestFault, GuestMemory, Hypercall, require_64bit_guest},
};

/// What handling an exit did.
#[derive(Debug)]
pub struct Handled {
    pub reply: Reply,
    /// Side effects for KVM, in order.
    pub actions: Vec<Action>,
    /// A doorbell exited to userspace (see `XenPlatform::handle_exit`).
    pub doorbell: bool,
}

impl Handled {
    fn reply(reply: Reply) -> Self {
        Self { reply, actions: Vec::new(), doorbell: false }
    }
}

/// One past the last port-I/O doorbell, as an I/O port.
const PIO_DOORBELL_END_PORT: u16 = PIO_DOORBELL_END as u16;

/// How a hypercall's result reaches the guest.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// The read of the CPL3 MMIO window completes with it.
    MmioRead,
    /// The CPL0 `out` to the hypercall port: rax is set before resuming.
    Port,
}

pub fn handle_exit(xen: &XenSide, vcpu: u32, state: &mut dyn VcpuState, exit: Exit) -> Handled {
    xen.stats.count_exit();
    match exit {
        Exit::MmioRead { addr, .. } => match classify(addr) {
            Mmio::Hypercall(nr) => hypercall(xen, vcpu, state, nr, Via::MmioRead),
            // Like an unclaimed bus: all ones. The guest runs on.
            _ => {
                stray_access(xen, vcpu, addr, "read");
                Handled::reply(Reply::Read(u64::MAX))
            }
        },
        Exit::MmioWrite { addr, value, len } => match classify(addr) {
            Mmio::Exit => Handled::reply(Reply::Stop(Stop::GuestExit(value as u32))),
            Mmio::Smoke => {
                xen.stats.count_smoke();
                Handled::reply(Reply::Resume)
            }
            // A doorbell is exactly what its ioeventfd would match (see
            // xevtchn_common::doorbell); the program ignores the rest too.
            Mmio::Doorbell(port) if len == DOORBELL_WIDTH as usize && value == u64::from(port) => {
                doorbell(xen, vcpu, state, port)
            }
            // Dropped, like a write nothing claims. The guest runs on.
            Mmio::Doorbell(_) | Mmio::Hypercall(_) | Mmio::Unknown => {
                stray_access(xen, vcpu, addr, "write");
                Handled::reply(Reply::Resume)
            }
        },
        Exit::PioOut { port: HYPERCALL_PORT, value, len: 4 } => hypercall(xen, vcpu, state, value, Via::Port),
        // A port-I/O doorbell is exactly what its ioeventfd would match.
        Exit::PioOut { port, value, len } if (PIO_DOORBELL_BASE..PIO_DOORBELL_END_PORT).contains(&port) => {
            let offset = port - PIO_DOORBELL_BASE;
            if offset.is_multiple_of(PIO_DOORBELL_STRIDE)
                && len == DOORBELL_WIDTH as usize
                && value == u64::from(PIO_DOORBELL_VALUE)
            {
                doorbell(xen, vcpu, state, u32::from(offset / PIO_DOORBELL_STRIDE))
            } else {
                stray_port(xen, vcpu, port, "write");
                Handled::reply(Reply::Resume)
            }
        }
        // Ports nothing decodes: writes dropped, reads all ones (the vCPU
        // loop filled them), like an ISA bus with nothing on it.
        Exit::PioOut { port, .. } => {
            stray_port(xen, vcpu, port, "write");
            Handled::reply(Reply::Resume)
        }
        Exit::PioIn { port } => {
            stray_port(xen, vcpu, port, "read");
            Handled::reply(Reply::Resume)
        }
        Exit::WrMsr { index: HYPERCALL_PAGE_MSR, value } => write_hypercall_page(xen, vcpu, state, value),
        // #GP for MSRs the VMM does not implement.
        Exit::WrMsr { .. } => Handled::reply(Reply::MsrWritten(false)),
        Exit::RdMsr { .. } => Handled::reply(Reply::MsrRead(None)),
    }
}

/// Hypercall `nr` with the vCPU's argument registers, its result in rax.
fn hypercall(xen: &XenSide, vcpu: u32, state: &mut dyn VcpuState, nr: u64, via: Via) -> Handled {
    let fault = |e: String| Handled::reply(Reply::Stop(Stop::Fault(format!("vCPU {vcpu}: {e}"))));
    let args = match state.hypercall_args() {
        Ok(args) => args,
        Err(e) => return fault(e),
    };
    let call = Hypercall { nr, args, vcpu, now_ns: xen.clock.now_ns() };
    let memory = GuestPointers(GuestVirtual { vcpu: state, ram: &xen.ram });
    xen.stats.count_hypercall(nr, args[0]);
    let result = xen.domain().hypercall(&call, &memory, xen.shared_info.words());
    let mut reply = match via {
        Via::MmioRead => Reply::Read(result.rax()),
        Via::Port => match state.set_rax(result.rax()) {
            Ok(()) => Reply::Resume,
            Err(e) => return fault(e),
        },
    };
    if let Some(next) = result.follow_up {
        reply = follow_up(xen, vcpu, next).unwrap_or(reply);
    }
    Handled { reply, actions: result.actions, doorbell: false }
}

/// Does what a hypercall left to the VMM; a reply that replaces the
/// hypercall's own, if any.
fn follow_up(xen: &XenSide, vcpu: u32, next: FollowUp) -> Option<Reply> {
    let words = xen.shared_info.words();
    let stopping = || xen.stopping();
    match next {
        FollowUp::Shutdown { reason } => return Some(Reply::Stop(Stop::Shutdown(reason))),
        FollowUp::Console(bytes) => xen.console.write(&bytes, &xen.log),
        FollowUp::Timer { vcpu, deadline_ns } => xen.timers.set(vcpu, deadline_ns),
        FollowUp::Block => clock::wait_until(|| upcall_pending(words, vcpu), None, stopping),
        FollowUp::Poll { ports, timeout_ns } => {
            let deadline = (timeout_ns != 0).then(|| Instant::now() + xen.clock.until(timeout_ns));
            clock::wait_until(|| ports.iter().any(|&p| is_pending(words, p)), deadline, stopping);
        }
    }
    None
}

/// A doorbell write that reached userspace: EVTCHNOP_send on `port`.
fn doorbell(xen: &XenSide, vcpu: u32, state: &mut dyn VcpuState, port: u32) -> Handled {
    xen.stats.count_hypercall(u64::from(__HYPERVISOR_event_channel_op), u64::from(EVTCHNOP_send));
    let result = xen.domain().doorbell_send(port, xen.shared_info.words());
    xen.stats.count_send(result.outcome);
    // The stub set rax to 0 before the write; give it the errno.
    if result.ret != 0
        && let Err(e) = state.set_rax(result.ret as u64)
    {
        return Handled::reply(Reply::Stop(Stop::Fault(format!("vCPU {vcpu}: {e}"))));
    }
    Handled { reply: Reply::Resume, actions: result.actions, doorbell: true }
}

/// The hypercall-page MSR: the page's stubs written at the guest's GPA.
/// Like Xen and KVM, the guest's mode is latched here: a 32-bit guest
/// makes itself known and is stopped with one clear line.
fn write_hypercall_page(xen: &XenSide, vcpu: u32, state: &dyn VcpuState, value: u64) -> Handled {
    match state.long_mode().map(require_64bit_guest) {
        Ok(Ok(())) => {}
        Ok(Err(CompatGuestUnsupported)) => {
            let why = format!("vCPU {vcpu} wrote the hypercall-page MSR in 32-bit mode: {CompatGuestUnsupported}");
            return Handled::reply(Reply::Stop(Stop::Unsupported(why)));
        }
        Err(e) => return Handled::reply(Reply::Stop(Stop::Fault(format!("vCPU {vcpu}: {e}")))),
    }
    let gpa = value & !0xfff;
    // Bits 11:0 select the page of a multi-page area; there is one.
    let page = hypercall_page::build(xen.user_hypercalls);
    Handled::reply(Reply::MsrWritten(value & 0xfff == 0 && xen.ram.write_slice(&page, GuestAddress(gpa)).is_ok()))
}

/// An MMIO access nothing decodes: counted, and logged (rate-limited).
fn stray_access(xen: &XenSide, vcpu: u32, addr: u64, what: &str) {
    xen.stats.count_stray_access();
    xen.log.warn(|| format!("vCPU {vcpu}: {what} of MMIO address {addr:#x}, which nothing decodes (ignored)"));
}

/// Port I/O nothing decodes: counted, and logged (rate-limited).
fn stray_port(xen: &XenSide, vcpu: u32, port: u16, what: &str) {
    xen.stats.count_stray_access();
    xen.log.warn(|| format!("vCPU {vcpu}: {what} of I/O port {port:#x}, which nothing decodes (ignored)"));
}

/// Hypercall pointer arguments, followed through the calling vCPU's page tables.
struct GuestPointers<'a>(GuestVirtual<'a>);

impl GuestMemory for GuestPointers<'_> {
    fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
        self.0.read(gva, buf).map_err(|_| GuestFault { gva, len: buf.len() })
    }

    fn write(&self, gva: u64, data: &[u8]) -> Result<(), GuestFault> {
        self.0.write(gva, data).map_err(|_| GuestFault { gva, len: data.len() })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use xevtchn_common::{
        doorbell::doorbell,
        layout::{CONTROL_EXIT, HYPERCALL_BASE},
        two_level::{is_pending, upcall_pending},
        xen::{errno::EINVAL, evtchn::EVTCHNOP_bind_ipi, hypercall::__HYPERVISOR_xen_version, version::XENVER_version},
    };

    use xevtchn_common::xen::{
        XenAbi,
        errno::ENOSYS,
        hypercall::{__HYPERVISOR_console_io, __HYPERVISOR_sched_op, __HYPERVISOR_vcpu_op},
        sched::{CONSOLEIO_write, SCHEDOP_poll, SCHEDOP_shutdown, SHUTDOWN_crash, SchedPoll},
    };

    use super::*;
    use crate::vmm::hypercall_page::UserMode;
    use crate::{
        platform::shared_info::SharedInfoPage,
        vmm::memory,
        xen::{Domain, DomainConfig},
    };

    /// A vCPU whose page tables map every address to itself.
    #[derive(Default)]
    struct MadeUpVcpu {
        args: [u64; 5],
        rax: Option<u64>,
        /// Runs 32-bit code.
        compat: bool,
    }

    impl VcpuState for MadeUpVcpu {
        fn hypercall_args(&self) -> Result<[u64; 5], String> {
            Ok(self.args)
        }

        fn set_rax(&mut self, value: u64) -> Result<(), String> {
            self.rax = Some(value);
            Ok(())
        }

        fn translate(&self, gva: u64) -> Option<u64> {
            Some(gva)
        }

        fn long_mode(&self) -> Result<bool, String> {
            Ok(!self.compat)
        }
    }

    fn xen() -> XenSide {
        let domain = Domain::new(DomainConfig { nr_vcpus: 2, ..DomainConfig::default() }).unwrap();
        let page = Arc::new(SharedInfoPage::anonymous().unwrap());
        let mut xen = XenSide::new(domain, page, memory::anonymous_ram(1 << 20).unwrap(), Arc::default(), 2_000_000);
        xen.user_hypercalls = UserMode::Window;
        xen
    }

    fn hypercall_read(nr: u64) -> Exit {
        Exit::MmioRead { addr: HYPERCALL_BASE + nr * 8, len: 8 }
    }

    /// Binds an IPI port to vCPU 1 the way the guest does: its struct in
    /// guest RAM, a read of event_channel_op's window.
    fn bind_ipi(xen: &XenSide) -> u32 {
        let arg = 0x1000;
        // struct evtchn_bind_ipi { uint32_t vcpu; evtchn_port_t port; }
        xen.ram.write_obj(1u32, GuestAddress(arg)).unwrap();
        let mut vcpu = MadeUpVcpu { args: [u64::from(EVTCHNOP_bind_ipi), arg, 0, 0, 0], ..Default::default() };
        let h = handle_exit(xen, 0, &mut vcpu, hypercall_read(u64::from(__HYPERVISOR_event_channel_op)));
        assert_eq!(h.reply, Reply::Read(0));
        xen.ram.read_obj::<u32>(GuestAddress(arg + 4)).unwrap()
    }

    #[test]
    fn a_hypercall_read_returns_its_result() {
        let xen = xen();
        let mut vcpu = MadeUpVcpu { args: [u64::from(XENVER_version), 0, 0, 0, 0], ..Default::default() };
        let h = handle_exit(&xen, 0, &mut vcpu, hypercall_read(u64::from(__HYPERVISOR_xen_version)));
        assert_eq!(h.reply, Reply::Read((4 << 16) | 17));
        assert_eq!(xen.stats.snapshot().hypercalls, 1);
    }

    #[test]
    fn a_doorbell_sends_and_asks_for_the_upcall() {
        let xen = xen();
        let port = bind_ipi(&xen);
        let mut vcpu = MadeUpVcpu::default();
        let exit = Exit::MmioWrite { addr: doorbell(port), value: u64::from(port), len: 4 };
        let h = handle_exit(&xen, 0, &mut vcpu, exit);
        assert_eq!(h.reply, Reply::Resume);
        assert!(h.doorbell);
        assert_eq!(h.actions, [Action::RaiseUpcall { vcpu: 1 }]);
        assert!(is_pending(xen.shared_info.words(), port) && upcall_pending(xen.shared_info.words(), 1));
        assert_eq!(vcpu.rax, None, "0 stays in rax");
        assert_eq!(xen.stats.snapshot().userspace_sends, 1);
    }

    #[test]
    fn a_doorbell_of_a_closed_port_returns_einval_in_rax() {
        let xen = xen();
        let mut vcpu = MadeUpVcpu::default();
        let h = handle_exit(&xen, 0, &mut vcpu, Exit::MmioWrite { addr: doorbell(9), value: 9, len: 4 });
        assert_eq!((h.reply, h.actions.len()), (Reply::Resume, 0));
        assert_eq!(vcpu.rax, Some(-i64::from(EINVAL) as u64));
    }

    #[test]
    fn writes_that_are_no_doorbell_are_counted_and_dropped() {
        let xen = xen();
        let port = bind_ipi(&xen);
        let mut vcpu = MadeUpVcpu::default();
        for exit in [
            Exit::MmioWrite { addr: doorbell(port), value: u64::from(port) + 1, len: 4 },
            Exit::MmioWrite { addr: doorbell(port), value: u64::from(port), len: 8 },
            Exit::MmioWrite { addr: doorbell(port) + 4, value: u64::from(port), len: 4 },
        ] {
            let h = handle_exit(&xen, 0, &mut vcpu, exit);
            assert_eq!((h.reply, h.actions.len(), h.doorbell), (Reply::Resume, 0, false), "{exit:?}");
        }
        assert_eq!(xen.stats.snapshot().stray_accesses, 3);
        assert!(!is_pending(xen.shared_info.words(), port), "no send happened");
    }

    #[test]
    fn unclaimed_reads_get_ones_and_the_exit_register_stops_the_vm() {
        let xen = xen();
        let mut vcpu = MadeUpVcpu::default();
        let read = handle_exit(&xen, 0, &mut vcpu, Exit::MmioRead { addr: 0xdead_0000, len: 4 });
        assert_eq!(read.reply, Reply::Read(u64::MAX));
        let exit = handle_exit(&xen, 0, &mut vcpu, Exit::MmioWrite { addr: CONTROL_EXIT, value: 3, len: 4 });
        assert_eq!(exit.reply, Reply::Stop(Stop::GuestExit(3)));
    }

    #[test]
    fn the_hypercall_page_msr_writes_the_stubs_and_other_msrs_fault() {
        let xen = xen();
        let mut vcpu = MadeUpVcpu::default();
        let h = handle_exit(&xen, 0, &mut vcpu, Exit::WrMsr { index: HYPERCALL_PAGE_MSR, value: 0x5000 });
        assert_eq!(h.reply, Reply::MsrWritten(true));
        let mut page = [0u8; 4096];
        xen.ram.read_slice(&mut page, GuestAddress(0x5000)).unwrap();
        assert_eq!(page, hypercall_page::build(UserMode::Window));
        let misaligned = Exit::WrMsr { index: HYPERCALL_PAGE_MSR, value: 0x5001 };
        assert_eq!(handle_exit(&xen, 0, &mut vcpu, misaligned).reply, Reply::MsrWritten(false));
        let other = Exit::WrMsr { index: 0x1234, value: 0 };
        assert_eq!(handle_exit(&xen, 0, &mut vcpu, other).reply, Reply::MsrWritten(false));
        assert_eq!(handle_exit(&xen, 0, &mut vcpu, Exit::RdMsr { index: 0x1234 }).reply, Reply::MsrRead(None));
    }

    /// Hypercall `nr` at CPL0: an `out` of its number to the hypercall port.
    fn call(xen: &XenSide, nr: u32, args: [u64; 5]) -> (Reply, Option<u64>) {
        let mut vcpu = MadeUpVcpu { args, ..Default::default() };
        let exit = Exit::PioOut { port: HYPERCALL_PORT, value: u64::from(nr), len: 4 };
        (handle_exit(xen, 0, &mut vcpu, exit).reply, vcpu.rax)
    }

    #[test]
    fn a_cpl0_hypercall_through_the_port_sets_rax() {
        let xen = xen();
        assert_eq!(
            call(&xen, __HYPERVISOR_xen_version, [u64::from(XENVER_version), 0, 0, 0, 0]),
            (Reply::Resume, Some((4 << 16) | 17))
        );
        assert_eq!(call(&xen, __HYPERVISOR_vcpu_op, [0; 5]), (Reply::Resume, Some(-i64::from(ENOSYS) as u64)));
    }

    #[test]
    fn shutdown_stops_the_vm_with_its_reason_and_the_console_counts_bytes() {
        let xen = xen();
        xen.ram.write_obj(SHUTDOWN_crash, GuestAddress(0x1000)).unwrap();
        let (reply, rax) = call(&xen, __HYPERVISOR_sched_op, [SCHEDOP_shutdown, 0x1000, 0, 0, 0]);
        assert_eq!((reply, rax), (Reply::Stop(Stop::Shutdown(SHUTDOWN_crash)), Some(0)));
        xen.ram.write_slice(b"hi\n", GuestAddress(0x2000)).unwrap();
        assert_eq!(call(&xen, __HYPERVISOR_console_io, [CONSOLEIO_write, 3, 0x2000, 0, 0]).1, Some(0));
        assert_eq!(xen.console.bytes(), 3);
    }

    #[test]
    fn poll_waits_for_its_timeout_in_system_time() {
        let xen = xen();
        xen.ram.write_obj(5u32, GuestAddress(0x3000)).unwrap();
        let timeout = xen.clock.now_ns() + 20_000_000;
        let poll = SchedPoll { ports: 0x3000, nr_ports: 1, _pad: 0, timeout };
        xen.ram.write_slice(poll.as_bytes(), GuestAddress(0x1000)).unwrap();
        let started = Instant::now();
        assert_eq!(call(&xen, __HYPERVISOR_sched_op, [SCHEDOP_poll, 0x1000, 0, 0, 0]).1, Some(0));
        assert!(started.elapsed() >= std::time::Duration::from_millis(19), "{:?}", started.elapsed());
    }

    #[test]
    fn a_32bit_guest_is_refused_when_it_writes_the_hypercall_msr() {
        let xen = xen();
        let mut vcpu = MadeUpVcpu { compat: true, ..Default::default() };
        let h = handle_exit(&xen, 0, &mut vcpu, Exit::WrMsr { index: HYPERCALL_PAGE_MSR, value: 0x5000 });
        let Reply::Stop(Stop::Unsupported(why)) = h.reply else { panic!("{:?}", h.reply) };
        assert!(why.contains("32-bit") && why.contains("not supported"), "{why}");
    }
}
