/*
 * Fatal diagnostics.  Nothing here allocates: messages are assembled in a
 * stack buffer by a tiny formatter and written with one write(2).
 */
#include "error.h"

#include "os/os.h"

void rsb_buf_str(rsb_buf *b, const char *s) {
    while (*s && b->len < sizeof b->data) b->data[b->len++] = *s++;
}

void rsb_buf_hex(rsb_buf *b, uintptr_t v) {
    char tmp[2 + 2 * sizeof v];
    unsigned n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    rsb_buf_str(b, "0x");
    while (n && b->len < sizeof b->data) b->data[b->len++] = tmp[--n];
}

/* Right-aligned decimal in a field of width w. */
void rsb_buf_dec_w(rsb_buf *b, uint64_t v, unsigned w) {
    char tmp[24];
    unsigned n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (w > n && b->len < sizeof b->data) {
        b->data[b->len++] = ' ';
        w--;
    }
    while (n && b->len < sizeof b->data) b->data[b->len++] = tmp[--n];
}

void rsb_buf_dec(rsb_buf *b, uint64_t v) { rsb_buf_dec_w(b, v, 0); }

void rsb_buf_flush(rsb_buf *b, int fd) {
    rsb_os_write_fd(fd, b->data, b->len);
    b->len = 0;
}

void rsb_fatal_pointer(const char *what, const void *p) {
    rsb_buf b;
    b.len = 0; /* not "= {0}": that is a memset call, which a region build lacks */
    rsb_buf_str(&b, "rsbmalloc: ");
    rsb_buf_str(&b, what);
    rsb_buf_str(&b, " (pointer ");
    rsb_buf_hex(&b, (uintptr_t)p);
    rsb_buf_str(&b, "); aborting\n");
    rsb_buf_flush(&b, 2);
    rsb_os_abort();
}

void rsb_fatal(const char *what) {
    rsb_buf b;
    b.len = 0; /* not "= {0}": that is a memset call, which a region build lacks */
    rsb_buf_str(&b, "rsbmalloc: ");
    rsb_buf_str(&b, what);
    rsb_buf_str(&b, "; aborting\n");
    rsb_buf_flush(&b, 2);
    rsb_os_abort();
}

void rsb_assert_fail(const char *what, const char *file, int line) {
    rsb_buf b;
    b.len = 0; /* not "= {0}": that is a memset call, which a region build lacks */
    rsb_buf_str(&b, "rsbmalloc: internal check failed: ");
    rsb_buf_str(&b, what);
    rsb_buf_str(&b, " at ");
    rsb_buf_str(&b, file);
    rsb_buf_str(&b, ":");
    rsb_buf_dec(&b, (uint64_t)line);
    rsb_buf_str(&b, "\n");
    rsb_buf_flush(&b, 2);
    rsb_os_abort();
}
