/* CPU exceptions: reported on the console, then the domain crashes (traps.c). */
#ifndef PVH_TRAPS_H
#define PVH_TRAPS_H

void traps_init(void);

#endif
