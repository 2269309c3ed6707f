//! The command line's exit statuses, as scripts see them: 0 ok, 1 events
//! lost or errors, 2 bad usage, 3 the host lacks something (privileges,
//! /dev/kvm, BPF, tracefs). The "lacks" cases run the binary as `nobody`
//! with no capability.

use std::{
    os::unix::fs::PermissionsExt,
    process::{Command, Output},
};

use xevtchn_tests::{controller_binary, require_privileged_host};

fn xevtchn(args: &[&str]) -> Output {
    Command::new(controller_binary()).args(args).output().expect("running xevtchn")
}

/// `xevtchn ARGS` as nobody, with no capability (a copy of the binary
/// nobody may run).
fn as_nobody(args: &[&str]) -> Output {
    as_nobody_with(&["--inh-caps=-all"], args)
}

/// `xevtchn ARGS` as nobody, with the capabilities `caps` (setpriv flags) give.
fn as_nobody_with(caps: &[&str], args: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("xevtchn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let binary = dir.join("xevtchn");
    std::fs::copy(controller_binary(), &binary).expect("copying the binary");
    for path in [&dir, &binary] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--bounding-set=-all,+bpf,+perfmon"])
        .args(caps)
        .arg(&binary)
        .args(args)
        .env("XEVTCHN_SOCKET", "/nonexistent")
        .output()
        .expect("setpriv (util-linux)");
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn status(out: &Output) -> Option<i32> {
    out.status.code()
}

#[test]
fn bad_usage_is_status_2_and_says_what_to_do() {
    let plain = xevtchn(&[]);
    assert_eq!(status(&plain), Some(2));
    let help = String::from_utf8_lossy(&plain.stderr);
    for command in ["run", "bench", "trace", "serve"] {
        assert!(help.contains(command), "plain xevtchn lists {command}: {help}");
    }
    let both = xevtchn(&["run", "--count", "5", "--duration", "1"]);
    assert_eq!(status(&both), Some(2));
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
    let mask = xevtchn(&["bench", "--workloads", "mask"]);
    assert_eq!(status(&mask), Some(2));
    assert!(String::from_utf8_lossy(&mask.stderr).contains("mask is not a benchmark workload"));
    // vCPUs from 32 on need a guest that registers their vcpu_infos.
    let wide = xevtchn(&["run", "--vcpus", "33"]);
    assert_eq!(status(&wide), Some(2));
    assert!(String::from_utf8_lossy(&wide.stderr).contains("the built-in guest runs at most 32 vCPUs"));
    let wider = xevtchn(&["run", "--kernel", "/nonexistent", "--vcpus", "129"]);
    assert_eq!(status(&wider), Some(2));
    assert!(String::from_utf8_lossy(&wider.stderr).contains("129 is not in 1..=128"));
}

#[test]
fn a_host_that_lacks_a_piece_is_status_3_and_names_it() {
    require_privileged_host();
    let run = as_nobody(&["run", "--backend", "userspace", "--json"]);
    assert_eq!(status(&run), Some(3), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stderr).contains("/dev/kvm: permission denied"));
    let trace = as_nobody(&["trace", "--duration", "1", "--json"]);
    assert_eq!(status(&trace), Some(3), "{}", String::from_utf8_lossy(&trace.stderr));
    let said = String::from_utf8_lossy(&trace.stderr);
    assert!(said.contains("CAP_BPF"), "{said}");
    // Each cause once (aya's map error repeats its own message in its source).
    let first = said.find("failed to create map").expect("the map that failed");
    assert!(!said[first + 1..].contains("failed to create map"), "{said}");
    // With CAP_BPF and CAP_PERFMON but not root, tracefs (root-only, as
    // here) is what is missing: said so, not "tracefs is not mounted".
    let root_only = std::fs::metadata("/sys/kernel/tracing").map(|m| m.permissions().mode() & 0o007 == 0);
    assert!(root_only.unwrap_or(false), "this test needs tracefs root-only, as Debian mounts it");
    let trace = as_nobody_with(
        &["--inh-caps=-all,+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon"],
        &["trace", "--duration", "1"],
    );
    let said = String::from_utf8_lossy(&trace.stderr);
    assert_eq!(status(&trace), Some(3), "{said}");
    assert!(said.contains("tracefs is mounted but root-only here") && !said.contains("not mounted ("), "{said}");
}

#[test]
fn completions_and_man_pages_come_from_the_flag_definitions() {
    let bash = xevtchn(&["completions", "bash"]);
    assert_eq!(status(&bash), Some(0), "{}", String::from_utf8_lossy(&bash.stderr));
    let script = String::from_utf8_lossy(&bash.stdout);
    for word in ["_xevtchn", "serve", "--backend", "--workloads", "--socket-mode"] {
        assert!(script.contains(word), "bash completion knows {word}");
    }
    let nosuch = xevtchn(&["completions", "tcsh"]);
    assert_eq!(status(&nosuch), Some(2));
    assert!(String::from_utf8_lossy(&nosuch.stderr).contains("tcsh"));

    let page = xevtchn(&["man"]);
    assert_eq!(status(&page), Some(0));
    let roff = String::from_utf8_lossy(&page.stdout);
    assert!(roff.starts_with(".ie") || roff.contains(".TH xevtchn"), "a roff page: {roff:.200}");
    assert!(roff.contains("completions"), "the page lists the subcommands");

    let dir = std::env::temp_dir().join(format!("xevtchn-man-{}", std::process::id()));
    let pages = xevtchn(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(status(&pages), Some(0), "{}", String::from_utf8_lossy(&pages.stderr));
    for name in ["xevtchn.1", "xevtchn-run.1", "xevtchn-bench.1", "xevtchn-trace.1", "xevtchn-serve.1"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(text.contains(".TH"), "{name} is a man page");
    }
    let run_page = std::fs::read_to_string(dir.join("xevtchn-run.1")).unwrap();
    assert!(run_page.contains("backend"), "xevtchn-run.1 documents --backend");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bench through a pipe: progress lines on stderr (not silence), and every
/// percentile backed by a stated number of samples.
#[test]
fn bench_in_a_pipe_reports_progress_and_sample_counts() {
    require_privileged_host();
    let svg = std::env::temp_dir().join(format!("xevtchn-bench-{}.svg", std::process::id()));
    let plot = ["--plot", svg.to_str().unwrap()];
    let out = xevtchn(
        &[&["bench", "--workloads", "flood", "--repeat", "1", "--duration", "0.3", "--json"][..], &plot].concat(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status(&out), Some(0), "{stderr}");
    // The plot says where and what it measured, and n per latency curve.
    let picture = std::fs::read_to_string(&svg).expect("the --plot SVG");
    let _ = std::fs::remove_file(&svg);
    assert!(picture.contains("bench on") && picture.contains("(Linux "), "a title naming the host");
    assert!(picture.contains("median bar, min-max whisker"));
    assert!(picture.contains("(log scale)") || picture.contains("no run measured 100 sends"));
    if picture.contains("(log scale)") {
        assert!(picture.contains("(n="), "n in the legend");
    }
    assert!(stderr.contains("bench: 1/3 runs") && stderr.contains("bench: 3/3 runs"), "{stderr}");
    assert!(stderr.contains("flood on bpf"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("bench JSON");
    xevtchn_tests::assert_schema("bench.json", &report);
    let flood = &report["workloads"][0];
    let min = 100;
    for backend in flood["backends"].as_array().expect("backends") {
        let runs = backend["runs"].as_array().expect("runs");
        let counted: u64 = runs.iter().map(|r| r["latency_ns"]["n"].as_u64().unwrap()).filter(|&n| n >= min).sum();
        assert_eq!(backend["latency_ns"]["n"].as_u64(), Some(counted), "{backend}");
        if counted == 0 {
            assert!(backend["latency_ns"]["p99"].is_null(), "no percentile without samples: {backend}");
        }
    }
    let backends = flood["backends"].as_array().unwrap();
    let measured = |b: &serde_json::Value| b["latency_ns"]["n"].as_u64() > Some(0);
    let both = measured(&backends[0]) && measured(&backends[1]);
    assert_eq!(flood["ratios"]["p99_userspace_over_bpf"].is_null(), !both, "{}", flood["ratios"]);
}

/// Sends SIGTERM to a command after `after`, returning its output.
fn terminated_after(args: &[&str], after: std::time::Duration) -> Output {
    let child = Command::new(controller_binary())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running xevtchn");
    std::thread::sleep(after);
    // SAFETY: kill has no memory effects; the child is ours and unreaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    child.wait_with_output().expect("waiting for xevtchn")
}

#[test]
fn trace_without_a_terminal_prints_its_totals_on_sigterm() {
    require_privileged_host();
    let out = terminated_after(&["trace", "--json"], std::time::Duration::from_millis(1500));
    assert_eq!(status(&out), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let last = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_string();
    let total: serde_json::Value = serde_json::from_str(&last).expect("a JSON line");
    assert_eq!(total["kind"], "total", "{last}");
}

/// `sh -c SCRIPT` on a pseudo-terminal (util-linux `script`): what the
/// terminal received, escape sequences included.
fn on_a_pty(shell: &str) -> String {
    let log = std::env::temp_dir().join(format!("xevtchn-pty-{}-{}", std::process::id(), shell.len()));
    let out = Command::new("script")
        .args(["-qec", &format!("sh -c '{shell}'")])
        .arg(&log)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux)");
    assert!(out.status.success(), "script: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&std::fs::read(&log).expect("the pty log")).into_owned();
    let _ = std::fs::remove_file(&log);
    text
}

/// The terminal ends as it began: out of the alternate screen, cursor shown,
/// line editing (icanon) back on.
fn assert_terminal_restored(pty: &str) {
    let (enter, leave) = ("\x1b[?1049h", "\x1b[?1049l");
    let entered = pty.rfind(enter).unwrap_or_else(|| panic!("the live view never started: {pty:.400}"));
    assert!(pty.rfind(leave).is_some_and(|left| left > entered), "alternate screen left: {pty:.400}");
    assert!(pty.contains("\x1b[?25h"), "cursor shown again");
    assert!(pty.contains("line editing: icanon") && !pty.contains("-icanon"), "raw mode ended: {pty:.400}");
}

#[test]
fn live_views_give_the_terminal_back_on_sigterm() {
    require_privileged_host();
    let binary = controller_binary();
    let binary = binary.to_str().unwrap();
    let then = "p=$!; sleep 2; kill -TERM $p; wait $p; echo status=$?; echo line editing: $(stty -a | grep -o -- \"-*icanon\")";
    let trace = on_a_pty(&format!("{binary} trace --interval 200 & {then}"));
    assert_terminal_restored(&trace);
    assert!(trace.contains("== total over") && trace.contains("status=0"), "{trace}");

    // The guest stops early, checks its events and reports: status 0.
    let run = on_a_pty(&format!("{binary} run --backend userspace --workload flood --duration 30 & {then}"));
    assert_terminal_restored(&run);
    assert!(run.contains("SIGTERM: stopping the guest"), "{run}");
    assert!(run.contains("stopped early by SIGTERM") && run.contains("status=0"), "{run}");
}

/// Without a terminal: the first SIGTERM ends the run with its report
/// (the guest stopped sending and checked every event), a second signal at
/// once with 128 + that signal and no report.
#[test]
fn run_prints_its_report_on_sigterm_and_quits_on_a_second() {
    require_privileged_host();
    let args = ["run", "--backend", "bpf", "--workload", "flood", "--duration", "60", "--json"];
    let out = terminated_after(&args, std::time::Duration::from_millis(2500));
    assert_eq!(status(&out), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the run's JSON");
    xevtchn_tests::assert_schema("run.json", &report);
    assert_eq!(report["stopped_by"], "SIGTERM");
    assert_eq!(report["lost"], 0);
    assert!(report["sent"].as_u64() > Some(0) && report["duration_s"].as_f64() < Some(30.0), "{report}");

    let child = Command::new(controller_binary())
        .args(["run", "--backend", "userspace", "--workload", "pingpong", "--count", "100000000", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running xevtchn");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // Two signals at once (different ones, so that neither is merged into
    // the other while pending): the second comes before the guest finished.
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: kill has no memory effects; the child is ours and unreaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    }
    let out = child.wait_with_output().expect("waiting for xevtchn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(status(&out), Some(130 | 143)), "128 + the second signal: {:?} {stderr}", out.status);
    assert!(stderr.contains("no report") && out.stdout.is_empty(), "{stderr}");
}
