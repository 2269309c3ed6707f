//! `cargo xtask lint`: rustfmt's check over the workspace, and clippy with
//! warnings denied on every crate for the target it is built for: the host
//! crates, the guest (x86_64-unknown-none) and the BPF programs (bpfel, the
//! dated nightly). `cargo xtask test` runs it first.

use std::process::Command;

use anyhow::{Context, Result};

use crate::{build, cmd, setup::Env, toolchain};

/// Host crates, with their tests and build scripts.
const HOST: &[&str] = &["xevtchn-common", "xevtchn-xen", "xevtchn", "xtask", "xevtchn-tests"];

pub fn lint(env: &Env) -> Result<()> {
    cmd::run(Command::new("cargo").current_dir(&env.workspace).args(["fmt", "--all", "--check"]))
        .context("rustfmt: run `cargo fmt --all`")?;
    let mut host = build::cargo(env)?;
    host.args(["clippy", "--release", "--all-targets"]);
    for pkg in HOST {
        host.args(["--package", pkg]);
    }
    cmd::run(host.args(["--", "-D", "warnings"])).context("clippy on the host crates")?;
    cmd::run(build::cargo(env)?.args([
        "clippy",
        "--release",
        "--package",
        "xevtchn-guest",
        "--target",
        "x86_64-unknown-none",
        "--",
        "-D",
        "warnings",
    ]))
    .context("clippy on the guest")?;
    cmd::run(
        build::cargo(env)?
            .arg(format!("+{}", toolchain::bpf_toolchain()))
            .args(["clippy", "--release", "--package", "xevtchn-programs", "--target", "bpfel-unknown-none"])
            .args(["-Z", "build-std=core", "--", "-D", "warnings"])
            // The BPF crate's own target directory: another toolchain.
            .env("CARGO_TARGET_DIR", env.workspace.join("target/lint-bpf")),
    )
    .context("clippy on the BPF programs")
}
