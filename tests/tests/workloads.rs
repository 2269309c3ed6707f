//! Every workload of the built-in Xen guest on real KVM, per backend. Each
//! scenario of the upstream selftest that applies is covered by a workload:
//! guest sends to IPI ports (pingpong, flood, fanout), a send to a port
//! whose delivery is an eventfd-backed host backend, which answers by
//! setting the guest's port pending from the host (backend), masked sends and
//! unmask (mask), rebinding (rebind), GSI and PCI INTx callbacks
//! (callback), and EVTCHNOP_reset (every workload ends with one and checks
//! that its ports are closed). Both backends run the same tests (one
//! `backend_tests!` line each); the guest-visible results asserted are
//! identical.

use std::time::Duration;

use xevtchn::run::{self, Backend, Callback, RunConfig, RunReport, Workload};
use xevtchn_tests::privileged;

fn run(backend: Backend, workload: Workload, vcpus: u32, count: u64, callback: Callback) -> RunReport {
    run_config(RunConfig {
        backend,
        workload,
        vcpus,
        count,
        duration: None,
        callback,
        timeout: Duration::from_secs(60),
        shared_info_in_ram: false,
        rate: None,
        service: None,
        seed: None,
    })
}

fn run_config(config: RunConfig) -> RunReport {
    let _vm = privileged();
    let (backend, workload) = (config.backend, config.workload);
    let report = run::execute(&config).unwrap_or_else(|e| panic!("{workload:?} on {backend:?}: {e:#}"));
    assert!(
        report.is_clean(),
        "{workload:?} on {backend:?} is not clean: lost {}, errors {} ({:?}), guest status {:#x}",
        report.lost,
        report.errors,
        report.first_error,
        report.guest_status
    );
    // What `xevtchn run --json` prints is this report serialized.
    xevtchn_tests::assert_schema("run.json", &serde_json::to_value(&report).expect("the report as JSON"));
    report
}

macro_rules! backend_tests {
    ($name:ident, $backend:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn pingpong_delivers_every_event_once_with_latency_samples() {
                let r = run($backend, Workload::Pingpong, 2, 2000, Callback::Vector);
                assert_eq!((r.sent, r.delivered, r.stale), (4000, 4000, 0));
                assert_eq!(r.latency_ns.n, 4000);
                assert!(r.latency_ns.p50 > Some(0) && r.latency_ns.p50 <= r.latency_ns.p99);
            }

            #[test]
            fn flood_loses_nothing_and_coalesces() {
                let r = run($backend, Workload::Flood, 3, 3000, Callback::Vector);
                assert_eq!(r.sent, 6000, "two senders");
                assert!(r.delivered >= 2 && r.delivered <= r.sent);
            }

            #[test]
            fn fanout_between_four_vcpus_loses_nothing() {
                let r = run($backend, Workload::Fanout, 4, 500, Callback::Vector);
                assert_eq!(r.sent, 4 * 3 * 500);
            }

            #[test]
            fn masked_sends_raise_nothing_until_the_unmask_raises_one() {
                let r = run($backend, Workload::Mask, 2, 100, Callback::Vector);
                // The first send finds the port masked, the others pending.
                assert_eq!((r.sent, r.delivered, r.masked, r.coalesced), (100, 1, 1, 99));
            }

            #[test]
            fn rebinding_ports_while_sending_loses_nothing() {
                let r = run($backend, Workload::Rebind, 3, 3000, Callback::Vector);
                assert_eq!(r.sent, 6000);
                let moves = r.moves.expect("rebind reports its moves");
                assert!(moves > 0 && r.moves_per_s.is_some_and(|m| m > 0.0), "{moves} moves");
            }

            #[test]
            fn ports_at_the_top_of_a_full_table_deliver_like_any_other() {
                let r = run($backend, Workload::Ports, 2, 300, Callback::Vector);
                // Per round: two IPIs and both ends of two interdomain pairs.
                assert_eq!(r.sent, 6 * 300);
                if $backend == Backend::Bpf {
                    assert_eq!(r.fast_sends, r.sent, "ports 4090-4095 are served in the kernel");
                }
            }

            #[test]
            fn gsi_then_pci_intx_callback_on_vcpu0() {
                let r = run($backend, Workload::Callback, 2, 500, Callback::Gsi);
                // Two phases of ping-pong, 500 rounds each.
                assert_eq!((r.sent, r.delivered), (2000, 2000));
            }

            #[test]
            fn pingpong_with_vcpu0_on_a_pci_intx_callback() {
                let r = run($backend, Workload::Pingpong, 2, 500, Callback::Intx);
                assert_eq!((r.sent, r.delivered), (1000, 1000));
            }

            #[test]
            fn hostile_hypercalls_get_xen_errnos_and_the_vm_runs_on() {
                let r = run($backend, Workload::Hostile, 2, 200, Callback::Vector);
                // Three bad sends (each answered -EINVAL), then the ping-pong.
                assert_eq!((r.sent, r.delivered), (403, 400), "ping-pong after the bad calls");
            }

            #[test]
            fn a_host_backend_woken_by_eventfd_answers_every_send() {
                let r = run($backend, Workload::Backend, 2, 300, Callback::Vector);
                assert_eq!((r.sent, r.delivered), (300, 300), "one answer per ping");
                assert!(r.latency_ns.n == 300 && r.latency_ns.p50 > Some(0));
            }

            #[test]
            fn shared_info_placed_over_a_ram_page_splits_the_ram_memslot() {
                let r = run_config(RunConfig {
                    backend: $backend,
                    workload: Workload::Pingpong,
                    vcpus: 2,
                    count: 500,
                    duration: None,
                    callback: Callback::Vector,
                    timeout: Duration::from_secs(60),
                    shared_info_in_ram: true,
                    rate: None,
                    service: None,
                    seed: None,
                });
                assert_eq!((r.sent, r.delivered), (1000, 1000));
            }

            #[test]
            fn hostile_on_a_single_vcpu() {
                run($backend, Workload::Hostile, 1, 1, Callback::Vector);
            }
        }
    };
}

