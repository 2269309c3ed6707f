//! Builds the two artifacts the controller embeds:
//! - the BPF object (`ebpf/programs`, bpfel, dated nightly, via aya-build);
//! - the built-in guest (`guest`, x86_64-unknown-none, the host toolchain).
//!
//! Without bpf-linker (a plain `cargo build` before `cargo xtask setup`) the
//! BPF object is left empty and the controller says so at run time, unless
//! XEVTCHN_REQUIRE_BPF=1 (set by xtask) makes that an error.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

/// Dated nightly for the BPF crate (xtask installs the same one).
const BPF_TOOLCHAIN: &str = include_str!("../ebpf/bpf-toolchain");

fn main() -> Result<()> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest.parent().context("controller has a parent")?.to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    build_bpf(&workspace, &out_dir)?;
    build_guest(&workspace, &out_dir)
}

fn build_bpf(workspace: &Path, out_dir: &Path) -> Result<()> {
    println!("cargo::rerun-if-env-changed=XEVTCHN_REQUIRE_BPF");
    println!("cargo::rerun-if-env-changed=PATH");
    let required = env::var("XEVTCHN_REQUIRE_BPF").is_ok_and(|v| v == "1");
    let skipped = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v == "true");
    let objects = ["xevtchn-doorbell", "xevtchn-trace", "xevtchn-smoke"].map(|name| out_dir.join(name));
    if !skipped && let Some(linker_dir) = find_bpf_linker(workspace) {
        // aya-build runs the nested cargo with our PATH: put bpf-linker on it.
        let path = env::var("PATH").unwrap_or_default();
        // SAFETY: build scripts are single-threaded; nothing reads the
        // environment concurrently.
        unsafe { env::set_var("PATH", format!("{}:{path}", linker_dir.display())) };
        println!("cargo::rerun-if-changed={}", workspace.join("ebpf/common/src").display());
        println!("cargo::rerun-if-changed={}", workspace.join("ebpf/bpf-toolchain").display());
        // The nested build's progress would come out as ~30 `warning:` lines
        // of every build; quiet, it prints only its warnings and errors.
        // SAFETY: as above.
        unsafe { env::set_var("CARGO_TERM_QUIET", "true") };
        let programs = workspace.join("ebpf/programs");
        let root_dir = programs.to_str().context("workspace path is not UTF-8")?;
        return aya_build::build_ebpf(
            [aya_build::Package { name: "xevtchn-programs", root_dir, ..Default::default() }],
            aya_build::Toolchain::Custom(BPF_TOOLCHAIN.trim()),
        );
    }
    if required {
        bail!("bpf-linker not found (PATH or target/xtask-tools): run `cargo xtask setup`");
    }
    println!(
        "cargo::warning=building without the BPF object (no bpf-linker): run `cargo xtask setup`, or build through `cargo xtask build`"
    );
    for object in objects {
        fs::write(object, [])?;
    }
    Ok(())
}

/// bpf-linker on PATH, or where `cargo xtask setup` caches it.
fn find_bpf_linker(workspace: &Path) -> Option<PathBuf> {
    let on_path = env::var_os("PATH")
        .into_iter()
        .flat_map(|p| env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("bpf-linker").is_file());
    on_path.or_else(|| {
        let cache = workspace.join("target/xtask-tools");
        fs::read_dir(cache)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("bin"))
            .find(|bin| bin.join("bpf-linker").is_file())
    })
}

fn build_guest(workspace: &Path, out_dir: &Path) -> Result<()> {
    let guest = out_dir.join("xevtchn-guest");
    println!("cargo::rerun-if-env-changed=XEVTCHN_SKIP_GUEST");
    if env::var("XEVTCHN_SKIP_GUEST").is_ok_and(|v| v == "1") {
        println!("cargo::warning=XEVTCHN_SKIP_GUEST=1: building without the built-in guest");
        fs::write(&guest, [])?;
        return Ok(());
    }
    for dir in ["guest/src", "guest/link.ld", "ebpf/common/src"] {
        println!("cargo::rerun-if-changed={}", workspace.join(dir).display());
    }
    let target_dir = out_dir.join("guest-target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--package", "xevtchn-guest"])
        .args(["--target", "x86_64-unknown-none", "--target-dir"])
        .arg(&target_dir)
        // A static image at its link address: the VMM applies no relocations.
        .env("CARGO_ENCODED_RUSTFLAGS", "-Crelocation-model=static")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    let status = cmd.status().context("running cargo for the guest")?;
    if !status.success() {
        bail!(
            "building the built-in guest failed ({status}); is the x86_64-unknown-none target installed? (`cargo xtask setup`)"
        );
    }
    let built = target_dir.join("x86_64-unknown-none/release/xevtchn-guest");
    fs::copy(&built, &guest).with_context(|| format!("copying {}", built.display()))?;
    Ok(())
}
