//! Rebuild the BPF object whenever bpf-linker changes (a new LLVM, say),
//! since cargo cannot see the linker as an input.
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
