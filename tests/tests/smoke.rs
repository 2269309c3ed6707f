//! The whole chain in one test: the controller loads the embedded BPF
//! object, attaches to `kvm:kvm_mmio`, runs the built-in guest on real KVM,
//! and the BPF count of the guest's MMIO writes equals what the guest did.

use std::time::Duration;

use xevtchn::{
    bpf::mmio_counter::MmioCounter,
    vmm::{Vm, VmConfig},
};
use xevtchn_common::{layout::CONTROL_SMOKE, workload};
use xevtchn_tests::privileged;

fn run_smoke(vcpus: u32, writes: u64) -> (u64, u64, u32) {
    let counter = MmioCounter::attach(std::process::id(), CONTROL_SMOKE, CONTROL_SMOKE + 4)
        .expect("loading and attaching the kvm_mmio program");
    assert_eq!(counter.count().expect("reading the count"), 0, "nothing counted before the VM runs");
    let config = VmConfig {
        vcpus,
        workload: workload::SMOKE,
        arg: writes,
        timeout: Duration::from_secs(30),
        ..VmConfig::default()
    };
    let outcome = Vm::new(config).expect("creating the VM").run().expect("running the VM");
    let bpf = counter.count().expect("reading the count");
    (bpf, outcome.smoke_writes, outcome.status)
}

#[test]
fn bpf_counts_every_guest_mmio_write() {
    let _vm = privileged();
    let (bpf, vmm, status) = run_smoke(1, 1234);
    assert_eq!(status, 0, "guest exit status");
    assert_eq!(vmm, 1234, "MMIO exits the VMM handled");
    assert_eq!(bpf, 1234, "writes the BPF program counted on kvm:kvm_mmio");
}

#[test]
fn bpf_count_is_exact_with_idle_vcpus_and_a_second_run() {
    let _vm = privileged();
    // Other vCPUs halt; a second VM in the same process starts from a fresh map.
    for writes in [1, 777] {
        let (bpf, vmm, status) = run_smoke(4, writes);
        assert_eq!((status, vmm, bpf), (0, writes, writes));
    }
}
