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
#define CR0_PG      (1 << 31)
#define CR4_PAE     (1 << 5)
#define MSR_EFER    0xc0000080
#define EFER_LME    (1 << 8)
#define PTE_P       (1 << 0)
#define PTE_RW      (1 << 1)
#define PTE_PS      (1 << 7)      /* 2 MiB page in a page directory entry */

#define CODE64_SEL  0x08
#define DATA_SEL    0x10

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
        ljmp $CODE64_SEL, $start64

        .code64
start64:
        movl $DATA_SEL, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        movl %eax, %fs
        movl %eax, %gs
        movq $stack_top, %rsp
        /* The upper halves of registers are undefined after the switch. */
        movl %esi, %edi
        call kmain
        /* kmain shuts the domain down and does not return; if it does, stop. */
2:      cli
        hlt
        jmp 2b

        .section .rodata
        .balign 16
gdt:
        .quad 0                         /* null */
        .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 (L=1, D=0) */
        .quad 0x00cf92000000ffff        /* 0x10: flat data, DPL 0 */
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
