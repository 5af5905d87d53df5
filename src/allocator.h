/*
 * An allocator: the shared caches that threads are hashed to, the page
 * allocator behind them, and the per-process secrets.  The hosted library
 * has one, rsb_global (src/init.c); each freestanding heap has its own with
 * a single cache (src/heap.c).  This is the context every layer above the
 * page allocator is given; it owns no logic.
 */
#ifndef RSB_ALLOCATOR_H
#define RSB_ALLOCATOR_H

#include "page/pages.h"

struct rsb_cache;

typedef struct rsb_allocator {
    /* Read on every malloc/free; written once at init. */
    struct rsb_cache *caches;
    uint32_t ncaches;            /* a power of two */
    uint32_t ready;              /* 1 once init has finished */
    uint32_t fast;               /* ready, and no option needs the generic path */
    uint32_t junk;               /* RSBMALLOC_JUNK: fill new and freed blocks */
    uint64_t key;                /* random: double-free marker = key ^ address */
    uint64_t link_key;           /* random: RSB_HARDEN free-list link encoding */
    /* The page allocator, with its own lock (own cache line). */
    rsb_pages pages __attribute__((aligned(RSB_CACHELINE)));
} rsb_allocator;

#endif
