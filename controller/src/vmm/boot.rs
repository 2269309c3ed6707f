//! Starting a vCPU directly in 64-bit long mode: identity page tables, a GDT
//! with kernel and user segments, and the registers of the entry point.
//! Only the built-in guest's other vCPUs start this way (it has no AP
//! bring-up of its own); every guest's vCPU 0 boots through Xen's PVH
//! entry (vmm::pvh).

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};
use vm_memory::{Bytes, GuestAddress};
use xevtchn_common::layout::{DESCRIPTOR_PAGE, IDENTITY_MAPPED, PAGE_TABLES};

use super::{VmmError, memory::GuestRam};

const PTE_PRESENT: u64 = 1 << 0;
const PTE_WRITABLE: u64 = 1 << 1;
/// CPL3 code may use the mapping (the guest's hot loops run in ring 3).
const PTE_USER: u64 = 1 << 2;
const PTE_HUGE: u64 = 1 << 7;

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const CR4_OSFXSR: u64 = 1 << 9;
const CR4_OSXMMEXCPT: u64 = 1 << 10;
const EFER_SCE: u64 = 1 << 0;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

/// Boot GDT selectors (the guest installs its own GDT with the same
/// kernel selectors, plus user segments and a TSS).
pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_DS: u16 = 0x10;

/// Writes the identity page tables (2 MiB pages over `IDENTITY_MAPPED`) and
/// the GDT into guest RAM. Done once per VM.
pub fn write_tables(ram: &GuestRam) -> Result<(), VmmError> {
    let pml4 = PAGE_TABLES;
    let pdpt = PAGE_TABLES + 0x1000;
    let pds = PAGE_TABLES + 0x2000;
    let flags = PTE_PRESENT | PTE_WRITABLE | PTE_USER;
    store(ram, pml4, pdpt | flags)?;
    let gib = IDENTITY_MAPPED >> 30;
    for i in 0..gib {
        store(ram, pdpt + i * 8, (pds + i * 0x1000) | flags)?;
    }
    for i in 0..(IDENTITY_MAPPED >> 21) {
        store(ram, pds + i * 8, (i << 21) | flags | PTE_HUGE)?;
    }
    for (i, descriptor) in gdt().iter().enumerate() {
        store(ram, DESCRIPTOR_PAGE + i as u64 * 8, *descriptor)?;
    }
    Ok(())
}

fn store(ram: &GuestRam, gpa: u64, value: u64) -> Result<(), VmmError> {
    ram.write_obj(value, GuestAddress(gpa)).map_err(|_| VmmError::GuestAccess(gpa))
}

/// Null, kernel code, kernel data (flat, 64-bit).
fn gdt() -> [u64; 3] {
    [
        0,
        0x00af_9b00_0000_ffff, // kernel code: L, P, DPL0, exec/read
        0x00cf_9300_0000_ffff, // kernel data: P, DPL0, read/write
    ]
}

fn segment(selector: u16, code: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl: (selector & 3) as u8,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Special registers for long mode at CPL0 with the tables of `write_tables`.
pub fn long_mode_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.cr3 = PAGE_TABLES;
    sregs.efer = EFER_SCE | EFER_LME | EFER_LMA;
    sregs.cs = segment(KERNEL_CS, true);
    let data = segment(KERNEL_DS, false);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.gdt.base = DESCRIPTOR_PAGE;
    sregs.gdt.limit = (gdt().len() * 8 - 1) as u16;
    sregs
}

/// General registers at the entry point: `rdi`, `rsi`, `rdx` carry arguments.
pub fn entry_regs(entry: u64, stack_top: u64, args: [u64; 3]) -> kvm_regs {
    kvm_regs {
        rip: entry,
        // As after a call: the ABI expects rsp + 8 to be 16-byte aligned.
        rsp: stack_top - 8,
        rdi: args[0],
        rsi: args[1],
        rdx: args[2],
        rflags: 0x2,
        ..Default::default()
    }
}
