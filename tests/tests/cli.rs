//! The command line's exit statuses, as scripts see them: 0 ok, 1 events
//! lost or errors, 2 bad usage, 3 the host lacks something (privileges,
//! /dev/kvm, BPF, tracefs). The "lacks" cases run the binary as `nobody`
//! with no capability.

use std::process::{Command, Output};

use xevtchn_tests::{controller_binary, require_privileged_host};

fn xevtchn(args: &[&str]) -> Output {
    Command::new(controller_binary()).args(args).output().expect("running xevtchn")
}

/// `xevtchn ARGS` as nobody, with no capability (a copy of the binary
/// nobody may run).
fn as_nobody(args: &[&str]) -> Output {
    let dir = std::env::temp_dir().join(format!("xevtchn-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let binary = dir.join("xevtchn");
    std::fs::copy(controller_binary(), &binary).expect("copying the binary");
    for path in [&dir, &binary] {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
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
}

#[test]
fn a_host_that_lacks_a_piece_is_status_3_and_names_it() {
    require_privileged_host();
    let run = as_nobody(&["run", "--backend", "userspace", "--json"]);
    assert_eq!(status(&run), Some(3), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stderr).contains("/dev/kvm: permission denied"));
    let trace = as_nobody(&["trace", "--duration", "1", "--json"]);
    assert_eq!(status(&trace), Some(3), "{}", String::from_utf8_lossy(&trace.stderr));
    assert!(String::from_utf8_lossy(&trace.stderr).contains("CAP_BPF"));
}
