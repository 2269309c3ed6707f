//! `xevtchn trace` against the kernel's own counts: a VM runs under
//! `perf stat -a -e kvm:...` while `xevtchn trace` watches every KVM
//! process; the counts agree, and agree with what the guest reports.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use serde_json::Value;
use xevtchn_tests::{assert_schema, controller_binary, privileged};

/// Starts `xevtchn trace --json` (and `extra`) on every KVM process and
/// waits until it is attached.
fn start_trace(extra: &[&str]) -> Child {
    spawn_trace(&[&["--json", "--interval", "600000"][..], extra].concat())
}

/// Starts `xevtchn trace ARGS` and waits until it is attached.
fn spawn_trace(args: &[&str]) -> Child {
    let mut child = Command::new(controller_binary())
        .arg("trace")
        .args(args)
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
    for line in stdout.lines() {
        assert_schema("trace-interval.json", &serde_json::from_str(line).expect("a JSON line"));
    }
    let total = stdout.lines().last().expect("trace printed nothing");
    let total: Value = serde_json::from_str(total).expect("trace's last line is JSON");
    assert_eq!(total["kind"], "total");
    total
}

/// `field` summed over the rows of `vm[rows]` (vectors, fast_path).
fn sum_of(vm: &Value, rows: &str, field: &str) -> u64 {
    vm[rows].as_array().expect(rows).iter().map(|v| v[field].as_u64().expect(field)).sum()
}

fn sum(vm: &Value, field: &str) -> u64 {
    sum_of(vm, "vectors", field)
}

fn count(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("{field} in {v}"))
}

