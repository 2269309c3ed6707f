//! Interrupt entry stubs (assembly) and the vectors the guest uses.
//!
//! Handlers run at CPL0, which this host kind emulates instruction by
//! instruction: the stubs and handlers are kept short.

use core::arch::global_asm;

/// The per-vCPU upcall vector (HVMOP_set_evtchn_upcall_vector), Linux's
/// HYPERVISOR_CALLBACK_VECTOR.
pub const UPCALL_VECTOR: u8 = 0xf3;
/// The vector the IOAPIC delivers the GSI / PCI INTx callback on.
pub const CALLBACK_GSI_VECTOR: u8 = 0xe0;
/// The local APIC timer: a periodic tick that bounds every wait.
pub const TIMER_VECTOR: u8 = 0xec;
/// APIC spurious vector (see apic::SVR_ENABLE): ignored.
pub const SPURIOUS_VECTOR: u8 = 0xff;

global_asm!(
    r#"
    .macro EXC_NOERR n
    xg_exc_\n:
        push 0
        push \n
        jmp xg_exc_common
    .endm
    .macro EXC_ERR n
    xg_exc_\n:
        push \n
        jmp xg_exc_common
    .endm
    .irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    EXC_NOERR \n
    .endr
    .irp n, 8,10,11,12,13,14,17,21,29,30
    EXC_ERR \n
    .endr

    // A #GP on a guarded MSR access (below) resumes at xg_msr_refused
    // instead of ending the VM. Frame: vector, error code, rip, ...
    xg_exc_common:
        cmp qword ptr [rsp], 13
        jne xg_exc_fatal
        push rax
        lea rax, [rip + xg_wrmsr_insn]
        cmp [rsp + 24], rax
        je xg_exc_msr
        lea rax, [rip + xg_rdmsr_insn]
        cmp [rsp + 24], rax
        je xg_exc_msr
        pop rax
        jmp xg_exc_fatal
    xg_exc_msr:
        lea rax, [rip + xg_msr_refused]
        mov [rsp + 24], rax
        pop rax
        add rsp, 16
        iretq
    xg_exc_fatal:
        mov rdi, [rsp]
        mov rsi, [rsp + 8]
        mov rdx, [rsp + 16]
        and rsp, -16
        call {exception}
        ud2

    // Saves the caller-saved registers and calls handler(arg, tsc), with
    // the TSC read as early as possible: latency is measured to the
    // handler's first instructions.
    .macro SAVE_AND_CALL handler, arg
        push rax
        push rdx
        rdtsc
        push rcx
        push rsi
        push rdi
        push r8
        push r9
        push r10
        push r11
        cld
        shl rdx, 32
        or rax, rdx
        mov rsi, rax
        mov edi, \arg
        call \handler
        pop r11
        pop r10
        pop r9
        pop r8
        pop rdi
        pop rsi
        pop rcx
        pop rdx
        pop rax
        iretq
    .endm

    xg_upcall_vector:
        SAVE_AND_CALL {upcall}, 0
    xg_upcall_gsi:
        SAVE_AND_CALL {upcall}, 1
    xg_timer:
        SAVE_AND_CALL {tick}, 0

    xg_spurious:
        iretq

    // MSR accesses that may be refused (the fuzz workload's): C ABI,
    // return 0, or 1 when the MSR access raised #GP.
    // xg_wrmsr_guarded(msr: u32, value: u64); xg_rdmsr_guarded(msr: u32, out: *mut u64).
    .globl xg_wrmsr_guarded, xg_rdmsr_guarded
    xg_wrmsr_guarded:
        mov ecx, edi
        mov eax, esi
        mov rdx, rsi
        shr rdx, 32
    xg_wrmsr_insn:
        wrmsr
        xor eax, eax
        ret
    xg_rdmsr_guarded:
        mov ecx, edi
    xg_rdmsr_insn:
        rdmsr
        mov [rsi], eax
        mov [rsi + 4], edx
        xor eax, eax
        ret
    xg_msr_refused:
        mov eax, 1
        ret

    .pushsection .rodata
    .balign 8
    // Global: Rust code in another codegen unit refers to the tables.
    .globl xg_exception_table, xg_other_table
    xg_exception_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .quad xg_exc_\n
    .endr
    xg_other_table:
        .quad xg_upcall_vector, xg_upcall_gsi, xg_spurious, xg_timer
    .popsection
    "#,
    exception = sym crate::faults::exception,
    upcall = sym crate::events::upcall,
    tick = sym crate::sync::tick,
);

unsafe extern "C" {
    static xg_exception_table: [usize; 32];
    static xg_other_table: [usize; 4];
    fn xg_wrmsr_guarded(msr: u32, value: u64) -> u64;
    fn xg_rdmsr_guarded(msr: u32, out: *mut u64) -> u64;
}

/// Writes an MSR that may not exist: false when the write raised #GP
/// (which the exception entry turns into this return). CPL0 only.
pub fn wrmsr_guarded(msr: u32, value: u64) -> bool {
    // SAFETY: the routine writes the MSR and nothing else in memory; its
    // #GP resumes at a label that returns 1.
    unsafe { xg_wrmsr_guarded(msr, value) == 0 }
}

/// Reads an MSR that may not exist (None when the read raised #GP).
pub fn rdmsr_guarded(msr: u32) -> Option<u64> {
    let mut value = 0u64;
    // SAFETY: as above; `out` points at our local.
    (unsafe { xg_rdmsr_guarded(msr, &mut value) } == 0).then_some(value)
}

/// Entry points of exceptions 0..32.
pub fn exception_entries() -> [usize; 32] {
    // SAFETY: the table is immutable data emitted by global_asm! above.
    unsafe { xg_exception_table }
}

/// (vector, entry point) of the non-exception vectors.
pub fn other_entries() -> [(u8, usize); 4] {
    // SAFETY: as above.
    let t = unsafe { xg_other_table };
    [(UPCALL_VECTOR, t[0]), (CALLBACK_GSI_VECTOR, t[1]), (SPURIOUS_VECTOR, t[2]), (TIMER_VECTOR, t[3])]
}

/// Waits for an interrupt, unless `*word` no longer equals `seen`.
///
/// At CPL0 it halts (`sti; hlt` with the check done with interrupts off,
/// so no wake-up is missed). At CPL3 it can only spin: hlt is privileged,
/// and this host kind (PVM) offers no way from CPL3 into a CPL0 gate for a
/// non-PVM guest (`int n` raises #UD, `syscall` stays at CPL3), so a CPL3
/// waiter pauses and lets its caller re-check. Leaves interrupts enabled.
#[inline(always)]
pub fn wait_while_equal(word: &core::sync::atomic::AtomicU64, seen: u64) {
    if super::cpu::cpl() == 3 {
        super::cpu::pause();
        return;
    }
    // SAFETY: check-then-sleep with interrupts off in between; the
    // handlers are installed before anything waits.
    unsafe {
        core::arch::asm!(
            "cli",
            "cmp [{word}], {seen}",
            "jne 2f",
            "sti",
            "hlt",
            "2:",
            "sti",
            word = in(reg) word.as_ptr(),
            seen = in(reg) seen,
            options(nostack),
        );
    }
}
