/*
 * A PVH kernel's entry (docs/misc/pvh.pandoc): Xen's note naming the
 * 32-bit entry point (xen/include/public/elfnote.h), then that entry point,
 * with interrupts off and the string direction cleared. Shared by entry.S
 * and pvh32.S: `pvh_entry pvh_start32`, followed by the entry's code.
 */
#include <xen/elfnote.h>

        .macro pvh_entry entry
        .pushsection .note.Xen, "a", @note
        .balign 4
        .long 2f - 1f                   /* namesz */
        .long 4f - 3f                   /* descsz */
        .long XEN_ELFNOTE_PHYS32_ENTRY  /* type 18 */
1:      .asciz "Xen"
2:      .balign 4
3:      .long \entry                    /* 32-bit physical entry address */
4:      .balign 4
        .popsection

        .section .text.entry, "ax", @progbits
        .code32
        .globl \entry
\entry:
        cli
        cld
        .endm
