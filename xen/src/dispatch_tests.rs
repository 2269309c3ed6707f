//! Hypercalls end to end through `Domain::hypercall`: argument copying,
//! return values and errnos, as a Linux HVM guest would see them.

use xevtchn_common::two_level::{self, AtomicPage, EventWords};
use xevtchn_common::xen::XenAbi;
use xevtchn_common::xen::errno::{EFAULT, EINVAL, ENOSYS};
use xevtchn_common::xen::evtchn::*;
use xevtchn_common::xen::hvm::*;
use xevtchn_common::xen::hypercall::*;
use xevtchn_common::xen::memory::{XENMAPSPACE_shared_info, XENMEM_add_to_physmap, XenAddToPhysmap};
use xevtchn_common::xen::version::{XENVER_get_features, XENVER_version, XenFeatureInfo};
use xevtchn_common::xen::virq::VIRQ_TIMER;

use super::*;
use crate::config::DomainConfig;
use crate::ports::{NR_PORTS, PortState, SendTarget};
use crate::test_support::TestMemory;

const ARG: u64 = 0x10_0000;

struct Vm {
    domain: Domain,
    mem: TestMemory,
    words: Box<AtomicPage>,
}

fn vm() -> Vm {
    let config = DomainConfig { nr_vcpus: 2, ..DomainConfig::default() };
    Vm { domain: Domain::new(config).unwrap(), mem: TestMemory::new(ARG, 0x1000), words: Box::new(AtomicPage::new()) }
}

impl Vm {
    fn call(&mut self, nr: u32, a0: u64, a1: u64) -> HypercallResult {
        let call = Hypercall { nr: u64::from(nr), args: [a0, a1, 0, 0, 0], ..Hypercall::default() };
        self.domain.hypercall(&call, &self.mem, &*self.words)
    }

    /// event_channel_op with `op` placed at ARG; returns (ret, op read back).
    fn evtchn<T: XenAbi>(&mut self, cmd: u32, op: T) -> (i64, T) {
        self.mem.put(ARG, &op);
        let ret = self.call(__HYPERVISOR_event_channel_op, u64::from(cmd), ARG).ret;
        (ret, self.mem.get(ARG))
    }

    fn hvm<T: XenAbi>(&mut self, op: u64, arg: T) -> (HypercallResult, T) {
        self.mem.put(ARG, &arg);
        let result = self.call(__HYPERVISOR_hvm_op, op, ARG);
        (result, self.mem.get(ARG))
    }
}

fn neg(errno: i32) -> i64 {
    -i64::from(errno)
}

#[test]
fn a_linux_like_boot_sequence() {
    let mut vm = vm();
    assert_eq!(vm.call(__HYPERVISOR_xen_version, u64::from(XENVER_version), 0).ret, (4 << 16) | 17);

    vm.mem.put(ARG, &XenFeatureInfo::default());
    assert_eq!(vm.call(__HYPERVISOR_xen_version, u64::from(XENVER_get_features), ARG).ret, 0);
    assert_ne!(vm.mem.get::<XenFeatureInfo>(ARG).submap, 0);

    vm.mem.put(
        ARG,
        &XenAddToPhysmap { domid: DOMID_SELF, size: 0, space: XENMAPSPACE_shared_info, idx: 0, gpfn: 0xfeffe },
    );
    let placed = vm.call(__HYPERVISOR_memory_op, XENMEM_add_to_physmap, ARG);
    assert_eq!((placed.ret, placed.actions), (0, vec![Action::SharedInfoPlaced { gfn: 0xfeffe }]));
    assert_eq!(vm.domain.shared_info_gfn(), Some(0xfeffe));

    let param = XenHvmParam { domid: DOMID_SELF, index: HVM_PARAM_CALLBACK_IRQ, value: 1, ..XenHvmParam::default() };
    let (result, _) = vm.hvm(HVMOP_set_param, param);
    assert_eq!(result.ret, 0);
    assert_eq!(result.actions[0], Action::CallbackChanged { callback: CallbackVia::Gsi(1) });

    for vcpu in 0..2 {
        let (result, _) =
            vm.hvm(HVMOP_set_evtchn_upcall_vector, XenHvmEvtchnUpcallVector { vcpu, vector: 0xf3, _pad: [0; 3] });
        assert_eq!(result.ret, 0);
        assert_eq!(vm.domain.upcall_vector(vcpu), Some(0xf3));
    }

    let (ret, timer) = vm.evtchn(EVTCHNOP_bind_virq, EvtchnBindVirq { virq: VIRQ_TIMER, vcpu: 1, port: 0 });
    assert_eq!((ret, timer.port), (0, 1));
    let (ret, ipi) = vm.evtchn(EVTCHNOP_bind_ipi, EvtchnBindIpi { vcpu: 1, port: 0 });
    assert_eq!((ret, ipi.port), (0, 2));

    vm.mem.put(ARG, &EvtchnSend { port: ipi.port });
    let sent = vm.call(__HYPERVISOR_event_channel_op, u64::from(EVTCHNOP_send), ARG);
    assert_eq!((sent.ret, sent.actions), (0, vec![Action::RaiseUpcall { vcpu: 1 }]));
    assert!(two_level::is_pending(&*vm.words, ipi.port));

    let (ret, status) =
        vm.evtchn(EVTCHNOP_status, EvtchnStatus { dom: DOMID_SELF, port: timer.port, ..Default::default() });
    assert_eq!((ret, status.status, status.vcpu, status.virq()), (0, EVTCHNSTAT_virq, 1, VIRQ_TIMER));

    let (ret, _) = vm.evtchn(EVTCHNOP_close, EvtchnClose { port: ipi.port });
    assert_eq!(ret, 0);
    assert!(!two_level::is_pending(&*vm.words, ipi.port));
    assert_eq!(vm.domain.bound_ports().map(|(port, _)| port).collect::<Vec<_>>(), [timer.port]);
}