/// Runs `xevtchn run ARGS --json` to its end; its report.
fn run_vm(args: &[&str]) -> Value {
    let out = Command::new(controller_binary()).arg("run").args(args).arg("--json").output().expect("xevtchn run");
    assert!(out.status.success(), "xevtchn run {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let report = serde_json::from_slice(&out.stdout).expect("xevtchn run --json");
    assert_schema("run.json", &report);
    report
}

/// The one VM of a trace's totals.
fn only_vm(total: &Value) -> Value {
    let vms = total["vms"].as_array().expect("vms");
    assert_eq!(vms.len(), 1, "exactly one KVM process ran: {vms:?}");
    vms[0].clone()
}

#[test]
fn trace_agrees_with_perf_and_with_the_guest() {
    let _vm = privileged();
    let trace = start_trace(&["--msi"]);
    let run = Command::new("perf")
        .args(["stat", "-a", "-x,", "-e", "kvm:kvm_apic_accept_irq,kvm:kvm_eoi,kvm:kvm_mmio,kvm:kvm_msi_set_irq", "--"])
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
    assert_eq!(vm["msi_set_irq"].as_u64(), Some(perf_count("kvm:kvm_msi_set_irq")), "kvm_msi_set_irq events (--msi)");
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
    let trace = start_trace(&[]);
    let run = Command::new(controller_binary())
        .args(["run", "--workload", "smoke", "--count", "300", "--json"])
        .output()
        .expect("running the smoke VM");
    let total = stop_trace(trace);
    assert!(run.status.success(), "smoke run: {}", String::from_utf8_lossy(&run.stderr));
    assert_schema("smoke.json", &serde_json::from_slice(&run.stdout).expect("smoke's JSON"));
    let vms = total["vms"].as_array().expect("vms");
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert_eq!(vms[0]["sends"].as_u64(), Some(0));
    assert!(vms[0]["mmio"].as_u64().expect("mmio") >= 300, "the smoke writes are MMIO");
    assert_eq!(vms[0]["fast_path"].as_array().map(Vec::len), Some(0), "no doorbell program, no fast path");
    assert!(vms[0]["msi_set_irq"].is_null(), "MSIs are counted only with --msi");
}

#[test]
fn fast_path_outcomes_agree_with_the_vm() {
    let _vm = privileged();
    for (workload, vcpus) in [("flood", "3"), ("mask", "2")] {
        let trace = start_trace(&[]);
        let run = run_vm(&["--backend", "bpf", "--workload", workload, "--vcpus", vcpus, "--count", "3000"]);
        // Long after the VM and its doorbell program are gone: the tracer
        // found the program while it ran and kept its counts.
        std::thread::sleep(std::time::Duration::from_secs(1));
        let vm = only_vm(&stop_trace(trace));
        let fast = |field| sum_of(&vm, "fast_path", field);
        let bpf = &run["bpf"];
        assert_eq!(fast("fast_sends"), count(bpf, "fast_sends"), "{workload}");
        assert_eq!(fast("raised"), count(bpf, "upcalls_raised"), "{workload}");
        assert_eq!(fast("coalesced"), count(bpf, "coalesced"), "{workload}");
        assert_eq!(fast("masked"), count(bpf, "masked"), "{workload}");
        assert_eq!(fast("already_pending"), count(bpf, "already_pending"), "{workload}");
        // One word, one meaning: the run and the tracer agree.
        assert_eq!(fast("spurious_injections"), count(bpf, "spurious_injections"), "{workload}");
        assert_eq!(
            count(bpf, "spurious_injections"),
            count(bpf, "fast_sends") - count(bpf, "upcalls_raised"),
            "{workload}: every fast send injected, the raised ones were needed"
        );
        assert_eq!(count(&vm, "sends_in_kernel"), count(bpf, "fast_sends"), "{workload}: the tracer's own count");
        let (what, n) = if workload == "mask" { ("masked", fast("masked")) } else { ("coalesced", fast("coalesced")) };
        assert!(n > 0, "{workload} has {what} sends");
    }
}

#[test]
fn sends_through_userspace_split_by_whether_the_vmm_injected() {
    let _vm = privileged();
    let trace = start_trace(&[]);
    let run = run_vm(&["--backend", "userspace", "--workload", "flood", "--count", "3000"]);
    let vm = only_vm(&stop_trace(trace));
    let sent = count(&run, "sent");
    assert_eq!(count(&vm, "sends_to_userspace"), sent);
    let injected = count(&vm, "userspace_sends_injected");
    assert!(count(&vm, "userspace_sends_not_injected") > 0, "flood coalesces");
    // Another injection in the sender's thread (its own timer) between a
    // send that raised nothing and the thread's next MMIO is taken for that
    // send's: allow 2%.
    let raised = count(&run["host"], "upcalls_raised");
    assert!(injected.abs_diff(raised) <= raised / 50 + 5, "{injected} sends injected, the VMM raised {raised}");
    assert_eq!(vm["fast_path"].as_array().map(Vec::len), Some(0), "no fast path on userspace");
}

#[test]
fn latencies_are_sampled_one_send_in_n() {
    let _vm = privileged();
    for (sample, one_in) in [(None, 16), (Some("1"), 1)] {
        let flags: Vec<&str> = sample.map(|n| vec!["--latency-sample", n]).unwrap_or_default();
        let trace = start_trace(&flags);
        let run = run_vm(&["--backend", "bpf", "--workload", "pingpong", "--count", "1600"]);
        let vm = only_vm(&stop_trace(trace));
        let timed: u64 =
            vm["vectors"].as_array().expect("vectors").iter().map(|v| count(&v["send_to_inject_ns"], "n")).sum();
        // Each vCPU thread times every one_in-th of its sends (its slot may
        // carry a count from an earlier thread: one either way).
        let expected = count(&run, "sent") / one_in;
        assert!(timed.abs_diff(expected) <= 2, "1 in {one_in}: {timed} sends timed, expected {expected}");
        assert_eq!(count(&vm, "sends"), count(&run, "sent"), "every send is counted, timed or not");
    }
}

#[test]
fn a_latency_sample_that_is_no_power_of_two_is_refused() {
    let out =
        Command::new(controller_binary()).args(["trace", "--latency-sample", "3"]).output().expect("xevtchn trace");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("power of two"));
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
        let trace = spawn_trace(&["--events", "--json"]);
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
        let lines: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        for line in &lines {
            let kind = if line["kind"] == "total" { "trace-interval.json" } else { "trace-event.json" };
            assert_schema(kind, line);
        }
        let sends: Vec<&Value> = lines.iter().filter(|v| v["kind"] == "send").collect();
        // Sends are joined per thread, wherever it runs; allow 2% for a
        // thread slot shared with an earlier thread (tids 4096 apart).
        assert!(
            sends.len() as u64 * 100 >= sent * 98 && sends.len() as u64 <= sent,
            "{} events for {sent} sends",
            sends.len()
        );
        assert!(sends.iter().all(|v| v["path"] == path), "{backend}: every send went {path}");
        assert!(sends.iter().all(|v| v["inject_ns"].as_u64() >= v["send_ns"].as_u64()));
        // Pingpong's two ports (ping and pong), each send on a CPU of this host.
        let ports: std::collections::BTreeSet<u64> = sends.iter().map(|v| count(v, "port")).collect();
        assert!(ports.len() == 2 && ports.iter().all(|&p| p > 0 && p < 4096), "{ports:?}");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        assert!(sends.iter().all(|v| count(v, "cpu") < cpus));
        // Times since the trace began, and the sending thread's name: a
        // vCPU thread, or "?" for one gone before its line was printed.
        assert!(sends.iter().all(|v| v["since_start_ns"].as_u64().is_some_and(|t| t > 0 && t < 600_000_000_000)));
        let named = sends.iter().filter(|v| v["comm"].as_str().is_some_and(|c| c.starts_with("vcpu"))).count();
        assert!(sends.iter().all(|v| v["comm"].as_str().is_some_and(|c| c.starts_with("vcpu") || c == "?")));
        assert!(named * 10 >= sends.len() * 9, "{named} of {} sends name their vCPU thread", sends.len());
    }
}

