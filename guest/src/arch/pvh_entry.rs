//! Xen's PVH entry, the one boot path the VMM has (controller's
//! vmm::pvh): vCPU 0 arrives in 32-bit flat protected mode with paging
//! off (ebx: the hvm_start_info, which this guest does not need), builds
//! its own identity map of the first 4 GiB (2 MiB pages, usable from
//! CPL3, where the hot loops run), enters long mode with a boot GDT whose
//! selectors are the ones `descriptors` installs later, and calls `_start`
//! with vCPU index 0 on vCPU 0's stack.
//!
//! The other vCPUs come up as on hardware (`smp`): a SIPI starts each in
//! real mode at the copy of `ap_trampoline` at `AP_TRAMPOLINE`, which
//! loads the boot GDT and enters protected mode at `ap_start32`; from
//! there they take vCPU 0's way to long mode on its page tables and call
//! `_start` with their APIC ID as index, on their own stack.

use core::arch::global_asm;

use xevtchn_common::layout::{STACK_SIZE, STACKS_TOP};

global_asm!(
    // XEN_ELFNOTE_PHYS32_ENTRY (xen/include/public/elfnote.h): name "Xen",
    // type 18, the 32-bit physical entry point.
    ".pushsection .note.Xen, \"a\", @note",
    ".balign 4",
    ".long 4, 4, 18",
    ".asciz \"Xen\"",
    ".balign 4",
    ".long pvh_start",
    ".popsection",
    ".pushsection .bss.pvh_tables, \"aw\", @nobits",
    ".balign 4096",
    "pvh_pml4: .skip 4096",
    "pvh_pdpt: .skip 4096",
    "pvh_pds: .skip 4 * 4096",
    ".popsection",
    ".pushsection .rodata.pvh_gdt, \"a\"",
    ".balign 8",
    "pvh_gdt:",
    ".quad 0",
    ".quad 0x00af9b000000ffff", // 0x08: 64-bit kernel code
    ".quad 0x00cf93000000ffff", // 0x10: kernel data
    ".quad 0x00cf9b000000ffff", // 0x18: 32-bit kernel code (the other vCPUs' way up)
    "pvh_gdt_ptr:",
    ".word pvh_gdt_ptr - pvh_gdt - 1",
    ".long pvh_gdt",
    ".popsection",
    // 32-bit protected mode to 64-bit on vCPU 0's page tables, then
    // `target` with every data segment flat.
    ".macro pvh_long_mode target",
    // CR4: PAE, OSFXSR, OSXMMEXCPT. EFER: SCE, LME. CR0: PE, MP, NE, WP, PG.
    "movl %cr4, %eax",
    "orl $0x620, %eax",
    "movl %eax, %cr4",
    "movl $pvh_pml4, %eax",
    "movl %eax, %cr3",
    "movl $0xc0000080, %ecx",
    "rdmsr",
    "orl $0x101, %eax",
    "wrmsr",
    "movl %cr0, %eax",
    "orl $0x80010023, %eax",
    "movl %eax, %cr0",
    "ljmp $0x08, $\\target",
    ".endm",
    ".macro pvh_flat_data",
    "movw $0x10, %ax",
    "movw %ax, %ds",
    "movw %ax, %es",
    "movw %ax, %ss",
    "movw %ax, %fs",
    "movw %ax, %gs",
    ".endm",
    ".pushsection .text.pvh, \"ax\"",
    ".code32",
    ".global pvh_start",
    "pvh_start:",
    "cli",
    // PML4[0] -> PDPT; PDPT[i] -> PD i (i < 4); PD entries map 2 MiB each.
    // Flags 7 / 0x87: present, writable, user (and page size).
    "movl $pvh_pdpt + 7, pvh_pml4",
    "xorl %ecx, %ecx",
    "1:",
    "movl %ecx, %eax",
    "shll $12, %eax",
    "addl $pvh_pds + 7, %eax",
    "movl %eax, pvh_pdpt(,%ecx,8)",
    "incl %ecx",
    "cmpl $4, %ecx",
    "jb 1b",
    "xorl %ecx, %ecx",
    "2:",
    "movl %ecx, %eax",
    "shll $21, %eax",
    "orl $0x87, %eax",
    "movl %ecx, %edx",
    "shrl $11, %edx",
    "movl %eax, pvh_pds(,%ecx,8)",
    "movl %edx, pvh_pds + 4(,%ecx,8)",
    "incl %ecx",
    "cmpl $2048, %ecx",
    "jb 2b",
    "lgdt pvh_gdt_ptr",
    "pvh_long_mode 3f",
    ".code64",
    "3:",
    "pvh_flat_data",
    // As after a call: rsp + 8 is 16-byte aligned.
    "movabsq ${stack} - 8, %rsp",
    "xorl %edi, %edi",
    "jmp _start",
    // The other vCPUs, from ap_trampoline: the boot GDT is loaded.
    ".code32",
    "ap_start32:",
    "pvh_flat_data",
    "pvh_long_mode 4f",
    ".code64",
    "4:",
    "pvh_flat_data",
    // Index: the initial APIC ID (CPUID.1:EBX[31:24]), which KVM makes
    // the vCPU's index. Stack: vCPU 0's, `index` stacks down.
    "movl $1, %eax",
    "cpuid",
    "shrl $24, %ebx",
    "movl %ebx, %edi",
    "movq %rdi, %rax",
    "imulq ${stack_size}, %rax",
    "movabsq ${stack} - 8, %rsp",
    "subq %rax, %rsp",
    "jmp _start",
    ".popsection",
    // Copied below 1 MiB before use (smp), so data, and position
    // independent: CS is the copy's page >> 4.
    ".pushsection .data.ap_trampoline, \"aw\"",
    ".code16",
    ".balign 16",
    ".global ap_trampoline, ap_trampoline_end",
    "ap_trampoline:",
    "cli",
    "cld",
    "movw %cs, %ax",
    "movw %ax, %ds",
    "lgdtl ap_gdt_ptr - ap_trampoline",
    // PE and ET only: INIT leaves CD and NW set, caching off.
    "movl $0x11, %eax",
    "movl %eax, %cr0",
    "ljmpl $0x18, $ap_start32",
    ".balign 8",
    "ap_gdt_ptr:",
    ".word pvh_gdt_ptr - pvh_gdt - 1",
    ".long pvh_gdt",
    "ap_trampoline_end:",
    ".code64",
    ".popsection",
    stack = const STACKS_TOP,
    stack_size = const STACK_SIZE,
    options(att_syntax)
);
