//! Pinned toolchains and bpf-linker, built against the BPF nightly's own LLVM.
//!
//! bpf-linker must use the LLVM major of the nightly that compiles the BPF
//! crate. No such LLVM is packaged by Debian, but every rustup toolchain ships
//! its libLLVM: bpf-linker is built against that (notes/host.md).

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

use crate::cmd;

/// Host toolchain: the channel rust-toolchain.toml pins.
pub fn host_toolchain() -> &'static str {
    include_str!("../../rust-toolchain.toml")
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel = "))
        .map(|v| v.trim_matches('"'))
        .expect("rust-toolchain.toml names a channel")
}

/// Dated nightly that compiles the BPF crate (needs rust-src for
/// build-std), as ebpf/bpf-toolchain names it for the controller's build
/// script too.
pub fn bpf_toolchain() -> &'static str {
    include_str!("../../ebpf/bpf-toolchain").trim()
}
pub const BPF_LINKER_VERSION: &str = "0.13.0";

/// Installs both toolchains with the components and targets they need.
pub fn install_toolchains() -> Result<()> {
    let installed = cmd::output(Command::new("rustup").args(["toolchain", "list"]))
        .context("rustup is needed to install the pinned toolchains: install it from your distribution or rustup.rs")?;
    for (toolchain, extra) in [
        (host_toolchain(), &["-c", "clippy,rustfmt", "-t", "x86_64-unknown-none"][..]),
        (bpf_toolchain(), &["-c", "rust-src,clippy"][..]),
    ] {
        if installed.lines().any(|l| l.starts_with(toolchain)) && has_components(toolchain, extra)? {
            continue;
        }
        eprintln!("xtask: installing toolchain {toolchain}");
        cmd::run(
            Command::new("rustup")
                .args(["toolchain", "install", toolchain, "--profile", "minimal"])
                .args(extra),
        )
        .with_context(|| {
            format!("could not download toolchain {toolchain}: check network access to the Rust distribution server, then rerun `cargo xtask setup`")
        })?;
    }
    Ok(())
}

fn has_components(toolchain: &str, extra: &[&str]) -> Result<bool> {
    let list =
        cmd::output(Command::new("rustup").args(["component", "list", "--installed", "--toolchain", toolchain]))?;
    let targets =
        cmd::output(Command::new("rustup").args(["target", "list", "--installed", "--toolchain", toolchain]))?;
    let wanted = extra.chunks(2).flat_map(|pair| pair[1].split(',')).map(str::to_owned);
    Ok(wanted.into_iter().all(|w| list.lines().chain(targets.lines()).any(|l| l.starts_with(&w))))
}

/// Builds bpf-linker into `cache` unless it is there already; returns its bin dir.
pub fn install_bpf_linker(cache: &Path) -> Result<PathBuf> {
    let (bpf, host) = (bpf_toolchain(), host_toolchain());
    let sysroot =
        PathBuf::from(cmd::output(Command::new("rustc").args([&format!("+{bpf}"), "--print", "sysroot"]))?.trim());
    let llvm_major = llvm_major(&cmd::output(Command::new("rustc").args([&format!("+{bpf}"), "-vV"]))?)?;
    let root = cache.join(format!("bpf-linker-{BPF_LINKER_VERSION}-llvm{llvm_major}"));
    let bin = root.join("bin");
    if bin.join("bpf-linker").is_file() {
        return Ok(bin);
    }
    let lib = sysroot.join("lib");
    let libllvm = fs::read_dir(&lib)
        .with_context(|| format!("reading {}", lib.display()))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .find(|name| name.starts_with("libLLVM.so."))
        .with_context(|| format!("{bpf} ships no libLLVM.so.* in {}", lib.display()))?;
    // An LLVM prefix holding only the shared library, under both names
    // llvm-sys looks for.
    let prefix = root.join("llvm");
    fs::create_dir_all(prefix.join("lib"))?;
    for name in ["libLLVM.so", libllvm.as_str()] {
        let link = prefix.join("lib").join(name);
        let _ = fs::remove_file(&link);
        symlink(lib.join(&libllvm), &link).with_context(|| format!("linking {}", link.display()))?;
    }
    eprintln!("xtask: building bpf-linker {BPF_LINKER_VERSION} against LLVM {llvm_major} of {bpf}");
    cmd::run(
        Command::new("cargo")
            .args([&format!("+{host}"), "install", "bpf-linker", "--locked"])
            .args(["--version", BPF_LINKER_VERSION, "--no-default-features"])
            .args(["--features", &format!("llvm-{llvm_major}")])
            .arg("--root")
            .arg(&root)
            .env("LLVM_PREFIX", &prefix)
            .env("CARGO_TARGET_DIR", cache.join("bpf-linker-build")),
    )
    .context("building bpf-linker failed")?;
    Ok(bin)
}

fn llvm_major(verbose_version: &str) -> Result<u32> {
    let line = verbose_version
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))
        .context("rustc -vV printed no LLVM version")?;
    match line.split('.').next().and_then(|m| m.parse().ok()) {
        Some(major) => Ok(major),
        None => bail!("cannot read the LLVM major from {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_toolchains_are_read_from_their_files() {
        assert!(host_toolchain().chars().next().is_some_and(|c| c.is_ascii_digit()), "{}", host_toolchain());
        assert!(bpf_toolchain().starts_with("nightly-20"), "{}", bpf_toolchain());
    }

    #[test]
    fn the_llvm_major_comes_from_rustc_vv() {
        let vv = "rustc 1.101.0-nightly\nbinary: rustc\nLLVM version: 23.1.4\n";
        assert_eq!(llvm_major(vv).unwrap(), 23);
        assert!(llvm_major("rustc 1.0\n").is_err());
    }
}