#[test]
fn loopback_through_hypercalls_and_queries() {
    let mut vm = vm();
    let (_, offered) =
        vm.evtchn(EVTCHNOP_alloc_unbound, EvtchnAllocUnbound { dom: DOMID_SELF, remote_dom: DOMID_SELF, port: 0 });
    let (ret, bound) = vm.evtchn(
        EVTCHNOP_bind_interdomain,
        EvtchnBindInterdomain { remote_dom: DOMID_SELF, remote_port: offered.port, ..Default::default() },
    );
    assert_eq!(ret, 0);
    let (ret, _) = vm.evtchn(EVTCHNOP_bind_vcpu, EvtchnBindVcpu { port: offered.port, vcpu: 1 });
    assert_eq!(ret, 0);
    let info = vm.domain.port_info(bound.local_port).unwrap();
    assert_eq!(info.state, PortState::Loopback { peer: offered.port });
    assert_eq!(info.send, SendTarget::Deliver { port: offered.port, vcpu: 1 });
    let (ret, status) =
        vm.evtchn(EVTCHNOP_status, EvtchnStatus { dom: DOMID_SELF, port: bound.local_port, ..Default::default() });
    assert_eq!((ret, status.status, status.remote_port()), (0, EVTCHNSTAT_interdomain, offered.port));
}

#[test]
fn unknown_hypercalls_and_ops_are_enosys() {
    let mut vm = vm();
    assert_eq!(vm.call(__HYPERVISOR_physdev_op, 0, 0).ret, neg(ENOSYS));
    assert_eq!(
        vm.domain.hypercall(&Hypercall { nr: 1 << 32, ..Hypercall::default() }, &vm.mem, &*vm.words).ret,
        neg(ENOSYS)
    );
    assert_eq!(vm.evtchn(99, EvtchnSend::default()).0, neg(ENOSYS));
    assert_eq!(vm.call(__HYPERVISOR_hvm_op, HVMOP_get_time, ARG).ret, neg(ENOSYS));
}

#[test]
fn fifo_ops_are_enosys_like_qemu() {
    let mut vm = vm();
    assert_eq!(vm.evtchn(EVTCHNOP_init_control, EvtchnInitControl::default()).0, neg(ENOSYS));
    assert_eq!(vm.evtchn(EVTCHNOP_expand_array, EvtchnExpandArray::default()).0, neg(ENOSYS));
    assert_eq!(vm.evtchn(EVTCHNOP_set_priority, EvtchnSetPriority::default()).0, neg(ENOSYS));
}

