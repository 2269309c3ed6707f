/*
 * PVH entry of pvh-test: Xen's PVH boot protocol (xen docs/misc/pvh.pandoc)
 * starts us in 32-bit flat protected mode, paging off, interrupts off,
 * %ebx = physical address of struct hvm_start_info, no stack. We build our
 * own identity-mapped page tables (first 1 GiB, 2 MiB pages), our own GDT,
 * enter long mode and call kmain(start_info).
 *
 * The kernel is linked at its physical address (link.ld) and the mapping is
 * the identity, so every symbol below is both its physical and virtual
 * address.
 */
#include "pvh_entry.h"

#define CR0_PE      (1 << 0)
#define CR0_ET      (1 << 4)
#define CR0_PG      (1 << 31)
#define CR4_PAE     (1 << 5)
#define MSR_EFER    0xc0000080
#define EFER_LME    (1 << 8)
#define PTE_P       (1 << 0)
#define PTE_RW      (1 << 1)
#define PTE_PS      (1 << 7)      /* 2 MiB page in a page directory entry */

#define CODE64_SEL  0x08
#define DATA_SEL    0x10
#define CODE32_SEL  0x18

/* Every data segment register to the flat data descriptor. */
        .macro flat_data_segments
        movl $DATA_SEL, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl %eax, %fs
        movl %eax, %gs
        .endm

/* 32-bit protected mode to 64-bit, on this kernel's page tables and GDT. */
        .macro long_mode target
        movl %cr4, %eax
        orl $CR4_PAE, %eax
        movl %eax, %cr4

        movl $pml4, %eax
        movl %eax, %cr3

        movl $MSR_EFER, %ecx
        rdmsr
        orl $EFER_LME, %eax
        wrmsr

        /* Paging on with EFER.LME set: long mode (compatibility) is active. */
        movl %cr0, %eax
        orl $(CR0_PE | CR0_PG), %eax
        movl %eax, %cr0

        /* A far jump through the 64-bit code descriptor enters 64-bit mode. */
        ljmp $CODE64_SEL, $\target
        .endm

        pvh_entry pvh_start32
        /* %ebx is the only thing the loader hands over: keep it in %esi. */
        movl %ebx, %esi
        movl $stack_top, %esp

        /* .bss is ours to zero: the protocol promises nothing about it. */
        movl $__bss_start, %edi
        movl $__bss_end, %ecx
        subl %edi, %ecx
        xorl %eax, %eax
        rep stosb

        /* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB: 1 GiB identity. */
        movl $pdpt + (PTE_P | PTE_RW), pml4
        movl $pd + (PTE_P | PTE_RW), pdpt
        xorl %ecx, %ecx
1:      movl %ecx, %eax
        shll $21, %eax
        orl $(PTE_P | PTE_RW | PTE_PS), %eax
        movl %eax, pd(, %ecx, 8)        /* high half stays 0 (zeroed .bss) */
        incl %ecx
        cmpl $512, %ecx
        jb 1b

        lgdt gdt_ptr
        long_mode start64

        .code64
start64:
        flat_data_segments
        movq $stack_top, %rsp
        /* The upper halves of registers are undefined after the switch. */
        movl %esi, %edi
        call kmain
        /* kmain shuts the domain down and does not return; if it does, stop. */
2:      cli
        hlt
        jmp 2b

/*
 * Other vCPUs (smp.c): a SIPI starts one in real mode at the page smp.c
 * copied ap_trampoline to (CS = page >> 4, IP = 0). It loads this GDT and
 * enters protected mode at ap_start32, which goes to long mode as the boot
 * vCPU did, on the same page tables; ap_start64 calls ap_entry on
 * ap_stack_top.
 */
        .code32
ap_start32:
        flat_data_segments
        long_mode ap_start64

        .code64
ap_start64:
        flat_data_segments
        movq ap_stack_top, %rsp
        call *ap_entry
3:      cli
        hlt
        jmp 3b

        /* Copied below 1 MiB before use, so in .data; position independent. */
        .section .data
        .code16
        .balign 16
        .globl ap_trampoline, ap_trampoline_end
ap_trampoline:
        cli
        cld
        movw %cs, %ax
        movw %ax, %ds
        lgdtl ap_gdt_ptr - ap_trampoline
        /* PE and ET only: INIT leaves CD and NW set, caching off. */
        movl $(CR0_PE | CR0_ET), %eax
        movl %eax, %cr0
        ljmpl $CODE32_SEL, $ap_start32
        .balign 8
ap_gdt_ptr:
        .word gdt_end - gdt - 1
        .long gdt
ap_trampoline_end:
        .code64

        .balign 8
        .globl ap_stack_top, ap_entry
ap_stack_top:
        .quad 0
ap_entry:
        .quad 0

        .section .rodata
        .balign 16
gdt:
        .quad 0                         /* null */
        .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 (L=1, D=0) */
        .quad 0x00cf92000000ffff        /* 0x10: flat data, DPL 0 */
        .quad 0x00cf9a000000ffff        /* 0x18: 32-bit code, DPL 0 (other vCPUs' way up) */
gdt_end:
        .balign 8
        .globl gdt_ptr
gdt_ptr:
        .word gdt_end - gdt - 1
        .quad gdt                       /* lgdt reads 4 bytes of it in 32-bit mode */

/*
 * The hypercall page: the hypervisor writes its call stubs here when we
 * write its address to the MSR that CPUID leaf base+2 names. Until then it
 * holds int3, so a call through an unfilled page traps. link.ld places it,
 * page aligned, in the executable segment.
 */
        .section .hypercall_page, "ax", @progbits
        .balign 4096
        .globl hypercall_page
hypercall_page:
        .fill 4096, 1, 0xcc

        .section .bss
        .balign 4096
pml4:   .skip 4096
pdpt:   .skip 4096
pd:     .skip 4096
        .balign 16
stack:  .skip 16384
stack_top:

        .section .note.GNU-stack, "", @progbits
