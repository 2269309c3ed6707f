/*
 * Application-processor start-up: the INIT-SIPI sequence of the Intel SDM
 * (vol. 3, 8.4.4), sent through the x2APIC's ICR. A SIPI starts the target
 * in real mode at vector * 4096; entry.S's trampoline, copied there, takes
 * it to long mode and calls `ap_entry` on `ap_stack_top`.
 */
#include "lib.h"
#include "smp.h"

#define AP_TRAMPOLINE 0x8000u    /* below 1 MiB, page aligned, RAM the kernel does not use */
#define MSR_X2APIC_ICR 0x830
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_ASSERT (1u << 14)

extern const char ap_trampoline[], ap_trampoline_end[];
/* Read by entry.S's ap_start64. */
extern uint64_t ap_stack_top;
extern void (*ap_entry)(void);

static void wrmsr(uint32_t msr, uint64_t value)
{
    asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)) : "memory");
}

void smp_start(uint32_t apic_id, void *stack_top, void (*fn)(void))
{
    memcpy((void *)(uintptr_t)AP_TRAMPOLINE, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
    ap_stack_top = (uintptr_t)stack_top;
    ap_entry = fn;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    wrmsr(MSR_X2APIC_ICR, (uint64_t)apic_id << 32 | ICR_INIT | ICR_ASSERT);
    wrmsr(MSR_X2APIC_ICR, (uint64_t)apic_id << 32 | ICR_STARTUP | ICR_ASSERT | (AP_TRAMPOLINE >> 12));
}
