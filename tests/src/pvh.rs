//! The PVH test kernels of `tests/guests/pvh/`: small third-party-style Xen
//! guests in C, written against Xen's public headers only (/usr/include/xen,
//! Debian's libxen-dev, installed by `cargo xtask setup`), built here with the
//! system C compiler and booted by `xevtchn run --kernel`.
//!
//! - `pvh-test` enters long mode with page tables of its own, checks what
//!   xevtchn promises a Xen guest (see `pvh_test.c`), prints one
//!   `ok - ...`/`FAIL - ...` line per check on the Xen console and powers off
//!   (crashes if a check failed, or at once with `shutdown=crash` on its
//!   command line).
//! - `pvh32` stays in 32-bit protected mode and asks for the hypercall page
//!   from there, which xevtchn must refuse.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

/// Each kernel's sources in `tests/guests/pvh/`, entry code first.
const KERNELS: &[(&str, &[&str])] = &[
    ("pvh-test", &["entry.S", "traps.S", "hypercall.c", "console.c", "lib.c", "traps.c", "smp.c", "pvh_test.c"]),
    ("pvh32", &["pvh32.S"]),
];

/// Freestanding x86-64 code without libc, PIE or a red zone (exceptions
/// push onto the interrupted stack), using general registers only (nothing
/// sets up SSE state), linked at 1 MiB by `link.ld`.
const CFLAGS: &[&str] = &[
    "-std=gnu11",
    "-ffreestanding",
    "-fno-pic",
    "-fno-pie",
    "-no-pie",
    "-nostdlib",
    "-static",
    "-mno-red-zone",
    "-mgeneral-regs-only",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-fno-stack-protector",
    "-fcf-protection=none",
    "-fno-asynchronous-unwind-tables",
    // The Xen interface these guests are written for (Xen 4.13's headers on).
    "-D__XEN_INTERFACE_VERSION__=0x00040d00",
    "-Wl,-T,link.ld",
    "-Wl,--build-id=none",
    "-Wl,-z,max-page-size=4096",
];

/// The PVH test kernel `name` ("pvh-test" or "pvh32"), built from
/// `tests/guests/pvh/` into `target/pvh-kernels/NAME` on the first call of
/// this process (a second or so), its path on every call.
/// Panics with the compiler's messages if the build fails.
pub fn kernel(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    // Held while building: tests of one binary run in parallel threads.
    let mut built = BUILT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, path)) = built.iter().find(|(built_name, _)| built_name == name) {
        return path.clone();
    }
    let path = build(name);
    built.push((name.to_string(), path.clone()));
    path
}

fn build(name: &str) -> PathBuf {
    let sources = KERNELS
        .iter()
        .find(|(kernel, _)| *kernel == name)
        .map(|(_, sources)| *sources)
        .unwrap_or_else(|| panic!("no PVH test kernel {name:?}: pvh-test or pvh32"));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source_dir = manifest.join("guests/pvh");
    let out_dir = manifest.join("../target/pvh-kernels");
    fs::create_dir_all(&out_dir).unwrap_or_else(|e| panic!("{}: {e}", out_dir.display()));
    let out = out_dir.join(name);
    // Built under a name of this process's, then renamed: another process
    // building the same kernel, or reading it, never sees half a file.
    let partial = out_dir.join(format!(".{name}.{}.partial", std::process::id()));

    let built = Command::new("cc")
        .current_dir(&source_dir)
        .args(CFLAGS)
        .arg("-o")
        .arg(&partial)
        .args(sources)
        .output()
        .unwrap_or_else(|e| panic!("running cc to build the PVH test kernel {name}: {e} (a C compiler is needed)"));
    if !built.status.success() {
        let _ = fs::remove_file(&partial);
        let hint = if Path::new("/usr/include/xen/xen.h").is_file() {
            ""
        } else {
            "\n(Xen's public headers are missing: `cargo xtask setup` installs libxen-dev)"
        };
        panic!(
            "building the PVH test kernel {name} in {} failed ({}):\n{}{hint}",
            source_dir.display(),
            built.status,
            String::from_utf8_lossy(&built.stderr)
        );
    }
    fs::rename(&partial, &out).unwrap_or_else(|e| panic!("{} -> {}: {e}", partial.display(), out.display()));
    out
}
