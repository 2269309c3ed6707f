/* CPU exceptions: reported on the console, then the domain crashes (traps.c). */
#ifndef PVH_TRAPS_H
#define PVH_TRAPS_H

#include <stdint.h>

void traps_init(void);

/* Vector `vector` runs `handler` (the event-channel upcall), then iretq. */
void traps_set_upcall(uint8_t vector, void (*handler)(void));

#endif
