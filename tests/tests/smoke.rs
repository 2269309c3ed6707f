//! The whole chain in one test: the controller loads the embedded BPF
//! object, attaches to `kvm:kvm_mmio`, runs the built-in guest on real KVM,
//! and the BPF count of the guest's MMIO writes equals what the guest did.

use std::time::Duration;

use xevtchn::run::smoke;
use xevtchn_tests::privileged;

#[test]
fn bpf_counts_every_guest_mmio_write() {
    let _vm = privileged();
    let report = smoke::run(1, 1234, Duration::from_secs(30)).expect("smoke run");
    assert_eq!(report.guest_status, 0, "guest exit status");
    assert_eq!(report.vmm_writes, 1234, "MMIO exits the VMM handled");
    assert_eq!(report.bpf_writes, 1234, "writes the BPF program counted on kvm:kvm_mmio");
}

#[test]
fn bpf_count_is_exact_with_idle_vcpus_and_a_second_run() {
    let _vm = privileged();
    // Other vCPUs halt; a second VM in the same process starts from a fresh map.
    for writes in [1, 777] {
        let r = smoke::run(4, writes, Duration::from_secs(30)).expect("smoke run");
        assert_eq!((r.guest_status, r.vmm_writes, r.bpf_writes), (0, writes, writes));
    }
}