/// Two VMs at once, each with the same APIC ids and upcall vector: each
/// keeps its own rows (before, the second VM's (APIC, vector) slots were
/// the first's, and its rows were merged into an overflow "VM").
#[test]
fn two_vms_keep_their_own_interrupt_rows() {
    let _vm = privileged();
    let trace = start_trace(&[]);
    let spawn = |backend: &str| {
        Command::new(controller_binary())
            .args(["run", "--backend", backend, "--workload", "pingpong", "--count", "1000", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("xevtchn run")
    };
    let vms = [spawn("bpf"), spawn("userspace")];
    let pids: Vec<u64> = vms.iter().map(|c| u64::from(c.id())).collect();
    let reports: Vec<Value> = vms
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("waiting for the VM");
            assert!(out.status.success());
            serde_json::from_slice(&out.stdout).expect("run JSON")
        })
        .collect();
    let total = stop_trace(trace);
    let rows = total["vms"].as_array().expect("vms");
    assert!(rows.iter().all(|vm| !vm["pid"].is_null()), "no VM was merged into the overflow row: {rows:?}");
    for (pid, report) in pids.iter().zip(&reports) {
        let vm = rows.iter().find(|vm| vm["pid"].as_u64() == Some(*pid)).unwrap_or_else(|| panic!("pid {pid}"));
        let upcalls: u64 = vm["vectors"]
            .as_array()
            .expect("vectors")
            .iter()
            .filter(|v| v["vector"] == 0xf3)
            .map(|v| count(v, "injections"))
            .sum();
        assert!(upcalls >= count(report, "delivered"), "pid {pid}: {upcalls} upcalls for {report}");
        assert_eq!(count(vm, "sends"), count(report, "sent"), "pid {pid}");
    }
}

