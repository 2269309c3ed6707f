/*
 * A minimal IDT: vectors 0-31 go to traps.S's stubs, which call fault().
 * A fault is a failed test: say where it happened and crash the domain.
 * The event-channel upcall's vector goes to traps_set_upcall()'s handler;
 * interrupts are enabled only while a test waits for one.
 */
#include <stdint.h>

#include "console.h"
#include "hypercall.h"
#include "traps.h"

#define CODE64_SEL 0x08    /* entry.S's GDT */
#define GATE_INTR 0x8e     /* present, DPL 0, 64-bit interrupt gate */

/* What traps.S pushed, then what the CPU pushed (64-bit mode always pushes SS:RSP). */
struct fault_frame {
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};

struct idt_gate {
    uint16_t offset_low, selector;
    uint8_t ist, type;
    uint16_t offset_mid;
    uint32_t offset_high, reserved;
} __attribute__((packed));

struct idt_ptr {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

extern const uint64_t fault_stubs[32];
extern const char upcall_stub[];
static struct idt_gate idt[256] __attribute__((aligned(16)));
static void (*upcall_handler)(void);

static struct idt_gate gate(uint64_t stub)
{
    return (struct idt_gate){
        .offset_low = (uint16_t)stub,
        .selector = CODE64_SEL,
        .type = GATE_INTR,
        .offset_mid = (uint16_t)(stub >> 16),
        .offset_high = (uint32_t)(stub >> 32),
    };
}

void traps_init(void)
{
    for (int v = 0; v < 32; v++)
        idt[v] = gate(fault_stubs[v]);
    traps_load();
}

void traps_load(void)
{
    struct idt_ptr ptr = { .limit = sizeof(idt) - 1, .base = (uintptr_t)idt };
    asm volatile("lidt %0" : : "m"(ptr));
}

void traps_set_upcall(uint8_t vector, void (*handler)(void))
{
    upcall_handler = handler;
    idt[vector] = gate((uintptr_t)upcall_stub);
    /* The LAPIC's spurious vector (0xff): the handler finds nothing to do. */
    idt[0xff] = gate((uintptr_t)upcall_stub);
}

void upcall(void);

/* Called by traps.S's upcall stub, with interrupts off. */
void upcall(void)
{
    if (upcall_handler)
        upcall_handler();
}

static __attribute__((noreturn)) void halt_forever(void)
{
    for (;;)
        asm volatile("cli; hlt");
}

void fault(const struct fault_frame *f);

void fault(const struct fault_frame *f)
{
    static int depth;
    uint64_t cr2;

    /* No console before the hypercall page, and none if reporting faulted. */
    if (depth++ || !hypercall_ready())
        halt_forever();
    asm volatile("mov %%cr2, %0" : "=r"(cr2));
    printk("FAIL - CPU exception %lu (error code %#lx) at rip %#lx, rsp %#lx, cr2 %#lx\n", f->vector,
           f->error_code, f->rip, f->rsp, cr2);
    xen_shutdown(SHUTDOWN_crash);
    halt_forever();
}
