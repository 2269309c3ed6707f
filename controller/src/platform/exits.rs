//! One exit, handled: a plain function over the Xen side and the exiting
//! vCPU's registers. It performs what the domain does (hypercalls, a
//! doorbell's send, the hypercall page) and returns the vCPU's reply and
//! the side effects for KVM, which the platform applies. The doorbell path:
//! vCPU loop -> `handle_exit` -> `Domain::doorbell_send` -> `Action`s ->
//! `XenPlatform::apply` -> `Upcalls::raise`.

use vm_memory::{Bytes, GuestAddress};
use xevtchn_common::{
    doorbell::DOORBELL_WIDTH,
    xen::{evtchn::EVTCHNOP_send, hypercall::__HYPERVISOR_event_channel_op},
};

use super::xen_side::XenSide;
use crate::{
    vmm::{
        exit::{Exit, Mmio, Reply, VcpuState, classify},
        guest_virtual::GuestVirtual,
        hypercall_page,
        vcpu::Stop,
        xen_cpuid::HYPERCALL_PAGE_MSR,
    },
    xen::{Action, GuestFault, GuestMemory, Hypercall},
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

pub fn handle_exit(xen: &XenSide, vcpu: u32, state: &mut dyn VcpuState, exit: Exit) -> Handled {
    xen.stats.count_exit();
    match exit {
        Exit::MmioRead { addr, .. } => match classify(addr) {
            Mmio::Hypercall(nr) => hypercall(xen, vcpu, state, nr),
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
        Exit::WrMsr { index, value } => {
            Handled::reply(Reply::MsrWritten(index == HYPERCALL_PAGE_MSR && write_hypercall_page(xen, value)))
        }
        Exit::RdMsr { .. } => Handled::reply(Reply::MsrRead(None)),
    }
}

/// A read of the hypercall window: hypercall `nr`, its result in rax.
fn hypercall(xen: &XenSide, vcpu: u32, state: &mut dyn VcpuState, nr: u64) -> Handled {
    let args = match state.hypercall_args() {
        Ok(args) => args,
        Err(e) => return Handled::reply(Reply::Stop(Stop::Fault(format!("vCPU {vcpu}: {e}")))),
    };
    let call = Hypercall { nr, args };
    let memory = GuestPointers(GuestVirtual { vcpu: state, ram: &xen.ram });
    xen.stats.count_hypercall(nr, args[0]);
    let result = xen.domain().hypercall(&call, &memory, xen.shared_info.words());
    Handled { reply: Reply::Read(result.rax()), actions: result.actions, doorbell: false }
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
fn write_hypercall_page(xen: &XenSide, value: u64) -> bool {
    let gpa = value & !0xfff;
    // Bits 11:0 select the page of a multi-page area; there is one.
    value & 0xfff == 0 && xen.ram.write_slice(&hypercall_page::build(), GuestAddress(gpa)).is_ok()
}

/// An MMIO access nothing decodes: counted, and logged (rate-limited).
fn stray_access(xen: &XenSide, vcpu: u32, addr: u64, what: &str) {
    xen.stats.count_stray_access();
    xen.log.warn(|| format!("vCPU {vcpu}: {what} of MMIO address {addr:#x}, which nothing decodes (ignored)"));
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

    use super::*;
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
    }

    fn xen() -> XenSide {
        let domain = Domain::new(DomainConfig { nr_vcpus: 2, ..DomainConfig::default() }).unwrap();
        let page = Arc::new(SharedInfoPage::anonymous().unwrap());
        XenSide::new(domain, page, memory::anonymous_ram(1 << 20).unwrap(), Arc::default())
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
        assert_eq!(page, hypercall_page::build());
        let misaligned = Exit::WrMsr { index: HYPERCALL_PAGE_MSR, value: 0x5001 };
        assert_eq!(handle_exit(&xen, 0, &mut vcpu, misaligned).reply, Reply::MsrWritten(false));
        let other = Exit::WrMsr { index: 0x1234, value: 0 };
        assert_eq!(handle_exit(&xen, 0, &mut vcpu, other).reply, Reply::MsrWritten(false));
        assert_eq!(handle_exit(&xen, 0, &mut vcpu, Exit::RdMsr { index: 0x1234 }).reply, Reply::MsrRead(None));
    }
}
