/*
 * broken.c — a deliberately wrong malloc, to show that the shapes' self-checks
 * catch a broken allocator (meson test --suite bench, shape-*-broken).
 *
 * LD_PRELOAD it under a shape: it forwards to glibc (__libc_malloc & co.),
 * but every 8th malloc returns a block that is still live (the newest of
 * the last 64 handed out, not yet freed, of the size asked for, or for a
 * request of 1 MiB or more of at least that size), and every
 * 7th realloc that grows a block copies only half of its contents.  The
 * shared block is freed to glibc only when its last holder frees it, so the
 * program does not crash on a double free: it must notice by itself that
 * its data changed.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_memalign(size_t, size_t);

#define RECENT 64

static struct {
    void *p;
    size_t size;
    int holders; /* 0: free slot */
} recent[RECENT];
static int lock;
static unsigned long mallocs, reallocs;

static void acquire(void)
{
    while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
        ;
}

static void release(void)
{
    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

static int find(void *p)
{
    for (int i = 0; i < RECENT; i++)
        if (recent[i].holders && recent[i].p == p)
            return i;
    return -1;
}

void *malloc(size_t n)
{
    acquire();
    if (++mallocs % 8 == 0) {
        /* the newest live block of the same size: another object of the
         * same kind, most likely, still in use */
        for (int k = 0; k < RECENT; k++) {
            int i = (int)((mallocs - 1 - (unsigned long)k) % RECENT);
            if (recent[i].holders && (recent[i].size == n ||
                                      (n >= (1u << 20) && recent[i].size >= n))) {
                recent[i].holders++;
                void *p = recent[i].p;
                release();
                return p;
            }
        }
    }
    release();
    void *p = __libc_malloc(n);
    if (p == NULL)
        return NULL;
    acquire();
    int slot = (int)(mallocs % RECENT);
    if (recent[slot].holders == 0) {
        recent[slot].p = p;
        recent[slot].size = n;
        recent[slot].holders = 1;
    }
    release();
    return p;
}

void free(void *p)
{
    if (p == NULL)
        return;
    acquire();
    int i = find(p);
    if (i >= 0 && --recent[i].holders > 0) {
        release();
        return;
    }
    release();
    __libc_free(p);
}

void *realloc(void *p, size_t n)
{
    if (p == NULL)
        return malloc(n);
    size_t old = malloc_usable_size(p);
    acquire();
    int i = find(p);
    int shared = i >= 0 && recent[i].holders > 1;
    if (i >= 0)
        recent[i].holders--;
    int lossy = ++reallocs % 7 == 0 && n > old;
    release();
    if (shared || lossy) {
        /* A new block; a shared one stays with its other holder.  A lossy
         * move keeps only the first half of the contents. */
        void *q = __libc_malloc(n);
        if (q == NULL)
            return NULL;
        size_t keep = lossy ? old / 2 : old < n ? old : n;
        memcpy(q, p, keep);
        if (!shared)
            __libc_free(p);
        return q;
    }
    return __libc_realloc(p, n);
}

void *calloc(size_t a, size_t b)
{
    return __libc_calloc(a, b);
}
