/*
 * Xen hypercalls from a 64-bit PVH kernel, written against Xen's public
 * headers only (/usr/include/xen). hypercall.c finds the hypervisor by its
 * CPUID signature and has it fill our hypercall page; the typed wrappers
 * below are those of Linux's and FreeBSD's hypercall.h.
 */
#ifndef PVH_HYPERCALL_H
#define PVH_HYPERCALL_H

#include <stdbool.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/errno.h>
#include <xen/event_channel.h>
#include <xen/features.h>
#include <xen/memory.h>
#include <xen/sched.h>
#include <xen/version.h>
#include <xen/vcpu.h>
#include <xen/io/console.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/params.h>
#include <xen/arch-x86/hvm/start_info.h>

/* The base of Xen's CPUID leaves (0x40000000 + n * 0x100), 0 if not found. */
extern uint32_t xen_cpuid_base;

/*
 * Finds Xen's CPUID leaves and writes the address of hypercall_page to the
 * MSR that leaf base+2 names. False if no Xen signature was found (then no
 * hypercall, not even a console write, is possible).
 */
bool hypercall_init(void);
bool hypercall_ready(void);

/*
 * Hypercall `nr` through the hypercall page: a call to hypercall_page +
 * nr * 32, arguments in rdi, rsi, rdx, r10, r8; the result in rax (negative:
 * -XEN_E*, from xen/errno.h).
 */
long hypercall(unsigned int nr, unsigned long a1, unsigned long a2, unsigned long a3, unsigned long a4,
               unsigned long a5);

static inline long HYPERVISOR_console_io(int cmd, int count, const char *buf)
{
    return hypercall(__HYPERVISOR_console_io, cmd, count, (unsigned long)buf, 0, 0);
}

static inline long HYPERVISOR_sched_op(int cmd, void *arg)
{
    return hypercall(__HYPERVISOR_sched_op, cmd, (unsigned long)arg, 0, 0, 0);
}

static inline long HYPERVISOR_event_channel_op(int cmd, void *arg)
{
    return hypercall(__HYPERVISOR_event_channel_op, cmd, (unsigned long)arg, 0, 0, 0);
}

static inline long HYPERVISOR_memory_op(unsigned int cmd, void *arg)
{
    return hypercall(__HYPERVISOR_memory_op, cmd, (unsigned long)arg, 0, 0, 0);
}

static inline long HYPERVISOR_xen_version(int cmd, void *arg)
{
    return hypercall(__HYPERVISOR_xen_version, cmd, (unsigned long)arg, 0, 0, 0);
}

static inline long HYPERVISOR_vcpu_op(int cmd, unsigned int vcpuid, void *arg)
{
    return hypercall(__HYPERVISOR_vcpu_op, cmd, vcpuid, (unsigned long)arg, 0, 0);
}

static inline long HYPERVISOR_set_timer_op(uint64_t timeout)
{
    return hypercall(__HYPERVISOR_set_timer_op, timeout, 0, 0, 0, 0);
}

static inline long HYPERVISOR_hvm_op(int op, void *arg)
{
    return hypercall(__HYPERVISOR_hvm_op, op, (unsigned long)arg, 0, 0, 0);
}

/* "-EINVAL" for -XEN_EINVAL and so on; NULL if rc is no -XEN_E* value. */
const char *xen_errno_name(long rc);

/* SCHEDOP_shutdown with `reason` (SHUTDOWN_*, xen/sched.h). */
long xen_shutdown(unsigned int reason);

#endif
