//! Killing the controller leaves nothing behind in the kernel: its BPF
//! programs and maps are released with the process (they are held by file
//! descriptors only, never pinned).

use std::{
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use xevtchn_tests::{controller_binary, privileged};

/// The ids of the BPF programs process `pid` holds file descriptors of
/// (`prog_id:` in their fdinfo).
fn programs_held_by(pid: u32) -> Vec<u32> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return Vec::new() };
    fds.filter_map(|fd| std::fs::read_to_string(fd.ok()?.path()).ok())
        .filter_map(|info| info.lines().find_map(|l| l.strip_prefix("prog_id:"))?.trim().parse().ok())
        .collect()
}

/// Whether the kernel still has program `id` loaded.
fn loaded(id: u32) -> bool {
    let out = Command::new("bpftool")
        .args(["-j", "prog", "show", "id", &id.to_string()])
        .output()
        .expect("running bpftool (cargo xtask setup installs it)");
    out.status.success()
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
    let mut child = Command::new(controller_binary())
        .args(["run", "--backend", "bpf", "--workload", "flood", "--duration", "30", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting xevtchn");
    // Its own programs (the doorbell's), not a count that other processes'
    // programs, released late, could move.
    let mut held = Vec::new();
    wait_for("the controller to load its programs", Duration::from_secs(20), || {
        held = programs_held_by(child.id());
        !held.is_empty()
    });
    child.kill().expect("SIGKILL");
    child.wait().expect("reaping xevtchn");
    wait_for("the controller's programs to be released", Duration::from_secs(10), || {
        held.iter().all(|&id| !loaded(id))
    });
}