/// Many short VMs whose pids all share one home slot of the tracer (pids
/// 256 apart, arranged with ns_last_pid): without handing ended VMs' slots
/// back, the tenth would land in the overflow row. Each keeps its own row
/// in the totals, and a VM that has ended leaves the interval reports.
#[test]
fn many_short_vms_each_keep_their_own_row() {
    const VMS: usize = 20;
    let _vm = privileged();
    let mut trace = spawn_trace(&["--json", "--interval", "100"]);
    // Read as it comes: a full pipe would stop the tracer's sampling.
    let stdout = BufReader::new(trace.stdout.take().expect("stdout"));
    let reader = std::thread::spawn(move || stdout.lines().map(|l| l.expect("a line")).collect::<Vec<String>>());
    let pid_max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid").unwrap().trim().parse().unwrap();
    let base = if last + 1000 + 256 * (VMS as u32) < pid_max { last + 1000 } else { 1000 };
    let mut runs = Vec::new();
    for i in 0..VMS as u32 {
        let want = base + i * 256;
        if std::path::Path::new(&format!("/proc/{want}")).exists() {
            continue;
        }
        std::fs::write("/proc/sys/kernel/ns_last_pid", (want - 1).to_string()).expect("writing ns_last_pid (root)");
        let out = Command::new(controller_binary())
            .args(["run", "--backend", "userspace", "--workload", "pingpong", "--count", "50", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("xevtchn run");
        let pid = out.id();
        let out = out.wait_with_output().expect("waiting for the VM");
        assert!(out.status.success(), "VM {i}");
        let report: Value = serde_json::from_slice(&out.stdout).expect("run JSON");
        runs.push((pid, report));
        // Long enough for the tracer to see that it ended (it samples every 100 ms).
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let same_home = runs.iter().filter(|(pid, _)| pid % 256 == base % 256).count();
    assert!(same_home >= 12, "only {same_home} of {VMS} VMs got a pid in the same home slot: the test proves nothing");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(trace.id() as i32, libc::SIGINT) };
    assert!(trace.wait().expect("waiting for the trace").success());
    let lines: Vec<Value> =
        reader.join().expect("the reader").iter().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let total = lines.last().expect("a total line");
    assert_eq!(total["kind"], "total");
    let rows = total["vms"].as_array().expect("vms");
    assert!(rows.iter().all(|vm| !vm["pid"].is_null()), "a VM landed in the overflow row: {rows:?}");
    for (pid, report) in &runs {
        let vm = rows.iter().find(|vm| vm["pid"].as_u64() == Some(u64::from(*pid))).unwrap_or_else(|| panic!("{pid}"));
        assert_eq!(count(vm, "sends"), count(report, "sent"), "pid {pid}'s own sends, no other VM's");
    }
    // VMs ran one after another: an interval shows the one running, and
    // the one that ended in it, never the ones before.
    let widest = lines.iter().filter(|l| l["kind"] == "interval").map(|l| l["vms"].as_array().unwrap().len()).max();
    assert!(widest <= Some(3), "ended VMs stay in the interval reports: {widest:?} rows");
}

/// A VMM that is not xevtchn's (Debian's QEMU, booting its BIOS with no
/// disk): its exits, MMIO and port I/O are counted, and it has no sends,
/// whatever its guest writes where xevtchn's doorbells would be.
#[test]
fn another_vmm_shows_exits_and_no_sends() {
    let _vm = privileged();
    let trace = start_trace(&[]);
    let qemu = Command::new("qemu-system-x86_64")
        .args(["-enable-kvm", "-m", "64", "-display", "none", "-serial", "none", "-monitor", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64 (Debian's qemu-system-x86; `cargo xtask setup` installs it)");
    // A cold start of QEMU can take seconds: wait for its vCPU, then let
    // its BIOS run a while.
    let vcpu_fd = |pid: u32| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy().starts_with("anon_inode:kvm-vcpu"))
        })
    };
    let started = std::time::Instant::now();
    while !vcpu_fd(qemu.id()) {
        assert!(started.elapsed().as_secs() < 30, "QEMU made no vCPU in 30 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let pid = u64::from(qemu.id());
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(qemu.id() as i32, libc::SIGKILL) };
    let qemu = qemu.wait_with_output().expect("waiting for QEMU");
    let total = stop_trace(trace);
    let vms = total["vms"].as_array().expect("vms");
    let vm = vms.iter().find(|vm| vm["pid"].as_u64() == Some(pid)).unwrap_or_else(|| {
        panic!("QEMU's row (pid {pid}; QEMU said {}): {vms:?}", String::from_utf8_lossy(&qemu.stderr))
    });
    assert!(count(vm, "userspace_exits") > 0 && count(vm, "pio") > 0, "its BIOS exits: {vm}");
    for field in ["sends", "sends_in_kernel", "sends_to_userspace", "sends_per_s"] {
        assert!(vm[field].is_null(), "{field} of a VMM that is not xevtchn's: {vm}");
    }
}

/// A PVH kernel sends at CPL0, through port-I/O doorbells: the tracer
/// counts them as sends, in the kernel as the run does.
#[test]
fn a_pvh_kernels_port_io_sends_are_counted() {
    let _vm = privileged();
    let kernel = xevtchn_tests::pvh::kernel("pvh-test");
    let trace = start_trace(&[]);
    let out = Command::new(controller_binary())
        .args(["run", "--backend", "bpf", "--json", "--kernel"])
        .arg(&kernel)
        .output()
        .expect("xevtchn run --kernel");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run: Value = serde_json::from_slice(&out.stdout).expect("xevtchn run --kernel --json");
    // Its callback is a GSI, whose irqfd injects from a kernel worker: that
    // worker shows as a KVM process of its own, with no sends.
    let total = stop_trace(trace);
    let vms = total["vms"].as_array().expect("vms");
    let vm = vms.iter().find(|v| !v["sends"].is_null()).expect("the kernel's VM").clone();
    assert_eq!(vms.iter().filter(|v| !v["sends"].is_null()).count(), 1, "one xevtchn VM ran: {vms:?}");
    let (fast, slow) = (count(&run, "fast_sends"), count(&run, "userspace_sends"));
    assert!(fast >= 2000, "{run}");
    assert_eq!(count(&vm, "sends"), fast + slow, "every send the guest made: {vm}");
    assert_eq!(count(&vm, "sends_in_kernel"), fast, "{vm}");
    assert_eq!(count(&vm, "sends_to_userspace"), slow, "{vm}");
    assert!(count(&vm, "pio") > fast, "its hypercalls are port I/O too: {vm}");
}
