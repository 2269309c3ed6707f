//! Killing the controller leaves nothing behind in the kernel: its BPF
//! programs and maps are released with the process (they are held by file
//! descriptors only, never pinned).

use std::{
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use xevtchn_tests::{controller_binary, privileged};

/// Loaded BPF programs named `name`, as bpftool lists them.
fn programs_named(name: &str) -> usize {
    let out = Command::new("bpftool")
        .args(["-j", "prog", "show"])
        .output()
        .expect("running bpftool (cargo xtask setup installs it)");
    assert!(out.status.success(), "bpftool prog show failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    text.matches(&format!("\"name\":\"{name}\"")).count()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_killed_controller_leaves_no_bpf_program_behind() {
    let _vm = privileged();
    let before = programs_named("kvm_mmio_doorbell");
    let mut child = Command::new(controller_binary())
        .args(["run", "--backend", "bpf", "--workload", "flood", "--duration", "30", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting xevtchn");
    wait_for("the doorbell program to be loaded", Duration::from_secs(20), || {
        programs_named("kvm_mmio_doorbell") > before
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping xevtchn");
    wait_for("the doorbell program to be released", Duration::from_secs(10), || {
        programs_named("kvm_mmio_doorbell") == before
    });
}
