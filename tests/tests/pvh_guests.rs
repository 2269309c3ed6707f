//! Third-party PVH kernels on `xevtchn run --kernel`: small C guests built
//! from tests/guests/pvh/ against Xen's public headers only (see
//! `xevtchn_tests::pvh`). `pvh-test` checks, as any Xen guest would, what
//! xevtchn's Xen promises (start_info, memory map, xen_version,
//! shared_info and pvclock, callback parameter, event channels,
//! SCHEDOP_poll and block, timers, upcalls taken as interrupts, the PV
//! console, a moved vcpu_info, vCPU 33 of 34 registering its vcpu_info
//! while offline, then brought up with INIT/SIPI to take its events and
//! its own timer's VIRQ as upcalls), one console line per check, and shuts down: poweroff if
//! every check passed, crash otherwise. `pvh32` asks for the hypercall page
//! in 32-bit mode, which xevtchn refuses.

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use xevtchn_tests::{controller_binary, privileged, pvh};

/// `xevtchn run --kernel KERNEL ARGS`, KERNEL built first.
fn run_kernel(kernel: &str, args: &[&str]) -> Output {
    let path = pvh::kernel(kernel);
    Command::new(controller_binary())
        .arg("run")
        .arg("--kernel")
        .arg(&path)
        .args(args)
        .output()
        .expect("running xevtchn")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What `--json` printed: one JSON object on stdout, valid against
/// docs/schema/run-kernel.json.
fn report(out: &Output) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON value ({e}):\n{}\nstderr:\n{}", text(&out.stdout), text(&out.stderr))
    });
    assert!(json.is_object(), "stdout is a JSON object: {json}");
    xevtchn_tests::assert_schema("run-kernel.json", &json);
    json
}

#[test]
fn pvh_test_kernel_powers_off_on_both_backends() {
    let _vm = privileged();
    for backend in ["bpf", "userspace"] {
        let out = run_kernel(
            "pvh-test",
            &[
                "--cmdline",
                "hello=world vcpus=34",
                "--vcpus",
                "34",
                "--memory",
                "64",
                "--backend",
                backend,
                "--json",
                "--timeout",
                "60",
            ],
        );
        let console = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "on {backend}:\n{console}");
        let json = report(&out);
        assert_eq!(json["schema"], "xevtchn.run.kernel/1", "{json}");
        assert_eq!(json["backend"], backend, "{json}");
        assert_eq!(json["shutdown"]["reason"], "poweroff", "{json}");
        assert_eq!(json["shutdown"]["code"], 0, "{json}");
        // With --json the guest's console goes to stderr.
        assert!(console.contains("pvh-test: all checks passed"), "on {backend}:\n{console}");
        assert!(console.contains("cmdline: hello=world"), "the kernel echoes start_info's command line:\n{console}");
        assert!(!console.contains("FAIL"), "on {backend}:\n{console}");
        // The checks that need the pvclock ran (a kernel that found no
        // clock would skip them and still pass).
        for check in [
            "ok - flood: 2000 sends",
            "ok - SCHEDOP_poll on idle port a times out after 20 ms",
            "ok - VCPUOP_set_singleshot_timer: VIRQ_TIMER on port",
            "ok - set_timer_op: VIRQ_TIMER on port",
            "ok - a stopped timer sends no VIRQ",
            "ok - SCHEDOP_block returns on the timer's event",
            "ok - VIRQ_TIMER taken as upcalls on vector 0xf3: 3 timer events",
            "ok - alloc_unbound until -ENOSPC: 4095 ports, 1 the toolstack's",
            "pvh-test: hello through the PV console ring",
            "ok - the console backend consumed the ring",
            "ok - VCPUOP_register_vcpu_info(vCPU 0) into the kernel's own page",
            "ok - the send after the move marked the moved vcpu_info",
            // vCPU 33 of 34, which has no vcpu_info in shared_info.
            "ok - EVTCHNOP_bind_vcpu(port a, the last vCPU)",
            "ok - the event waits, pending in shared_info",
            "ok - VCPUOP_register_vcpu_info of offline vCPU above 31",
            "ok - the high vCPU's new vcpu_info has everything marked pending, the upcall mask set",
            "ok - the high vCPU's vcpu_info has the pvclock",
            "ok - vCPU 33 came up through INIT/SIPI",
            "ok - the high vCPU took the event sent before its vcpu_info existed",
            "ok - the high vCPU took the next event as an upcall",
            "ok - the high vCPU's own singleshot timer sent its VIRQ_TIMER, taken as an upcall",
        ] {
            assert!(console.contains(check), "on {backend}, no {check:?}:\n{console}");
        }
        // The kernel's sends, made at CPL0 through the hypercall page (one,
        // then the flood of 2000): on bpf they stay in the kernel (port-I/O
        // doorbells), fewer than 1 in 100 exiting; on userspace each exits.
        // Four more always exit: the console ring's notification (to a host
        // backend), the send after vCPU 0's vcpu_info moved into guest RAM,
        // where the program cannot reach it, and the two to vCPU 33, which
        // never has a vcpu_info in the program's page.
        let (fast, slow) = (json["fast_sends"].as_u64().unwrap_or(0), json["userspace_sends"].as_u64().unwrap());
        if backend == "bpf" {
            assert_eq!((fast, slow), (2001, 4), "CPL0 sends stay in the kernel: {json}");
        } else {
            assert_eq!((json["fast_sends"].is_null(), slow), (true, 2005), "{json}");
        }
        assert_eq!(json["vcpus"], 34, "{json}");
        assert_eq!(
            json["vcpu_info_moved"],
            serde_json::json!([0, 33]),
            "the report says whose vcpu_info moved: {json}"
        );
    }
}

