/*
 * The few C library functions of pvh-test. memset, memcpy and memmove use
 * the string instructions: written as plain loops, GCC would recognize them
 * and turn them into calls to themselves.
 */
#include "lib.h"

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;
    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;
    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    if (n == 0 || d <= s || d >= s + n)
        return memcpy(dst, src, n);
    /* Overlapping with dst above src: copy backwards, from the last byte. */
    d += n - 1;
    s += n - 1;
    asm volatile("std; rep movsb; cld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] - y[i];
    return 0;
}

size_t strnlen(const char *s, size_t max)
{
    size_t n = 0;

    while (n < max && s[n])
        n++;
    return n;
}

const char *str_find(const char *haystack, const char *needle)
{
    size_t n = strnlen(needle, SIZE_MAX);

    for (; *haystack; haystack++)
        if (memcmp(haystack, needle, n) == 0)
            return haystack;
    return n == 0 ? haystack : NULL;
}

bool str_contains(const char *haystack, const char *needle)
{
    return str_find(haystack, needle) != NULL;
}

unsigned long str_number(const char *s)
{
    unsigned long n = 0;

    for (; *s >= '0' && *s <= '9'; s++)
        n = n * 10 + (unsigned long)(*s - '0');
    return n;
}
