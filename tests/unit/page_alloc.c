#define _GNU_SOURCE
/* Page allocator on a private arena: spans are page aligned and disjoint,
 * free spans merge, freed pages are reused first, and purged memory really
 * leaves RSS (mincore). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os.h"
#include "page_alloc.h"
#include "rsbmalloc.h"

static rsb_arena *new_arena(int32_t delay) {
    rsb_free(rsb_malloc(1)); /* global init: OS page size, registry */
    rsb_arena *a = calloc(1, sizeof *a);
    rsb_pages_init(a);
    a->purge_delay_ms = delay;
    return a;
}

static bool resident(void *p, size_t len) {
    size_t n = (len + rsb_os_page - 1) / rsb_os_page;
    unsigned char *v = malloc(n);
    cr_assert_eq(mincore(p, len, v), 0);
    bool any = false;
    for (size_t i = 0; i < n; i++) any |= v[i] & 1;
    free(v);
    return any;
}

Test(page_alloc, spans_are_aligned_disjoint_and_checked) {
    rsb_arena *a = new_arena(-1);
    enum { N = 300 };
    rsb_span *s[N];
    unsigned seed = 1;
    for (int i = 0; i < N; i++) {
        bool zero;
        uint32_t n = 1 + (uint32_t)(rand_r(&seed) % 20);
        s[i] = rsb_pages_alloc(a, n, (i & 1) ? RSB_SPAN_SLAB : RSB_SPAN_LARGE, &zero);
        cr_assert_not_null(s[i]);
        cr_assert_eq((uintptr_t)s[i]->start % RSB_PAGE_SIZE, 0);
        cr_assert_eq(s[i]->npages, n);
        memset(s[i]->start, i & 0xff, (size_t)n << RSB_PAGE_SHIFT);
        rsb_pages_check(a);
    }
    for (int i = 0; i < N; i++) /* disjoint: every span still holds its pattern */
        for (size_t j = 0; j < ((size_t)s[i]->npages << RSB_PAGE_SHIFT); j += 4096)
            cr_assert_eq((unsigned char)s[i]->start[j], i & 0xff);
    for (int i = N - 1; i > 0; i--) { /* free in random order */
        int j = rand_r(&seed) % (i + 1);
        rsb_span *t = s[i];
        s[i] = s[j];
        s[j] = t;
    }
    for (int i = 0; i < N; i++) {
        rsb_pages_free(a, s[i]);
        rsb_pages_check(a);
    }
    /* Everything merged back: each chunk is one free span. */
    for (rsb_chunk *c = a->chunks; c; c = c->next) {
        cr_assert_eq(c->used_pages, 0);
        cr_assert_eq(c->pages[c->first_page].npages, c->npages - c->first_page);
    }
}

Test(page_alloc, freed_pages_are_reused_first) {
    rsb_arena *a = new_arena(-1);
    bool zero;
    rsb_span *x = rsb_pages_alloc(a, 3, RSB_SPAN_LARGE, &zero);
    cr_assert(zero, "fresh pages are zero");
    rsb_span *y = rsb_pages_alloc(a, 3, RSB_SPAN_LARGE, &zero);
    char *xs = x->start;
    rsb_pages_free(a, x);
    rsb_span *z = rsb_pages_alloc(a, 3, RSB_SPAN_LARGE, &zero);
    cr_assert_eq(z->start, xs);
    cr_assert_not(zero, "reused dirty pages are not reported zero");
    rsb_pages_free(a, y);
    rsb_pages_free(a, z);
    rsb_pages_check(a);
}

Test(page_alloc, purge_returns_memory_to_the_os) {
    rsb_arena *a = new_arena(-1);
    bool zero;
    rsb_span *x = rsb_pages_alloc(a, 8, RSB_SPAN_LARGE, &zero);
    rsb_span *keep = rsb_pages_alloc(a, 1, RSB_SPAN_LARGE, &zero);
    size_t len = (size_t)8 << RSB_PAGE_SHIFT;
    char *p = x->start;
    memset(p, 1, len);
    cr_assert(resident(p, len));
    rsb_pages_free(a, x);
    cr_assert_eq(a->dirty_bytes, len);
    cr_assert(resident(p, len), "not purged before the delay");
    cr_assert(rsb_pages_purge(a, true));
    cr_assert_eq(a->dirty_bytes, 0);
    cr_assert_not(resident(p, len), "purged pages left RSS");
    rsb_span *y = rsb_pages_alloc(a, 8, RSB_SPAN_LARGE, &zero);
    cr_assert(zero, "purged pages come back zeroed");
    rsb_pages_free(a, y);
    rsb_pages_free(a, keep);
    rsb_pages_check(a);
}