/// The PV console's input: the run's stdin reaches the guest's `in` ring.
#[test]
fn stdin_reaches_the_guest_through_the_pv_console() {
    let _vm = privileged();
    let mut child = Command::new(controller_binary())
        .args(["run", "--kernel"])
        .arg(pvh::kernel("pvh-test"))
        .args(["--cmdline", "console-input", "--backend", "bpf", "--json", "--timeout", "60"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running xevtchn");
    use std::io::Write as _;
    child.stdin.take().expect("piped").write_all(b"ping from the host\n").expect("writing stdin");
    let out = child.wait_with_output().expect("waiting for xevtchn");
    let console = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{console}");
    assert!(console.contains("ok - a line of console input arrived"), "{console}");
    assert!(console.contains("console input: ping from the host"), "{console}");
    let json = report(&out);
    assert!(json["console_bytes"].as_u64().unwrap() > 1000, "console_io and ring bytes are counted: {json}");
}

/// Xen's HVM maximum, 128 vCPUs: the last one's vcpu_info is the last of
/// the event words, and the in-kernel path leaves its ports to userspace.
#[test]
fn the_last_of_128_vcpus_registers_its_vcpu_info_and_takes_upcalls() {
    let _vm = privileged();
    let out = run_kernel("pvh-test", &["--cmdline", "vcpus=128", "--vcpus", "128", "--backend", "bpf", "--json"]);
    let console = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{console}");
    for check in [
        "ok - VCPUOP_register_vcpu_info of offline vCPU above 31",
        "ok - vCPU 127 came up through INIT/SIPI",
        "ok - the high vCPU took the event sent before its vcpu_info existed",
        "ok - the high vCPU took the next event as an upcall",
        "ok - the high vCPU's own singleshot timer sent its VIRQ_TIMER, taken as an upcall",
    ] {
        assert!(console.contains(check), "no {check:?}:\n{console}");
    }
    let json = report(&out);
    assert_eq!(json["vcpu_info_moved"], serde_json::json!([0, 127]), "{json}");
    assert_eq!((json["fast_sends"].as_u64(), json["userspace_sends"].as_u64()), (Some(2001), Some(4)), "{json}");
}

#[test]
fn a_crashing_kernel_says_so_in_its_status_and_json() {
    let _vm = privileged();
    let out = run_kernel("pvh-test", &["--cmdline", "shutdown=crash", "--memory", "64", "--json", "--timeout", "60"]);
    let console = text(&out.stderr);
    // 64 + SHUTDOWN_crash (3).
    assert_eq!(out.status.code(), Some(67), "{console}");
    let json = report(&out);
    assert_eq!(json["schema"], "xevtchn.run.kernel/1", "{json}");
    assert_eq!(json["shutdown"]["reason"], "crash", "{json}");
    assert_eq!(json["shutdown"]["code"], 3, "{json}");
    assert!(console.contains("pvh-test: crashing on request"), "{console}");
}

#[test]
fn a_32bit_guest_is_refused_with_one_clear_line() {
    let _vm = privileged();
    let start = Instant::now();
    let out = run_kernel("pvh32", &["--memory", "64", "--timeout", "20"]);
    let elapsed = start.elapsed();
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.lines().any(|line| line.contains("32-bit") && line.contains("not supported")),
        "one line says a 32-bit guest is not supported:\n{said}"
    );
    // Refused when it asks for the hypercall page, not when --timeout ends it.
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}:\n{said}");
}

#[test]
fn console_output_goes_to_stdout_without_json() {
    let _vm = privileged();
    // pvh-test checks that start_info has a command line: give it one.
    let out = run_kernel(
        "pvh-test",
        &["--cmdline", "console=stdout", "--memory", "64", "--backend", "userspace", "--timeout", "60"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("pvh-test: all checks passed"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("cmdline: console=stdout"), "stdout:\n{stdout}");
}
