/*
 * Other vCPUs, brought up as on hardware: INIT, then a SIPI whose vector
 * names the page of a real-mode trampoline (smp.c, entry.S).
 */
#ifndef PVH_SMP_H
#define PVH_SMP_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Starts the vCPU whose x2APIC ID is `apic_id` on `fn`, in long mode on
 * this kernel's page tables, GDT and IDT, with the stack ending at
 * `stack_top`. Needs this vCPU's x2APIC enabled. One vCPU at a time: wait
 * until it has told you it runs before starting another.
 */
void smp_start(uint32_t apic_id, void *stack_top, void (*fn)(void));

#endif