#[test]
fn unreadable_arguments_are_efault_for_every_family() {
    let mut vm = vm();
    let nowhere = 0xdead_0000;
    for cmd in [
        EVTCHNOP_alloc_unbound,
        EVTCHNOP_bind_interdomain,
        EVTCHNOP_bind_virq,
        EVTCHNOP_bind_pirq,
        EVTCHNOP_bind_ipi,
        EVTCHNOP_close,
        EVTCHNOP_send,
        EVTCHNOP_status,
        EVTCHNOP_bind_vcpu,
        EVTCHNOP_unmask,
        EVTCHNOP_reset,
    ] {
        assert_eq!(vm.call(__HYPERVISOR_event_channel_op, u64::from(cmd), nowhere).ret, neg(EFAULT), "op {cmd}");
    }
    for op in [HVMOP_set_param, HVMOP_get_param, HVMOP_set_evtchn_upcall_vector] {
        assert_eq!(vm.call(__HYPERVISOR_hvm_op, op, nowhere).ret, neg(EFAULT), "hvm op {op}");
    }
    assert_eq!(vm.call(__HYPERVISOR_memory_op, XENMEM_add_to_physmap, nowhere).ret, neg(EFAULT));
    assert_eq!(vm.call(__HYPERVISOR_xen_version, u64::from(XENVER_get_features), nowhere).ret, neg(EFAULT));
}

#[test]
fn an_argument_straddling_the_end_of_memory_is_efault() {
    let mut vm = vm();
    let last_bytes = ARG + 0x1000 - 4;
    assert_eq!(vm.call(__HYPERVISOR_event_channel_op, u64::from(EVTCHNOP_send), last_bytes).ret, neg(EINVAL));
    assert_eq!(vm.call(__HYPERVISOR_event_channel_op, u64::from(EVTCHNOP_bind_ipi), last_bytes).ret, neg(EFAULT));
}

/// Xen's do_event_channel_op: when copying the OUT fields back fails, the
/// op has happened and the result is -EFAULT ("Cleaning up here would be a
/// mess!").
#[test]
fn unwritable_result_is_efault_after_the_op_took_effect() {
    struct ReadOnly<'a>(&'a TestMemory);
    impl GuestMemory for ReadOnly<'_> {
        fn read(&self, gva: u64, buf: &mut [u8]) -> Result<(), GuestFault> {
            self.0.read(gva, buf)
        }
        fn write(&self, gva: u64, data: &[u8]) -> Result<(), GuestFault> {
            Err(GuestFault { gva, len: data.len() })
        }
    }
    let mut vm = vm();
    vm.mem.put(ARG, &EvtchnBindIpi { vcpu: 0, port: 0 });
    let call = Hypercall {
        nr: u64::from(__HYPERVISOR_event_channel_op),
        args: [u64::from(EVTCHNOP_bind_ipi), ARG, 0, 0, 0],
        ..Hypercall::default()
    };
    let result = vm.domain.hypercall(&call, &ReadOnly(&vm.mem), &*vm.words);
    assert_eq!(result.ret, neg(EFAULT));
    assert!(matches!(result.actions[..], [Action::PortBound { port: 1, .. }]));
    assert_eq!(vm.domain.port_info(1).unwrap().state, PortState::Ipi);
}

#[test]
fn event_channel_cmd_is_an_int_so_high_bits_are_ignored() {
    let mut vm = vm();
    vm.mem.put(ARG, &EvtchnBindIpi { vcpu: 0, port: 0 });
    let cmd = (0xffff_ffffu64 << 32) | u64::from(EVTCHNOP_bind_ipi);
    assert_eq!(vm.call(__HYPERVISOR_event_channel_op, cmd, ARG).ret, 0);
}

#[test]
fn hvm_get_param_writes_the_value_back() {
    let mut vm = vm();
    let value = CallbackVia::Gsi(5).encode();
    vm.hvm(
        HVMOP_set_param,
        XenHvmParam { domid: DOMID_SELF, index: HVM_PARAM_CALLBACK_IRQ, value, ..Default::default() },
    );
    let (result, read) =
        vm.hvm(HVMOP_get_param, XenHvmParam { domid: DOMID_SELF, index: HVM_PARAM_CALLBACK_IRQ, ..Default::default() });
    assert_eq!((result.ret, read.value), (0, value));
    assert_eq!(vm.domain.callback(), CallbackVia::Gsi(5));
}

#[test]
fn hvm_errors_reach_the_guest_as_errnos() {
    let mut vm = vm();
    let (result, _) =
        vm.hvm(HVMOP_set_evtchn_upcall_vector, XenHvmEvtchnUpcallVector { vcpu: 0, vector: 0x0f, _pad: [0; 3] });
    assert_eq!((result.ret, result.actions), (neg(EINVAL), vec![]));
    let (result, _) =
        vm.hvm(HVMOP_set_param, XenHvmParam { domid: DOMID_SELF, index: HVM_NR_PARAMS, ..Default::default() });
    assert_eq!(result.ret, neg(EINVAL));
}

