//! The capability report printed by `cargo xtask setup`: what this host can
//! do for xevtchn, and what to do about each missing piece.

use std::{fs, path::Path, process::Command};

use kvm_bindings::KVM_CAP_XEN_HVM;
use kvm_ioctls::Kvm;

const TRACEFS: &str = "/sys/kernel/tracing";
/// Capability bit numbers (include/uapi/linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The KVM tracepoints xevtchn hooks or reports on.
const KVM_TRACEPOINTS: &[&str] = &[
    "kvm_mmio",
    "kvm_pio",
    "kvm_userspace_exit",
    "kvm_msi_set_irq",
    "kvm_set_irq",
    "kvm_apic_accept_irq",
    "kvm_eoi",
    "kvm_vcpu_wakeup",
    "kvm_xen_hypercall",
];

/// Mounts tracefs if it is not mounted; aya attaches classic tracepoints
/// through /sys/kernel/tracing/events/<category>/<name>/id.
pub fn mount_tracefs() {
    if Path::new(TRACEFS).join("events").is_dir() {
        return;
    }
    let status = Command::new("mount").args(["-t", "tracefs", "nodev", TRACEFS]).status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!(
            "xtask: warning: could not mount tracefs at {TRACEFS}: run `mount -t tracefs nodev {TRACEFS}` as root"
        );
    }
}

pub fn report() {
    println!("== host capabilities");
    kvm_lines();
    let caps = effective_caps();
    for (name, bit) in [("CAP_BPF", CAP_BPF), ("CAP_PERFMON", CAP_PERFMON), ("CAP_SYS_ADMIN", CAP_SYS_ADMIN)] {
        match caps {
            Some(c) if c & (1 << bit) != 0 => line(true, name, "yes"),
            Some(_) => line(false, name, "missing: run as root, or grant CAP_BPF and CAP_PERFMON"),
            None => line(false, name, "unknown: /proc/self/status has no CapEff"),
        }
    }
    let btf = Path::new("/sys/kernel/btf/vmlinux").is_file();
    line(
        btf,
        "BTF",
        if btf { "/sys/kernel/btf/vmlinux" } else { "missing: a kernel built with CONFIG_DEBUG_INFO_BTF is needed" },
    );
    let events = Path::new(TRACEFS).join("events/kvm");
    let tracefs = Path::new(TRACEFS).join("events").is_dir();
    line(
        tracefs,
        "tracefs",
        if tracefs { TRACEFS } else { "not mounted: run `mount -t tracefs nodev /sys/kernel/tracing` as root" },
    );
    if tracefs {
        let (present, absent): (Vec<&str>, Vec<&str>) = KVM_TRACEPOINTS.iter().partition(|tp| events.join(tp).is_dir());
        line(absent.is_empty() || absent == ["kvm_xen_hypercall"], "kvm tracepoints", &present.join(" "));
        if !absent.is_empty() {
            line(false, "kvm tracepoints absent", &absent.join(" "));
        }
    }
}

fn kvm_lines() {
    match Kvm::new() {
        Ok(kvm) => {
            line(true, "/dev/kvm", &format!("KVM API version {}", kvm.get_api_version()));
            let xen = kvm.check_extension_raw(KVM_CAP_XEN_HVM as _) != 0;
            info(
                "KVM_CAP_XEN_HVM",
                if xen {
                    "yes (kvm_xen_hypercall can fire)"
                } else {
                    "no: xevtchn provides event channels itself; the global VECTOR callback is unavailable"
                },
            );
        }
        Err(e) if e.errno() == libc::ENOENT => {
            line(false, "/dev/kvm", "missing: load kvm (modprobe kvm_intel or kvm_amd) or use a host with KVM")
        }
        Err(e) if e.errno() == libc::EACCES => {
            line(false, "/dev/kvm", "permission denied: run as root or join the kvm group")
        }
        Err(e) => line(false, "/dev/kvm", &format!("cannot open: {e}")),
    }
}

fn effective_caps() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// A fact that is not a requirement.
fn info(what: &str, detail: &str) {
    println!("  [info] {what:<18} {detail}");
}

fn line(ok: bool, what: &str, detail: &str) {
    println!("  [{}] {what:<18} {detail}", if ok { " ok " } else { "MISS" });
}
