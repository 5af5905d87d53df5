/*
 * Helpers of the unit tests: private allocators built from the layers, and
 * the whole-structure checks run after every operation (the tests are also
 * built with RSB_DEBUG=2, so the core runs the same checks after each of its
 * own state changes).
 */
#ifndef RSB_UNIT_H
#define RSB_UNIT_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "rsbmalloc.h"

/* The global allocator initialised (OS page size, clock): private ones use
 * the same OS layer and registry. */
static inline void unit_global_init(void) { rsb_free(rsb_malloc(1)); }

static inline rsb_pages *unit_pages(int32_t purge_delay_ms) {
    unit_global_init();
    rsb_pages *pg = calloc(1, sizeof *pg);
    rsb_pages_init(pg, purge_delay_ms);
    rsb_huge_init(pg);
    return pg;
}

static inline rsb_allocator *unit_allocator(uint32_t ncaches, int32_t purge_delay_ms) {
    unit_global_init();
    rsb_allocator *a = aligned_alloc(RSB_CACHELINE, sizeof *a);
    memset(a, 0, sizeof *a);
    rsb_pages_init(&a->pages, purge_delay_ms);
    rsb_huge_init(&a->pages);
    a->key = 0x1234567887654321ull;
    a->link_key = 0x0f1e2d3c4b5a6978ull;
    size_t bytes = ncaches * sizeof(rsb_cache);
    rsb_cache *c = aligned_alloc(RSB_CACHELINE, (bytes + RSB_CACHELINE - 1) & ~(size_t)(RSB_CACHELINE - 1));
    memset(c, 0, bytes);
    rsb_caches_init(a, c, ncaches);
    a->ready = a->fast = 1;
    return a;
}

static inline void unit_check(rsb_allocator *a) {
    for (uint32_t i = 0; i < a->ncaches; i++) {
        rsb_lock_acquire(&a->caches[i].lock);
        rsb_cache_check(a, &a->caches[i]);
        rsb_lock_release(&a->caches[i].lock);
    }
    rsb_lock_acquire(&a->pages.lock);
    rsb_pages_check(&a->pages);
    rsb_lock_release(&a->pages.lock);
}

/* Slabs of class cls owned by any cache (walks the chunks). */
static inline unsigned unit_slabs(const rsb_pages *pg, unsigned cls) {
    unsigned n = 0;
    for (const rsb_chunk *c = pg->chunks; c; c = c->next) {
        const rsb_span *pages = rsb_chunk_pages(c);
        for (uint32_t i = c->first_page; i < c->npages; i += pages[i].npages)
            n += pages[i].kind == RSB_SPAN_SLAB && pages[i].cls == cls;
    }
    return n;
}

#endif