backend_tests!(userspace, Backend::Userspace);
backend_tests!(bpf, Backend::Bpf);

#[test]
fn bpf_flood_completes_sends_in_the_kernel() {
    let r = run(Backend::Bpf, Workload::Flood, 2, 20_000, Callback::Vector);
    assert_eq!(r.backend, Backend::Bpf);
    assert!(
        (r.userspace_exits as f64) < 0.01 * r.sent as f64,
        "{} userspace exits for {} sends",
        r.userspace_exits,
        r.sent
    );
    assert!(r.fast_sends as f64 >= 0.99 * r.sent as f64, "{} fast of {} sent", r.fast_sends, r.sent);
    let bpf = r.bpf.expect("bpf counters");
    assert_eq!(bpf.fast_sends, r.fast_sends);
    assert_eq!(bpf.not_fast, 0, "every flood port is fast");
    // KVM's own count agrees: the doorbells never reached userspace.
    let kvm_mmio_exits = r.kvm.get("mmio_exits").copied().expect("KVM_GET_STATS_FD mmio_exits");
    assert!(kvm_mmio_exits <= r.userspace_exits, "KVM saw {kvm_mmio_exits} MMIO exits");
}

#[test]
fn userspace_flood_exits_once_per_send() {
    let r = run(Backend::Userspace, Workload::Flood, 2, 2000, Callback::Vector);
    assert!(r.bpf.is_none());
    assert_eq!(r.fast_sends, 0);
    assert_eq!(r.fallback_sends, r.sent, "every send is a doorbell exit");
    assert!(r.userspace_exits >= r.sent);
    let kvm_mmio_exits = r.kvm.get("mmio_exits").copied().expect("KVM_GET_STATS_FD mmio_exits");
    assert!(kvm_mmio_exits >= r.sent, "KVM saw {kvm_mmio_exits} MMIO exits for {} sends", r.sent);
}

#[test]
fn bpf_rebind_under_load_for_several_seconds_loses_nothing() {
    let _vm = privileged();
    let config = RunConfig {
        backend: Backend::Bpf,
        workload: Workload::Rebind,
        vcpus: 4,
        count: 0,
        duration: Some(Duration::from_secs(5)),
        callback: Callback::Vector,
        timeout: Duration::from_secs(60),
        shared_info_in_ram: false,
        rate: None,
        service: None,
        seed: None,
    };
    let r = run::execute(&config).expect("rebind run");
    assert!(r.is_clean(), "lost {}, errors {} ({:?})", r.lost, r.errors, r.first_error);
    assert!(r.sent > 10_000, "the senders ran: {}", r.sent);
    // Every send raced some move; all were served in the kernel.
    assert_eq!(r.fast_sends, r.sent);
    assert!(r.moves.is_some_and(|m| m > 100), "ports moved: {:?}", r.moves);
}
