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
/* The first `needle` in `haystack`, or NULL. */
const char *str_find(const char *haystack, const char *needle);
bool str_contains(const char *haystack, const char *needle);
/* The decimal number `s` starts with (0 if none). */
unsigned long str_number(const char *s);

#endif
