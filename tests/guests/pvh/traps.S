/*
 * Exception stubs of pvh-test: one per vector 0-31. Each pushes a dummy
 * error code where the CPU pushes none, then the vector, and calls
 * fault(frame) (traps.c), which reports and crashes the domain: nothing
 * there returns. The upcall's stub, at the end, is the one that does.
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

/*
 * The event-channel upcall (the per-vCPU vector of
 * HVMOP_set_evtchn_upcall_vector): saves the registers the C ABI lets
 * upcall() clobber, calls it, and returns from the interrupt.
 */
        .balign 16
        .globl upcall_stub
upcall_stub:
        pushq %rax
        pushq %rcx
        pushq %rdx
        pushq %rsi
        pushq %rdi
        pushq %r8
        pushq %r9
        pushq %r10
        pushq %r11
        pushq %rbp
        movq %rsp, %rbp
        andq $-16, %rsp
        call upcall
        movq %rbp, %rsp
        popq %rbp
        popq %r11
        popq %r10
        popq %r9
        popq %r8
        popq %rdi
        popq %rsi
        popq %rdx
        popq %rcx
        popq %rax
        iretq

        .section .rodata
        .balign 8
        .globl fault_stubs
fault_stubs:
        .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .quad stub_\v
        .endr

        .section .note.GNU-stack, "", @progbits
