/*
 * The console: printk formats into a line buffer and writes it with one
 * console_io hypercall (CONSOLEIO_write, xen/xen.h).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "console.h"
#include "hypercall.h"
#include "lib.h"

void console_write(const char *buf, size_t len)
{
    HYPERVISOR_console_io(CONSOLEIO_write, (int)len, buf);
}

/* Output being formatted: what does not fit in `size` bytes is dropped. */
struct line {
    char *buf;
    size_t size, len;
};

static void put(struct line *l, char c)
{
    if (l->len < l->size)
        l->buf[l->len++] = c;
}

static void put_str(struct line *l, const char *s)
{
    while (*s)
        put(l, *s++);
}

static void put_number(struct line *l, unsigned long v, unsigned int base, bool negative, int width, char pad)
{
    char digits[24];
    int n = 0;

    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (negative)
        digits[n++] = '-';
    while (width-- > n)
        put(l, pad);
    while (n)
        put(l, digits[--n]);
}

static void format(struct line *l, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        bool is_long = false, alt = false;
        char pad = ' ';
        int width = 0;

        if (*fmt != '%') {
            put(l, *fmt);
            continue;
        }
        fmt++;
        if (*fmt == '#')
            alt = true, fmt++;
        if (*fmt == '0')
            pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        if (*fmt == 'l')
            is_long = true, fmt++;
        switch (*fmt) {
        case 'd': {
            long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
            put_number(l, v < 0 ? -(unsigned long)v : (unsigned long)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
            put_number(l, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 10, false, width, pad);
            break;
        case 'x':
            if (alt)
                put_str(l, "0x");
            put_number(l, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int), 16, false, width, pad);
            break;
        case 'p':
            put_str(l, "0x");
            put_number(l, (uintptr_t)va_arg(ap, void *), 16, false, width, pad);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            put_str(l, s ? s : "(null)");
            break;
        }
        case 'c':
            put(l, (char)va_arg(ap, int));
            break;
        case '%':
            put(l, '%');
            break;
        default: /* unknown conversion: show it as written */
            put(l, '%');
            if (*fmt)
                put(l, *fmt);
            else
                fmt--;
            break;
        }
    }
}

size_t vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct line l = { .buf = buf, .size = size - 1, .len = 0 };

    format(&l, fmt, ap);
    buf[l.len] = 0;
    return l.len;
}

size_t snformat(char *buf, size_t size, const char *fmt, ...)
{
    size_t len;
    va_list ap;

    va_start(ap, fmt);
    len = vformat(buf, size, fmt, ap);
    va_end(ap);
    return len;
}

void printk(const char *fmt, ...)
{
    char buf[256];
    size_t len;
    va_list ap;

    va_start(ap, fmt);
    len = vformat(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    console_write(buf, len);
}