#[test]
fn hvm_op_number_is_not_truncated() {
    let mut vm = vm();
    vm.mem.put(ARG, &XenHvmParam { domid: DOMID_SELF, index: HVM_PARAM_CALLBACK_IRQ, ..Default::default() });
    // `unsigned long op` in do_hvm_op: 1 << 32 is not HVMOP_set_param.
    assert_eq!(vm.call(__HYPERVISOR_hvm_op, 1 << 32, ARG).ret, neg(ENOSYS));
}

#[test]
fn rax_is_the_twos_complement_of_the_errno() {
    let result = HypercallResult { ret: neg(ENOSYS), actions: vec![], follow_up: None };
    assert_eq!(result.rax(), (-38i64) as u64);
}

#[test]
fn compat_guests_are_refused_with_a_clear_message() {
    assert_eq!(require_64bit_guest(true), Ok(()));
    let message = require_64bit_guest(false).unwrap_err().to_string();
    assert!(message.contains("32-bit") && message.contains("not supported"), "{message}");
}

#[test]
fn host_api_through_the_domain() {
    let mut vm = vm();
    let (_, timer) = vm.evtchn(EVTCHNOP_bind_virq, EvtchnBindVirq { virq: VIRQ_TIMER, vcpu: 0, port: 0 });
    let (outcome, actions) = vm.domain.send_virq(VIRQ_TIMER, 0, &*vm.words).unwrap();
    assert!(outcome.unwrap().must_raise());
    assert_eq!(actions, [Action::RaiseUpcall { vcpu: 0 }]);
    assert!(two_level::is_pending(&*vm.words, timer.port));
    assert_ne!(vm.words.load(two_level::upcall_word(0)) & two_level::UPCALL_PENDING_BIT, 0);

    let backend_port = vm.domain.host_alloc_unbound().unwrap();
    let (ret, bound) = vm.evtchn(
        EVTCHNOP_bind_interdomain,
        EvtchnBindInterdomain { remote_dom: 0, remote_port: backend_port, ..Default::default() },
    );
    assert_eq!(ret, 0);
    vm.mem.put(ARG, &EvtchnSend { port: bound.local_port });
    let sent = vm.call(__HYPERVISOR_event_channel_op, u64::from(EVTCHNOP_send), ARG);
    assert_eq!(sent.actions, [Action::NotifyBackend { backend_port, guest_port: bound.local_port }]);
    let closed = vm.domain.host_close(backend_port).unwrap();
    assert!(matches!(closed[..], [Action::PortUpdated { port, .. }] if port == bound.local_port));
}

#[test]
fn doorbell_send_validates_and_delivers_like_the_hypercall() {
    let mut vm = vm();
    let (_, ipi) = vm.evtchn(EVTCHNOP_bind_ipi, EvtchnBindIpi { vcpu: 1, port: 0 });
    let result = vm.domain.doorbell_send(ipi.port, &*vm.words);
    assert_eq!(result.ret, 0);
    assert_eq!(result.outcome, Some(two_level::Outcome::UpcallRaised));
    assert_eq!(result.actions, [Action::RaiseUpcall { vcpu: 1 }]);
    let again = vm.domain.doorbell_send(ipi.port, &*vm.words);
    assert_eq!((again.outcome, again.actions), (Some(two_level::Outcome::Coalesced), vec![]));
    let closed = vm.domain.doorbell_send(ipi.port + 1, &*vm.words);
    assert_eq!((closed.ret, closed.outcome), (neg(EINVAL), None));
    assert_eq!(vm.domain.doorbell_send(NR_PORTS, &*vm.words).ret, neg(EINVAL));
}

#[test]
fn sched_op_comes_back_as_a_follow_up_and_its_cmd_is_an_int() {
    use crate::FollowUp;
    use xevtchn_common::xen::sched::{SCHEDOP_shutdown, SHUTDOWN_reboot, SchedShutdown};
    let mut vm = vm();
    vm.mem.put(ARG, &SchedShutdown { reason: SHUTDOWN_reboot });
    let result = vm.call(__HYPERVISOR_sched_op, (0xdead << 32) | SCHEDOP_shutdown, ARG);
    assert_eq!((result.ret, result.follow_up), (0, Some(FollowUp::Shutdown { reason: SHUTDOWN_reboot })));
}
