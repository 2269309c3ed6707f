//! Virtual IRQ numbers: xen/include/public/xen.h (`enum virq`), and which
//! of them are per-vCPU, following Xen's get_virq_type()
//! (xen/common/event_channel.c; arch_get_virq_type() in
//! xen/arch/x86/include/asm/event.h makes every x86 arch VIRQ global).

pub const VIRQ_TIMER: u32 = 0;
pub const VIRQ_DEBUG: u32 = 1;
pub const VIRQ_CONSOLE: u32 = 2;
pub const VIRQ_DOM_EXC: u32 = 3;
pub const VIRQ_TBUF: u32 = 4;
pub const VIRQ_DEBUGGER: u32 = 6;
pub const VIRQ_XENOPROF: u32 = 7;
pub const VIRQ_CON_RING: u32 = 8;
pub const VIRQ_PCPU_STATE: u32 = 9;
pub const VIRQ_MEM_EVENT: u32 = 10;
pub const VIRQ_ARGO: u32 = 11;
pub const VIRQ_ENOMEM: u32 = 12;
pub const VIRQ_XENPMU: u32 = 13;
pub const VIRQ_ARCH_0: u32 = 16;
pub const VIRQ_ARCH_1: u32 = 17;
pub const VIRQ_ARCH_2: u32 = 18;
pub const VIRQ_ARCH_3: u32 = 19;
pub const VIRQ_ARCH_4: u32 = 20;
pub const VIRQ_ARCH_5: u32 = 21;
pub const VIRQ_ARCH_6: u32 = 22;
pub const VIRQ_ARCH_7: u32 = 23;
pub const NR_VIRQS: u32 = 24;

/// Where a VIRQ may be bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirqType {
    /// Once per vCPU, on that vCPU; cannot be moved with bind_vcpu
    /// (TIMER, DEBUG, XENOPROF, XENPMU).
    Vcpu,
    /// Once per domain, initially on vCPU 0; may be moved (ARGO).
    Domain,
    /// Once, initially on vCPU 0; may be moved (everything else).
    Global,
}

/// Xen's get_virq_type() for x86. `virq` must be below [`NR_VIRQS`]
/// (callers reject larger values with -EINVAL first, as Xen does).
pub const fn virq_type(virq: u32) -> VirqType {
    match virq {
        VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU => VirqType::Vcpu,
        VIRQ_ARGO => VirqType::Domain,
        _ => VirqType::Global,
    }
}
