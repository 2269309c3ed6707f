/*
 * Exception stubs of pvh-test: one per vector 0-31. Each pushes a dummy
 * error code where the CPU pushes none, then the vector, and calls
 * fault(frame) (traps.c), which reports and crashes the domain: nothing here
 * returns, so there is no iretq path.
 */
        .code64
        .text

/* Vectors whose exceptions push an error code (Intel SDM vol. 3, 6.3.1). */
#define HAS_ERROR_CODE(v) \
        ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21 || (v) == 29 || (v) == 30)

        .macro stub vector
        .balign 16
stub_\vector:
        .if !HAS_ERROR_CODE(\vector)
        pushq $0
        .endif
        pushq $\vector
        jmp fault_common
        .endm

        .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        stub \v
        .endr

fault_common:
        movq %rsp, %rdi         /* struct fault_frame * (traps.c) */
        andq $-16, %rsp         /* the ABI's stack alignment for the call */
        call fault
1:      cli
        hlt
        jmp 1b

        .section .rodata
        .balign 8
        .globl fault_stubs
fault_stubs:
        .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .quad stub_\v
        .endr

        .section .note.GNU-stack, "", @progbits
