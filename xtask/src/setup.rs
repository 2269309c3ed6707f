//! `cargo xtask setup`: everything a fresh machine needs, each step skipped
//! when already done.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::{cmd, probe, toolchain};

/// Debian packages: bpftool (inspecting programs), libxen-dev (Xen's public
/// headers, for the ABI test), linux-perf (counting kvm tracepoints in tests),
/// qemu-system-x86 (a VMM that is not xevtchn's, traced in tests).
const DEBIAN_PACKAGES: &[&str] = &["bpftool", "libxen-dev", "linux-perf", "qemu-system-x86"];

/// What the later steps need to know about the set-up.
pub struct Env {
    pub workspace: PathBuf,
    /// Directory holding bpf-linker, put first on PATH for builds.
    pub bpf_linker_bin: PathBuf,
}

pub fn setup() -> Result<Env> {
    let workspace = workspace_root();
    toolchain::install_toolchains()?;
    let cache = workspace.join("target").join("xtask-tools");
    let bpf_linker_bin = toolchain::install_bpf_linker(&cache)?;
    install_debian_packages()?;
    probe::mount_tracefs();
    probe::report();
    Ok(Env { workspace, bpf_linker_bin })
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn install_debian_packages() -> Result<()> {
    let missing: Vec<&str> = DEBIAN_PACKAGES.iter().copied().filter(|pkg| !dpkg_installed(pkg)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        eprintln!("xtask: warning: not a Debian-like system; install by hand: {}", missing.join(" "));
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    let apt = |args: &[&str]| cmd::run(Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive"));
    apt(&["update", "-qq"])
        .context("apt-get update failed: check network access to the Debian mirrors, or run as root")?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install).with_context(|| format!("could not install {}: install them by hand, as root", missing.join(" ")))
}

fn dpkg_installed(pkg: &str) -> bool {
    cmd::output(Command::new("dpkg-query").args(["-W", "-f", "${Status}", pkg]))
        .map(|s| s.contains("install ok installed"))
        .unwrap_or(false)
}
