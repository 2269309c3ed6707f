//! `cargo xtask fuzz --minutes M`: the libFuzzer target of the hypervisor
//! side (fuzz/fuzz_targets/domain.rs) with cargo-fuzz, on the dated nightly
//! the BPF crate already uses (sanitizers need a nightly). A violation
//! leaves its input under fuzz/artifacts/domain/; keep it as a regression
//! case in xen/src/domain_fuzz_tests.rs.

use std::process::Command;

use anyhow::{Context, Result};

use crate::{cmd, setup::Env, toolchain};

const CARGO_FUZZ_VERSION: &str = "0.13.2";

pub fn fuzz(env: &Env, minutes: f64) -> Result<()> {
    let tools = env.workspace.join("target/xtask-tools");
    let root = tools.join(format!("cargo-fuzz-{CARGO_FUZZ_VERSION}"));
    let bin = root.join("bin");
    if !bin.join("cargo-fuzz").is_file() {
        eprintln!("xtask: building cargo-fuzz {CARGO_FUZZ_VERSION}");
        cmd::run(
            Command::new("cargo")
                .args([&format!("+{}", toolchain::host_toolchain()), "install", "cargo-fuzz", "--locked"])
                .args(["--version", CARGO_FUZZ_VERSION, "--root"])
                .arg(&root)
                .env("CARGO_TARGET_DIR", tools.join("cargo-fuzz-build")),
        )
        .context("building cargo-fuzz failed")?;
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let seconds = (minutes * 60.0).round().max(1.0) as u64;
    cmd::run(
        Command::new("cargo")
            .current_dir(&env.workspace)
            .args([&format!("+{}", toolchain::bpf_toolchain()), "fuzz", "run", "--fuzz-dir", "fuzz", "domain"])
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .env("PATH", path),
    )
    .context("the fuzz target found a violation (its input is under fuzz/artifacts/domain/)")
}