Test(page_alloc, delayed_purge_happens_after_the_delay) {
    rsb_arena *a = new_arena(20);
    bool zero;
    rsb_span *keep = rsb_pages_alloc(a, 1, RSB_SPAN_LARGE, &zero);
    rsb_span *x = rsb_pages_alloc(a, 4, RSB_SPAN_LARGE, &zero);
    char *p = x->start;
    memset(p, 1, (size_t)4 << RSB_PAGE_SHIFT);
    rsb_pages_free(a, x);
    cr_assert_gt(a->dirty_bytes, 0);
    usleep(60 * 1000);
    /* Any page-allocator activity after the delay purges. */
    rsb_span *y = rsb_pages_alloc(a, 1, RSB_SPAN_LARGE, &zero);
    cr_assert_eq(a->dirty_bytes, 0);
    rsb_pages_free(a, y);
    rsb_pages_free(a, keep);
}

Test(page_alloc, empty_chunks_are_unmapped) {
    rsb_arena *a = new_arena(-1);
    enum { N = 5 };
    rsb_span *s[N];
    bool zero;
    for (int i = 0; i < N; i++) s[i] = rsb_pages_alloc(a, 40, RSB_SPAN_LARGE, &zero); /* one chunk each */
    cr_assert_geq(a->nchunks, N);
    size_t mapped = a->mapped;
    for (int i = 0; i < N; i++) rsb_pages_free(a, s[i]);
    rsb_pages_purge(a, true);
    cr_assert_eq(a->nchunks, 1, "one chunk is kept, the rest unmapped");
    cr_assert_lt(a->mapped, mapped);
}

Test(page_alloc, large_span_grows_in_place) {
    rsb_arena *a = new_arena(-1);
    bool zero;
    rsb_span *x = rsb_pages_alloc(a, 2, RSB_SPAN_LARGE, &zero);
    cr_assert(rsb_pages_grow(a, x, 5));
    cr_assert_eq(x->npages, 5);
    rsb_pages_check(a);
    rsb_span *y = rsb_pages_alloc(a, 1, RSB_SPAN_LARGE, &zero);
    cr_assert_eq(y->start, x->start + ((size_t)5 << RSB_PAGE_SHIFT));
    cr_assert_not(rsb_pages_grow(a, x, 6), "neighbour in use");
    rsb_pages_free(a, x);
    rsb_pages_free(a, y);
    rsb_pages_check(a);
}

Test(page_alloc, span_lookup_rejects_non_blocks) {
    rsb_arena *a = new_arena(-1);
    bool zero;
    rsb_span *x = rsb_pages_alloc(a, 3, RSB_SPAN_LARGE, &zero);
    rsb_chunk *c = rsb_header_of(a, x->start);
    cr_assert_not_null(c);
    cr_assert_eq(rsb_span_of(c, x->start), x);
    cr_assert_eq(rsb_span_of(c, c->base + 8), NULL, "metadata page");
    rsb_pages_free(a, x);
    rsb_span *f = rsb_span_of(c, x->start);
    cr_assert(f == NULL || f->kind == RSB_SPAN_FREE);
    int local;
    cr_assert_null(rsb_header_of(a, &local), "stack address is not ours");
}

/* The large cache keeps the last RSB_LARGE_CACHE freed page runs whole,
 * hands one back only for the same page count, and empties at a purge. */
Test(page_alloc, large_cache_reuses_same_size_and_empties_at_purge) {
    rsb_arena *a = new_arena(1000);
    enum { N = RSB_LARGE_CACHE + 2 };
    rsb_span *s[N];
    bool zero;
    for (int i = 0; i < N; i++) {
        s[i] = rsb_pages_alloc(a, 4 + (uint32_t)i, RSB_SPAN_LARGE, &zero);
        cr_assert_not_null(s[i]);
    }
    size_t large = a->large_bytes;
    for (int i = 0; i < N; i++) rsb_large_cache_put(a, s[i]);
    rsb_pages_check(a);
    cr_assert_eq(a->large_cached, RSB_LARGE_CACHE, "the oldest entries were evicted");
    cr_assert(!(s[0]->flags & RSB_SF_CACHED) && s[0]->kind != RSB_SPAN_LARGE, "evicted: back to the pages");
    cr_assert(s[N - 1]->flags & RSB_SF_CACHED);
    size_t cached = 0;
    for (int i = 2; i < N; i++) cached += (size_t)(4 + i) << RSB_PAGE_SHIFT;
    cr_assert_eq(a->large_cached_bytes, cached);
    cr_assert_eq(a->large_bytes, 0, "cached spans are not in use (was %zu)", large);
    cr_assert_null(rsb_large_cache_take(a, 4), "4 pages went back to the page allocator");
    rsb_span *t = rsb_large_cache_take(a, 6);
    cr_assert_eq(t, s[2], "same page count: the cached span comes back");
    cr_assert(t->kind == RSB_SPAN_LARGE && !(t->flags & RSB_SF_CACHED));
    cr_assert_eq(a->large_bytes, (size_t)6 << RSB_PAGE_SHIFT);
    rsb_pages_purge(a, true);
    cr_assert_eq(a->large_cached, 0);
    cr_assert_eq(a->large_cached_bytes, 0);
    rsb_pages_check(a);
    rsb_pages_free(a, t);
    rsb_pages_check(a);
}
