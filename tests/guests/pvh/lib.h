/* The few C library functions a freestanding kernel needs (lib.c). */
#ifndef PVH_LIB_H
#define PVH_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* GCC may emit calls to these four even in freestanding code. */
void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

size_t strnlen(const char *s, size_t max);
bool str_contains(const char *haystack, const char *needle);

#endif
