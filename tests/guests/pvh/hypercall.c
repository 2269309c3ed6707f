/*
 * Hypercall plumbing: CPUID discovery of Xen, the hypercall page, the call.
 */
#include <stddef.h>

#include "hypercall.h"

#include <xen/arch-x86/cpuid.h>

/* entry.S: one page, page aligned, in the executable segment. */
extern char hypercall_page[4096];

uint32_t xen_cpuid_base;
static bool page_ready;

static void cpuid(uint32_t leaf, uint32_t *eax, uint32_t *ebx, uint32_t *ecx, uint32_t *edx)
{
    asm volatile("cpuid" : "=a"(*eax), "=b"(*ebx), "=c"(*ecx), "=d"(*edx) : "a"(leaf), "c"(0));
}

static void wrmsr(uint32_t msr, uint64_t value)
{
    asm volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)) : "memory");
}

/*
 * Xen's leaves may sit above another hypervisor's (e.g. Viridian at
 * 0x40000000): scan every 0x100 leaves, as Linux's xen_cpuid_base() does.
 */
static uint32_t find_xen_leaves(void)
{
    for (uint32_t base = XEN_CPUID_FIRST_LEAF; base < XEN_CPUID_FIRST_LEAF + 0x10000; base += 0x100) {
        uint32_t eax, ebx, ecx, edx;

        cpuid(base, &eax, &ebx, &ecx, &edx);
        if (ebx == XEN_CPUID_SIGNATURE_EBX && ecx == XEN_CPUID_SIGNATURE_ECX &&
            edx == XEN_CPUID_SIGNATURE_EDX && eax >= base + 2)
            return base;
    }
    return 0;
}

bool hypercall_init(void)
{
    uint32_t pages, msr, ecx, edx;

    xen_cpuid_base = find_xen_leaves();
    if (!xen_cpuid_base)
        return false;
    /* Leaf 2: EAX = number of hypercall pages, EBX = the MSR to write. */
    cpuid(xen_cpuid_base + 2, &pages, &msr, &ecx, &edx);
    if (pages < 1)
        return false;
    /* Physical address of page 0 (our mapping is the identity). */
    wrmsr(msr, (uint64_t)(uintptr_t)hypercall_page);
    page_ready = true;
    return true;
}

bool hypercall_ready(void)
{
    return page_ready;
}

long hypercall(unsigned int nr, unsigned long a1, unsigned long a2, unsigned long a3, unsigned long a4,
               unsigned long a5)
{
    register unsigned long r10 asm("r10") = a4;
    register unsigned long r8 asm("r8") = a5;
    long ret;

    /* One page holds 128 stubs of 32 bytes. */
    if (nr >= sizeof(hypercall_page) / 32)
        return -XEN_ENOSYS;
    asm volatile("call *%[stub]"
                 : "=a"(ret), "+D"(a1), "+S"(a2), "+d"(a3), "+r"(r10), "+r"(r8)
                 : [stub] "r"(hypercall_page + nr * 32)
                 : "rcx", "r11", "memory");
    return ret;
}

long xen_shutdown(unsigned int reason)
{
    struct sched_shutdown shutdown = { .reason = reason };

    return HYPERVISOR_sched_op(SCHEDOP_shutdown, &shutdown);
}

/* xen/errno.h lists its values through XEN_ERRNO(): aliases come last. */
static const struct {
    long value;
    const char *name;
} xen_errnos[] = {
#define XEN_ERRNO(name, value) { value, "-" #name },
#include <xen/errno.h>
};

const char *xen_errno_name(long rc)
{
    for (size_t i = 0; i < sizeof(xen_errnos) / sizeof(xen_errnos[0]); i++)
        if (rc == -xen_errnos[i].value)
            return xen_errnos[i].name;
    return NULL;
}
