//! Helpers of the privileged end-to-end tests (real KVM, real BPF).
//!
//! These tests never skip: on a host that lacks a piece they FAIL, naming
//! the piece, because CI here has /dev/kvm and BPF and a skip would hide a
//! broken set-up.

pub mod pvh;

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

static ONE_VM_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Checks the host (see `require_privileged_host`) and returns a guard that
/// keeps other tests of this process from running a VM meanwhile: BPF
/// filters select the VMM by process, so two VMs in one process would count
/// each other's events.
pub fn privileged() -> MutexGuard<'static, ()> {
    require_privileged_host();
    ONE_VM_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Panics with a precise message unless this host can run privileged tests.
pub fn require_privileged_host() {
    let mut missing = Vec::new();
    if let Err(e) = fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        missing.push(format!("/dev/kvm cannot be opened ({e}): run on a KVM host, as root"));
    }
    match effective_caps() {
        Some(caps) if caps & (1 << 39) != 0 && caps & (1 << 38) != 0 => {}
        _ => missing.push("CAP_BPF and CAP_PERFMON are needed: run as root".into()),
    }
    if !Path::new("/sys/kernel/tracing/events/kvm/kvm_mmio").is_dir() {
        missing.push(
            "tracefs with kvm events is not mounted: run `cargo xtask setup` (mounts /sys/kernel/tracing)".into(),
        );
    }
    assert!(
        missing.is_empty(),
        "PRIVILEGED TEST CANNOT RUN on this host (this is a failure, not a skip):\n  {}",
        missing.join("\n  ")
    );
}

fn effective_caps() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The controller binary: XEVTCHN_BIN (set by `cargo xtask test`), else the
/// release build next to this workspace.
pub fn controller_binary() -> PathBuf {
    let path = std::env::var_os("XEVTCHN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/xevtchn"));
    assert!(path.is_file(), "{} is missing: build it (cargo xtask build) or set XEVTCHN_BIN", path.display());
    path
}

/// Panics unless `doc` is valid against the JSON Schema `docs/schema/NAME`
/// (the reference of what the commands print), listing every violation.
pub fn assert_schema(name: &str, doc: &serde_json::Value) {
    let errors = schema_errors(name, doc);
    assert!(errors.is_empty(), "output does not match docs/schema/{name}:\n  {}\n{doc}", errors.join("\n  "));
}

/// The violations of `doc` against `docs/schema/NAME`, one line each.
pub fn schema_errors(name: &str, doc: &serde_json::Value) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let validator =
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{} is no schema: {e}", path.display()));
    validator.iter_errors(doc).map(|e| format!("at {}: {e}", e.instance_path())).collect()
}
