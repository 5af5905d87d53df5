/*
 * firstfit (see firstfit.h).  Chunk layout, as in dlmalloc:
 *
 *   | prev_size | size|flags | payload (16-byte aligned) ... |
 *
 * size is the whole chunk (header included), a multiple of 16; FF_INUSE
 * marks an allocated chunk.  prev_size is always the size of the chunk
 * before (kept up to date, no overlap trick).  Free chunks hold next/prev
 * links of the single free list (LIFO) in their payload.  A zero-size,
 * in-use sentinel ends the heap; the first chunk has prev_size 0 and is
 * never merged backwards.
 */
#include "firstfit.h"

#include <stdint.h>
#if __STDC_HOSTED__
#include <string.h>
#else
void *memcpy(void *d, const void *s, size_t n); /* the bare-metal image brings its own */
#endif

#define FF_HDR 16u
#define FF_MIN 32u
#define FF_INUSE 1u

typedef struct chunk {
    size_t prev_size;
    size_t size; /* | FF_INUSE */
    struct chunk *next, *prev; /* free chunks only */
} chunk;

struct ff_heap {
    chunk *free;
    chunk *first;
    char *end;
};

static inline size_t csize(const chunk *c) { return c->size & ~(size_t)15; }
static inline int inuse(const chunk *c) { return (int)(c->size & FF_INUSE); }
static inline chunk *after(chunk *c) { return (chunk *)((char *)c + csize(c)); }
static inline void *payload(chunk *c) { return (char *)c + FF_HDR; }
static inline chunk *of(const void *p) { return (chunk *)((char *)p - FF_HDR); }

static void list_push(ff_heap *h, chunk *c) {
    c->prev = NULL;
    c->next = h->free;
    if (c->next) c->next->prev = c;
    h->free = c;
}

static void list_remove(ff_heap *h, chunk *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        h->free = c->next;
    if (c->next) c->next->prev = c->prev;
}

static void set_size(chunk *c, size_t size, size_t flags) {
    c->size = size | flags;
    after(c)->prev_size = size;
}

ff_heap *ff_init(void *mem, size_t len) {
    uintptr_t lo = ((uintptr_t)mem + 15) & ~(uintptr_t)15, hi = ((uintptr_t)mem + len) & ~(uintptr_t)15;
    if (hi < lo + sizeof(ff_heap) + 16 + FF_MIN + FF_HDR) return NULL;
    ff_heap *h = (ff_heap *)lo;
    chunk *c = (chunk *)((lo + sizeof(ff_heap) + 15) & ~(uintptr_t)15);
    chunk *sentinel = (chunk *)(hi - FF_HDR);
    sentinel->size = FF_INUSE;
    c->prev_size = 0;
    set_size(c, (size_t)((char *)sentinel - (char *)c), 0);
    h->free = NULL;
    h->first = c;
    h->end = (char *)sentinel;
    list_push(h, c);
    return h;
}

static size_t need_of(size_t size) {
    if (size > ((size_t)-1 >> 1)) return 0;
    size_t n = (size + FF_HDR + 15) & ~(size_t)15;
    return n < FF_MIN ? FF_MIN : n;
}

/* Take n bytes at the start of free chunk c (already off the list); the
 * rest, if big enough, goes back on the list. */
static void *take(ff_heap *h, chunk *c, size_t n) {
    size_t have = csize(c);
    if (have - n >= FF_MIN) {
        chunk *rest = (chunk *)((char *)c + n);
        set_size(c, n, FF_INUSE);
        set_size(rest, have - n, 0);
        list_push(h, rest);
    } else {
        c->size |= FF_INUSE;
    }
    return payload(c);
}

void *ff_alloc(ff_heap *h, size_t size) {
    size_t n = need_of(size);
    if (!n) return NULL;
    for (chunk *c = h->free; c; c = c->next)
        if (csize(c) >= n) {
            list_remove(h, c);
            return take(h, c, n);
        }
    return NULL;
}

void *ff_alloc_aligned(ff_heap *h, size_t align, size_t size) {
    if (align <= 16) return ff_alloc(h, size);
    size_t n = need_of(size);
    if (!n || (align & (align - 1))) return NULL;
    for (chunk *c = h->free; c; c = c->next) {
        uintptr_t p = (uintptr_t)payload(c);
        uintptr_t q = (p + align - 1) & ~(uintptr_t)(align - 1);
        while (q != p && q - p < FF_MIN) q += align;
        if (q - p + n > csize(c)) continue;
        list_remove(h, c);
        if (q != p) { /* split off the front as a free chunk of its own */
            size_t front = (size_t)(q - p), have = csize(c);
            chunk *d = (chunk *)((char *)c + front);
            set_size(c, front, 0);
            set_size(d, have - front, 0);
            list_push(h, c);
            c = d;
        }
        return take(h, c, n);
    }
    return NULL;
}

void ff_free(ff_heap *h, void *p) {
    if (!p) return;
    chunk *c = of(p);
    size_t size = csize(c);
    chunk *n = after(c);
    if ((char *)n != h->end && !inuse(n)) {
        list_remove(h, n);
        size += csize(n);
    }
    if (c != h->first) {
        chunk *b = (chunk *)((char *)c - c->prev_size);
        if (!inuse(b)) {
            list_remove(h, b);
            size += csize(b);
            c = b;
        }
    }
    set_size(c, size, 0);
    list_push(h, c);
}

void *ff_realloc(ff_heap *h, void *p, size_t size) {
    if (!p) return ff_alloc(h, size);
    size_t n = need_of(size);
    if (!n) return NULL;
    chunk *c = of(p);
    size_t have = csize(c);
    if (n <= have) return p;
    chunk *nx = after(c);
    if ((char *)nx != h->end && !inuse(nx) && have + csize(nx) >= n) {
        list_remove(h, nx);
        set_size(c, have + csize(nx), 0);
        return take(h, c, n);
    }
    void *q = ff_alloc(h, size);
    if (!q) return NULL;
    memcpy(q, p, have - FF_HDR);
    ff_free(h, p);
    return q;
}

size_t ff_usable_size(const void *p) { return csize(of(p)) - FF_HDR; }

size_t ff_largest_free(ff_heap *h) {
    size_t m = 0;
    for (chunk *c = h->free; c; c = c->next)
        if (csize(c) > m) m = csize(c);
    return m ? m - FF_HDR : 0;
}
