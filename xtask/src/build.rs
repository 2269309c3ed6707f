//! Building, running and testing, with bpf-linker on PATH so that the
//! controller's build script can compile and embed the BPF object.

use std::{ffi::OsString, path::PathBuf, process::Command};

use anyhow::{Context, Result};

use crate::{cmd, setup::Env};

/// Host crates tested without privileges.
const UNPRIVILEGED: &[&str] = &["xevtchn-common", "xevtchn-xen", "xevtchn", "xtask"];
/// The crate of privileged end-to-end tests (real KVM, real BPF).
const PRIVILEGED: &str = "xevtchn-tests";

pub fn cargo(env: &Env) -> Result<Command> {
    let mut path = OsString::from(env.bpf_linker_bin.as_os_str());
    if let Some(old) = std::env::var_os("PATH") {
        path.push(":");
        path.push(old);
    }
    let mut cmd = Command::new("cargo");
    cmd.current_dir(&env.workspace)
        .env("PATH", path)
        // The BPF object is required here: fail rather than embed none.
        .env("XEVTCHN_REQUIRE_BPF", "1");
    Ok(cmd)
}

pub fn build(env: &Env) -> Result<()> {
    cmd::run(cargo(env)?.args(["build", "--release", "--package", "xevtchn"]))
}

pub fn run(env: &Env, args: &[String]) -> Result<()> {
    build(env)?;
    let bin: PathBuf = env.workspace.join("target/release/xevtchn");
    cmd::run(Command::new(&bin).arg("run").args(args)).with_context(|| format!("{} run", bin.display()))
}

pub fn test(env: &Env) -> Result<()> {
    crate::lint::lint(env).context("lint failed (cargo xtask lint)")?;
    let mut unprivileged = cargo(env)?;
    unprivileged.args(["test", "--release"]);
    for pkg in UNPRIVILEGED {
        unprivileged.args(["--package", pkg]);
    }
    cmd::run(&mut unprivileged).context("unprivileged tests failed")?;
    // The privileged tests also start the controller binary itself.
    build(env)?;
    // One VM at a time: the machine has 2 cores and the tests measure delivery.
    cmd::run(
        cargo(env)?
            .args(["test", "--release", "--package", PRIVILEGED, "--", "--test-threads=1"])
            .env("XEVTCHN_BIN", env.workspace.join("target/release/xevtchn")),
    )
    .context("privileged tests failed")?;
    // The soak, short: every piece at once for 40 s (`cargo xtask soak` runs it long).
    crate::soak::soak(&env.workspace.join("target/release/xevtchn"), std::time::Duration::from_secs(40))
        .context("the short soak failed (cargo xtask soak --minutes 1 runs it alone)")
}
