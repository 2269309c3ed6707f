//! The in-kernel fast path serves exactly its own VM's doorbells: inside a
//! PID namespace, and beside a neighbour that writes the same
//! guest-physical doorbell addresses from a process whose PID inside its
//! namespace equals this VM's PID on the host (the identity the program
//! compared before). Both run as separate `xevtchn run` processes, as VMMs
//! do on a host. Not covered here: a VMM in another user namespace, and
//! hosts other than this PVM one (there the canary decides; see README).

use std::{
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use xevtchn_tests::{controller_binary, privileged};

fn report(out: &Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: not one JSON object ({e})"))
}

fn count(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("{field} in {v}"))
}

/// Every send served by exactly one path, all of them in the kernel,
/// nothing lost, and the canary seen once on each doorbell (MMIO, port I/O).
fn assert_all_fast(r: &Value, who: &str) {
    let sent = count(r, "sent");
    assert!(sent > 1000, "{who}: only {sent} sends");
    assert_eq!(count(r, "lost"), 0, "{who}: {r}");
    assert_eq!(count(r, "fast_sends"), sent, "{who}: fast sends are its own sends, all of them: {r}");
    assert_eq!(count(r, "fallback_sends"), 0, "{who}");
    assert_eq!(count(r, "unaccounted_sends"), 0, "{who}");
    assert_eq!(r["fast_path"], "embedded", "{who}");
    assert_eq!(count(&r["bpf"], "canary"), 2, "{who}: the canary doorbells, each seen once");
    assert_eq!(count(&r["bpf"], "not_fast"), 0, "{who}: no write of another VM reached its program");
}

#[test]
fn a_vm_inside_a_pid_namespace_serves_every_send_in_the_kernel() {
    let _vm = privileged();
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(controller_binary())
        .args(["run", "--backend", "bpf", "--workload", "flood", "--duration", "2", "--json"])
        .output()
        .expect("running unshare (util-linux)");
    assert_all_fast(&report(&out, "the VM in its own PID namespace"), "namespaced VM");
}

/// `pid`'s PIDs, host first, then in each nested namespace (NSpid).
fn namespace_pids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|pids| pids.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

fn start_flood(seconds: &str) -> Child {
    Command::new(controller_binary())
        .args(["run", "--backend", "bpf", "--workload", "flood", "--vcpus", "2", "--duration", seconds, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting xevtchn run")
}

#[test]
fn a_neighbour_whose_namespaced_pid_is_this_vms_host_pid_claims_none_of_its_doorbells() {
    let _vm = privileged();
    let victim = start_flood("4");
    let victim_pid = victim.id();
    // The neighbour runs in a PID namespace of its own, where its PID is
    // arranged (ns_last_pid) to be the victim's host PID; its guest writes
    // the same guest-physical doorbells, from its own ports.
    // `sh` is PID 1 of the new namespace; the controller it forks after
    // the `echo` gets the next PID (not exec'd: `exit` comes last).
    let script = format!(
        "echo {} > /proc/sys/kernel/ns_last_pid && {} run --backend bpf --workload flood --vcpus 2 --duration 2 \
         --json; exit $?",
        victim_pid - 1,
        controller_binary().display()
    );
    let neighbour = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the neighbour");
    // Check the arrangement while both run: some process of the
    // neighbour's namespace has the victim's host PID as its own PID.
    let start = Instant::now();
    let arranged = loop {
        let found = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .map(namespace_pids)
            .any(|pids| pids.len() == 2 && pids[1] == victim_pid && pids[0] != victim_pid);
        if found || start.elapsed() > Duration::from_secs(5) {
            break found;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let neighbour = neighbour.wait_with_output().expect("waiting for the neighbour");
    let victim = victim.wait_with_output().expect("waiting for the victim");
    assert!(arranged, "the neighbour never ran as PID {victim_pid} of its namespace: the test proves nothing");
    assert_all_fast(&report(&victim, "the victim VM"), "victim");
    assert_all_fast(&report(&neighbour, "the neighbour VM"), "neighbour");
}

#[test]
fn the_canary_finds_the_program_watching_this_vms_doorbells() {
    let _vm = privileged();
    let out = Command::new(controller_binary())
        .args(["run", "--backend", "bpf", "--workload", "pingpong", "--count", "100", "--json"])
        .output()
        .expect("xevtchn run");
    let r = report(&out, "pingpong");
    assert_eq!(r["backend"], "bpf");
    assert_eq!(r["fast_path"], "embedded");
    assert!(r["fast_path_unavailable"].is_null());
    assert_eq!(count(&r["bpf"], "canary"), 2, "MMIO and port-I/O doorbells");
    // The canary is no send: the tracer and the report count 200 sends.
    assert_eq!(count(&r, "sent"), 200);
    assert_eq!(count(&r, "fast_sends"), 200);
}

#[test]
fn guest_triggered_log_lines_are_rate_limited_on_both_backends() {
    let _vm = privileged();
    for backend in ["userspace", "bpf"] {
        let start = Instant::now();
        let out = Command::new(controller_binary())
            .args(["run", "--backend", backend, "--workload", "hostile", "--count", "10", "--json"])
            .output()
            .expect("xevtchn run");
        let seconds = start.elapsed().as_secs() + 1;
        let r = report(&out, "hostile");
        // 10,000 rounds of two stray writes and a stray read, all counted.
        assert!(count(&r["host"], "stray_accesses") >= 30_000, "{backend}: {}", r["host"]);
        if backend == "bpf" {
            assert!(count(&r["bpf"], "bad_writes") >= 20_000, "{backend}: {}", r["bpf"]);
        }
        let lines = String::from_utf8_lossy(&out.stderr).lines().count() as u64;
        assert!(lines <= 5 * seconds + 5, "{backend}: {lines} log lines in {seconds} s");
        assert!(lines >= 1, "{backend}: the stray accesses are said at least once");
    }
}
