/* Messages without malloc: a fixed buffer, a few formatters, one write
 * through the OS layer (both builds: a region keeps it for the panic hook). */
#ifndef RSB_ERROR_H
#define RSB_ERROR_H

#include "util.h"

typedef struct rsb_buf {
    size_t len;
    char data[512];
} rsb_buf;

void rsb_buf_str(rsb_buf *b, const char *s);
void rsb_buf_hex(rsb_buf *b, uintptr_t v);
void rsb_buf_dec(rsb_buf *b, uint64_t v);
void rsb_buf_dec_w(rsb_buf *b, uint64_t v, unsigned w);
void rsb_buf_flush(rsb_buf *b, int fd);

void rsb_fatal_pointer(const char *what, const void *p) __attribute__((noreturn, cold));
void rsb_fatal(const char *what) __attribute__((noreturn, cold));

#endif
