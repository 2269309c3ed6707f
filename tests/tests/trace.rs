//! `xevtchn trace` against the kernel's own counts: a VM runs under
//! `perf stat -a -e kvm:...` while `xevtchn trace` watches every KVM
//! process; the counts agree, and agree with what the guest reports.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use serde_json::Value;
use xevtchn_tests::{controller_binary, privileged};

/// Starts `xevtchn trace --json` on every KVM process and waits until it is attached.
fn start_trace() -> Child {
    let mut child = Command::new(controller_binary())
        .args(["trace", "--json", "--interval", "600000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting xevtchn trace");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("reading trace's stderr");
    assert!(line.contains("tracing"), "xevtchn trace did not attach: {line}");
    child
}

/// Stops the trace with SIGINT and returns its final "total" object.
fn stop_trace(child: Child) -> Value {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("waiting for xevtchn trace");
    assert!(out.status.success(), "xevtchn trace failed: {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let total = stdout.lines().last().expect("trace printed nothing");
    let total: Value = serde_json::from_str(total).expect("trace's last line is JSON");
    assert_eq!(total["kind"], "total");
    total
}

fn sum(vm: &Value, field: &str) -> u64 {
    vm["vectors"].as_array().expect("vectors").iter().map(|v| v[field].as_u64().expect(field)).sum()
}

#[test]
fn trace_agrees_with_perf_and_with_the_guest() {
    let _vm = privileged();
    let trace = start_trace();
    let run = Command::new("perf")
        .args(["stat", "-a", "-x,", "-e", "kvm:kvm_apic_accept_irq,kvm:kvm_eoi,kvm:kvm_mmio", "--"])
        .arg(controller_binary())
        .args(["run", "--backend", "bpf", "--workload", "pingpong", "--count", "2000", "--json"])
        .output()
        .expect("running perf stat (cargo xtask setup installs linux-perf)");
    let total = stop_trace(trace);
    assert!(run.status.success(), "the VM run failed: {}", String::from_utf8_lossy(&run.stderr));
    let guest: Value = serde_json::from_slice(&run.stdout).expect("xevtchn run --json");
    let perf_count = |event: &str| -> u64 {
        let stderr = String::from_utf8_lossy(&run.stderr);
        let line = stderr.lines().find(|l| l.contains(event)).unwrap_or_else(|| panic!("perf counted no {event}"));
        line.split(',').next().and_then(|n| n.parse().ok()).expect("a perf count")
    };
    let vms = total["vms"].as_array().expect("vms");
    assert_eq!(vms.len(), 1, "exactly one KVM process ran: {vms:?}");
    let vm = &vms[0];
    assert_eq!(vm["mmio"].as_u64(), Some(perf_count("kvm:kvm_mmio")), "kvm_mmio events");
    assert_eq!(sum(vm, "injections"), perf_count("kvm:kvm_apic_accept_irq"), "kvm_apic_accept_irq events");
    assert_eq!(sum(vm, "eois"), perf_count("kvm:kvm_eoi"), "kvm_eoi events");
    // Every doorbell write the guest made was a send, all in the kernel.
    let sent = guest["sent"].as_u64().expect("sent");
    assert_eq!(vm["sends"].as_u64(), Some(sent));
    assert_eq!(vm["sends_to_userspace"].as_u64(), Some(0));
    // Per port: the two ping-pong ports, one send each per round.
    let ports = total["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(ports.iter().all(|p| p["sends"].as_u64() == Some(sent / 2)), "{ports:?}");
    // Each delivered event came with an upcall-vector injection.
    let upcall_injections: u64 = vm["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .filter(|v| v["vector"] == 0xf3)
        .map(|v| v["injections"].as_u64().expect("injections"))
        .sum();
    assert!(upcall_injections >= guest["delivered"].as_u64().expect("delivered"));
}

#[test]
fn a_vm_without_event_channels_shows_no_sends() {
    let _vm = privileged();
    let trace = start_trace();
    let run = Command::new(controller_binary())
        .args(["run", "--workload", "smoke", "--count", "300", "--json"])
        .output()
        .expect("running the smoke VM");
    let total = stop_trace(trace);
    assert!(run.status.success(), "smoke run: {}", String::from_utf8_lossy(&run.stderr));
    let vms = total["vms"].as_array().expect("vms");
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert_eq!(vms[0]["sends"].as_u64(), Some(0));
    assert!(vms[0]["mmio"].as_u64().expect("mmio") >= 300, "the smoke writes are MMIO");
}

#[test]
fn bad_pids_are_refused_with_status_2() {
    let _vm = privileged();
    for (pid, says) in [(std::process::id().to_string(), "not a KVM process"), ("999999999".into(), "no process")] {
        let out = Command::new(controller_binary()).args(["trace", "--pid", &pid]).output().expect("xevtchn trace");
        assert_eq!(out.status.code(), Some(2), "pid {pid}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says) && stderr.lines().count() == 1, "pid {pid}: {stderr}");
    }
}

#[test]
fn events_name_each_sends_path() {
    let _vm = privileged();
    for (backend, path) in [("bpf", "kernel"), ("userspace", "userspace")] {
        let mut trace = Command::new(controller_binary())
            .args(["trace", "--events", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting xevtchn trace --events");
        let mut stderr = BufReader::new(trace.stderr.take().expect("stderr"));
        let mut line = String::new();
        stderr.read_line(&mut line).expect("reading trace's stderr");
        assert!(line.contains("tracing"), "{line}");
        let run = Command::new(controller_binary())
            .args(["run", "--backend", backend, "--workload", "pingpong", "--count", "300", "--json"])
            .output()
            .expect("running the VM");
        assert!(run.status.success());
        let sent = serde_json::from_slice::<Value>(&run.stdout).expect("run JSON")["sent"].as_u64().expect("sent");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(trace.id() as i32, libc::SIGINT) };
        let out = trace.wait_with_output().expect("waiting for the trace");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let sends: Vec<Value> = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == "send")
            .collect();
        // A vCPU thread that migrates between its send and the injection
        // leaves that send unjoined: allow a few.
        assert!(
            sends.len() as u64 * 10 >= sent * 9 && sends.len() as u64 <= sent,
            "{} events for {sent} sends",
            sends.len()
        );
        assert!(sends.iter().all(|v| v["path"] == path), "{backend}: every send went {path}");
        assert!(sends.iter().all(|v| v["inject_ns"].as_u64() >= v["send_ns"].as_u64()));
    }
}
