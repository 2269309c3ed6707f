/* Output through the Xen console (CONSOLEIO_write, console.c). */
#ifndef PVH_CONSOLE_H
#define PVH_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

void console_write(const char *buf, size_t len);

/*
 * printf for one line at most 255 bytes long (longer output is cut).
 * Conversions: %s %c %d %u %x %p, 'l' for long, '#' for 0x, '0' and a
 * width for padding.
 */
void printk(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* printk's formatting into buf (size >= 1): NUL-terminated, returns the length. */
size_t vformat(char *buf, size_t size, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
size_t snformat(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
