//! Mirror of Xen's public ABI for 64-bit x86 HVM guests.
//!
//! Source of truth: Xen's public headers (xen/include/public/, installed by
//! Debian's `libxen-dev` under /usr/include/xen). Constants keep their C
//! names so that they can be grepped for in Xen, Linux and QEMU. Each
//! `#[repr(C)]` struct names its header, spells every padding byte out as a
//! `_pad*` field (so that it is plain bytes, see [`XenAbi`]) and is followed
//! by compile-time `size_of`/`offset_of!` assertions. `tests/xen_headers.rs`
//! compiles a C program against the real headers and compares every size,
//! offset and constant mirrored here.
//!
//! Only the 64-bit ABI is mirrored. 32-bit (compat) guests have a different
//! `shared_info` layout (32-bit `xen_ulong_t`, 1024 ports) and are not
//! supported by xevtchn.

pub mod abi;
pub mod cpuid;
pub mod errno;
pub mod evtchn;
pub mod hvm;
pub mod hypercall;
pub mod memory;
pub mod sched;
pub mod shared_info;
pub mod vcpu;
pub mod version;
pub mod virq;

pub use abi::XenAbi;
