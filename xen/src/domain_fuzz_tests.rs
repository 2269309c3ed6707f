//! The fuzz model (`fuzz_model`) driven by proptest: random sequences of
//! hypercalls (every number and sub-op, in range and not; argument structs
//! of random and boundary values; pointers inside guest memory, across its
//! end, unaligned and unmapped), doorbell sends and host-backend calls.
//! The libFuzzer target (fuzz/) drives the same model with coverage.
//!
//! Cases that once failed are kept at the end, as regression tests.

use proptest::prelude::*;
use xevtchn_common::{
    two_level::{NR_PORTS, is_pending, upcall_pending},
    xen::hypercall::*,
};

use crate::{
    PortState,
    fuzz_model::{Guest, MEM_LEN, Op, Pointer, run_all},
};

/// Mostly small values (ports, vCPUs, domids, sub-ops that exist), some
/// boundaries, some anything.
fn word() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..8,
        // DOMID_SELF, alone and in both halves ({dom, remote_dom}).
        1 => prop_oneof![Just(0x7ff0), Just(0x7ff0_7ff0)],
        1 => prop_oneof![Just(NR_PORTS - 1), Just(NR_PORTS), Just(u32::MAX), Just(0x10), Just(0xf3)],
        1 => any::<u32>(),
    ]
}

fn pointer() -> impl Strategy<Value = Pointer> {
    prop_oneof![
        8 => (0u64..64).prop_map(|o| Pointer::Inside(o * 8)),
        1 => (0u64..MEM_LEN as u64 + 16).prop_map(Pointer::Inside),
        1 => prop_oneof![Just(0u64), Just(u64::MAX), Just(0x10_0000_0000)].prop_map(Pointer::Unmapped),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let nr = prop_oneof![
        6 => Just(u64::from(__HYPERVISOR_event_channel_op)),
        2 => Just(u64::from(__HYPERVISOR_hvm_op)),
        1 => Just(u64::from(__HYPERVISOR_memory_op)),
        1 => Just(u64::from(__HYPERVISOR_xen_version)),
        1 => 0u64..80,
    ];
    let cmd = prop_oneof![6 => 0u64..16, 1 => 16u64..40, 1 => any::<u64>()];
    prop_oneof![
        8 => (nr, cmd, pointer(), prop::collection::vec(word(), 8))
            .prop_map(|(nr, cmd, arg, words)| Op::Hypercall { nr, cmd, arg, words }),
        2 => word().prop_map(Op::Doorbell),
        1 => Just(Op::HostAllocUnbound),
        1 => word().prop_map(Op::HostBindInterdomain),
        1 => word().prop_map(Op::HostSend),
        1 => word().prop_map(Op::HostClose),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_sequence_of_calls_keeps_the_domain_sound(ops in prop::collection::vec(op(), 1..60)) {
        run_all(&ops).map_err(TestCaseError::fail)?;
    }
}

/// The harness reaches what it is meant to check: ports bound, events
/// pending and announced, and a violation is seen when there is one.
#[test]
fn the_harness_binds_sends_and_sees_a_violation() {
    use xevtchn_common::xen::evtchn::{EVTCHNOP_alloc_unbound, EVTCHNOP_bind_interdomain, EVTCHNOP_bind_ipi};
    let evtchn = |cmd: u32, words: Vec<u32>| Op::Hypercall {
        nr: u64::from(__HYPERVISOR_event_channel_op),
        cmd: u64::from(cmd),
        arg: Pointer::Inside(0),
        words,
    };
    let mut guest = Guest::new();
    for op in [
        evtchn(EVTCHNOP_bind_ipi, vec![2, 0]),
        evtchn(EVTCHNOP_alloc_unbound, vec![0x7ff0_7ff0, 0]),
        evtchn(EVTCHNOP_bind_interdomain, vec![0x7ff0, 2, 0]),
        Op::Doorbell(1),
        Op::Doorbell(3),
    ] {
        let (ret, actions) = guest.run(&op);
        assert_eq!(ret, Some(0), "{op:?}");
        guest.check(ret, &actions).unwrap();
    }
    assert_eq!(guest.domain.port_info(1).map(|i| i.state), Some(PortState::Ipi));
    assert_eq!(guest.domain.port_info(3).map(|i| i.state), Some(PortState::Loopback { peer: 2 }));
    assert!(is_pending(&*guest.page, 1) && is_pending(&*guest.page, 2) && upcall_pending(&*guest.page, 2));
    // A pending bit nobody announced: the checker names it.
    xevtchn_common::two_level::set_pending(&*guest.page, 9, 1);
    assert!(guest.check(None, &[]).unwrap_err().contains("free port 9 is pending"));
}

/// Found by the libFuzzer target on its first run: a pointer offset near
/// u64::MAX overflowed the model's own address arithmetic (the model's
/// bug, not the domain's). A guest may point anywhere.
#[test]
fn a_pointer_offset_near_the_top_of_the_address_space() {
    let op = Op::Hypercall {
        nr: 2_025_524_839_466_146_844,
        cmd: 2_025_524_839_466_146_844,
        arg: Pointer::Inside(u64::MAX - 255),
        words: vec![],
    };
    run_all(&[op]).unwrap();
}
