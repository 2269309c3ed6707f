//! Per-vCPU GDT, TSS and IDT. The VMM's boot GDT has no TSS, and a TSS is
//! needed to take interrupts at CPL0 while the hot loops run at CPL3.

use core::{arch::asm, mem::size_of};

use super::interrupts;

pub const MAX_VCPUS: usize = 32;
pub const KERNEL_CS: u16 = 0x08;
/// User segments where SYSCALL/SYSRET's STAR layout would put them.
pub const USER_CS: u16 = 0x28 | 3;
pub const USER_DS: u16 = 0x30 | 3;
const TSS_SELECTOR: u16 = 0x38;
const GDT_ENTRIES: usize = 9;

/// 64-bit TSS (Intel SDM vol. 3, 8.7): only rsp0 is used.
#[repr(C, packed(4))]
struct Tss {
    _reserved0: u32,
    rsp0: u64,
    _rsp1_2: [u64; 2],
    _reserved1: u64,
    _ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}
const _: () = assert!(size_of::<Tss>() == 104);

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    flags: u8,
    offset_mid: u16,
    offset_high: u32,
    _reserved: u32,
}

const GATE_ABSENT: Gate =
    Gate { offset_low: 0, selector: 0, ist: 0, flags: 0, offset_mid: 0, offset_high: 0, _reserved: 0 };
/// Present 64-bit interrupt gate (IF cleared on entry), DPL 0.
const INTERRUPT_GATE: u8 = 0x8e;

#[repr(C, align(4096))]
struct PerVcpu {
    idt: [Gate; 256],
    gdt: [u64; GDT_ENTRIES],
    tss: Tss,
}

static mut TABLES: [PerVcpu; MAX_VCPUS] = [const {
    PerVcpu {
        idt: [GATE_ABSENT; 256],
        gdt: [0; GDT_ENTRIES],
        tss: Tss {
            _reserved0: 0,
            rsp0: 0,
            _rsp1_2: [0; 2],
            _reserved1: 0,
            _ist: [0; 7],
            _reserved2: 0,
            _reserved3: 0,
            iomap_base: size_of::<Tss>() as u16,
        },
    }
}; MAX_VCPUS];

#[repr(C, packed)]
struct Pointer {
    limit: u16,
    base: u64,
}

fn gate(handler: usize) -> Gate {
    Gate {
        offset_low: handler as u16,
        selector: KERNEL_CS,
        ist: 0,
        flags: INTERRUPT_GATE,
        offset_mid: (handler >> 16) as u16,
        offset_high: (handler >> 32) as u32,
        _reserved: 0,
    }
}

/// Installs this vCPU's GDT (with a TSS whose rsp0 is `kernel_stack`) and
/// IDT. Interrupts stay disabled.
pub fn install(vcpu: usize, kernel_stack: u64) {
    let vcpu = vcpu % MAX_VCPUS;
    // SAFETY: each vCPU touches only its own slot, once, before any
    // interrupt can arrive; nothing else holds a reference to it.
    let t = unsafe { &mut *core::ptr::addr_of_mut!(TABLES[vcpu]) };
    for (vector, handler) in interrupts::exception_entries().iter().enumerate() {
        t.idt[vector] = gate(*handler);
    }
    for (vector, handler) in interrupts::other_entries() {
        t.idt[vector as usize] = gate(handler);
    }
    t.tss.rsp0 = kernel_stack;
    let tss = core::ptr::addr_of!(t.tss) as u64;
    t.gdt = [
        0,
        0x00af_9b00_0000_ffff, // 0x08 kernel code
        0x00cf_9300_0000_ffff, // 0x10 kernel data
        0,                     // 0x18 (32-bit user code for SYSRET, unused)
        0,
        0x00af_fb00_0000_ffff, // 0x28 user code
        0x00cf_f300_0000_ffff, // 0x30 user data
        // Available 64-bit TSS (type 9), present.
        (size_of::<Tss>() as u64 - 1) | ((tss & 0xff_ffff) << 16) | (0x89 << 40) | (((tss >> 24) & 0xff) << 56),
        tss >> 32,
    ];
    let gdt = Pointer { limit: (size_of::<[u64; GDT_ENTRIES]>() - 1) as u16, base: t.gdt.as_ptr() as u64 };
    let idt = Pointer { limit: (size_of::<[Gate; 256]>() - 1) as u16, base: t.idt.as_ptr() as u64 };
    // SAFETY: the tables are static, complete and keep the boot selectors'
    // meaning, so reloading GDTR/IDTR/TR changes no live segment.
    unsafe {
        asm!("lgdt [{}]", in(reg) &gdt, options(nostack));
        asm!("lidt [{}]", in(reg) &idt, options(nostack));
        asm!("ltr {0:x}", in(reg) TSS_SELECTOR, options(nostack));
    }
}
