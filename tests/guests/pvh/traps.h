/* CPU exceptions: reported on the console, then the domain crashes (traps.c). */
#ifndef PVH_TRAPS_H
#define PVH_TRAPS_H

#include <stdint.h>

void traps_init(void);
/* Loads the IDT traps_init built on this vCPU (another vCPU's start). */
void traps_load(void);

/* Vector `vector` runs `handler` (the event-channel upcall), then iretq. */
void traps_set_upcall(uint8_t vector, void (*handler)(void));

#endif
