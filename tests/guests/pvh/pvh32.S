/*
 * pvh32: a PVH kernel that stays in 32-bit protected mode (paging off) and
 * asks for the hypercall page from there. xevtchn supports 64-bit guests
 * only and must refuse it at that wrmsr, ending the run with an error; the
 * spin after it is never meant to matter (the VMM stops us).
 *
 * Same entry protocol and note as entry.S (xen docs/misc/pvh.pandoc), same
 * link.ld.
 */
#include "pvh_entry.h"
#include <xen/arch-x86/cpuid.h>

        pvh_entry pvh_start32
        movl $stack_top, %esp

        /* Xen's leaves: the signature at 0x40000000 + n * 0x100. */
        movl $XEN_CPUID_FIRST_LEAF, %esi
1:      movl %esi, %eax
        xorl %ecx, %ecx
        cpuid
        cmpl $XEN_CPUID_SIGNATURE_EBX, %ebx
        jne 2f
        cmpl $XEN_CPUID_SIGNATURE_ECX, %ecx
        jne 2f
        cmpl $XEN_CPUID_SIGNATURE_EDX, %edx
        jne 2f
        leal 2(%esi), %edx
        cmpl %edx, %eax                 /* max leaf >= base + 2 */
        jae found
2:      addl $0x100, %esi
        cmpl $XEN_CPUID_FIRST_LEAF + 0x10000, %esi
        jb 1b
        jmp spin                        /* no Xen: nothing to ask for */

found:
        /* Leaf base+2: EBX = the hypercall-page MSR. Write our page to it. */
        leal 2(%esi), %eax
        xorl %ecx, %ecx
        cpuid
        movl %ebx, %ecx
        movl $hypercall_page, %eax
        xorl %edx, %edx
        wrmsr

spin:   jmp spin

        .section .hypercall_page, "ax", @progbits
        .balign 4096
hypercall_page:
        .fill 4096, 1, 0xcc

        .section .bss
        .balign 16
        .skip 4096
stack_top:

        .section .note.GNU-stack, "", @progbits
