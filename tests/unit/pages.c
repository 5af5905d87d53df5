#define _GNU_SOURCE
/* Page allocator on a private arena: spans are page aligned and disjoint,
 * free spans merge, freed pages are reused first, and purged memory really
 * leaves RSS (mincore). */
#include <sys/mman.h>
#include <unistd.h>

#include "os/os.h"
#include "unit.h"

static rsb_pages *new_arena(int32_t delay) { return unit_pages(delay); }

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
    rsb_pages *a = new_arena(-1);
    enum { N = 300 };
    rsb_span *s[N];
    unsigned seed = 1;
    for (int i = 0; i < N; i++) {
        bool zero;
        uint32_t n = 1 + (uint32_t)(rand_r(&seed) % 20);
        s[i] = rsb_pages_alloc(a, n, (i & 1) ? RSB_SPAN_SLAB : RSB_SPAN_RUN, &zero);
        cr_assert_not_null(s[i]);
        cr_assert_eq((uintptr_t)rsb_span_start(s[i]) % RSB_PAGE_SIZE, 0);
        cr_assert_eq(s[i]->npages, n);
        memset(rsb_span_start(s[i]), i & 0xff, (size_t)n << RSB_PAGE_SHIFT);
        rsb_pages_check(a);
    }
    for (int i = 0; i < N; i++) /* disjoint: every span still holds its pattern */
        for (size_t j = 0; j < ((size_t)s[i]->npages << RSB_PAGE_SHIFT); j += 4096)
            cr_assert_eq((unsigned char)rsb_span_start(s[i])[j], i & 0xff);
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
        cr_assert_eq(rsb_chunk_pages(c)[c->first_page].npages, c->npages - c->first_page);
    }
}

Test(page_alloc, freed_pages_are_reused_first) {
    rsb_pages *a = new_arena(-1);
    bool zero;
    rsb_span *x = rsb_pages_alloc(a, 3, RSB_SPAN_RUN, &zero);
    cr_assert(zero, "fresh pages are zero");
    rsb_span *y = rsb_pages_alloc(a, 3, RSB_SPAN_RUN, &zero);
    char *xs = rsb_span_start(x);
    rsb_pages_free(a, x);
    rsb_span *z = rsb_pages_alloc(a, 3, RSB_SPAN_RUN, &zero);
    cr_assert_eq(rsb_span_start(z), xs);
    cr_assert_not(zero, "reused dirty pages are not reported zero");
    rsb_pages_free(a, y);
    rsb_pages_free(a, z);
    rsb_pages_check(a);
}

Test(page_alloc, purge_returns_memory_to_the_os) {
    rsb_pages *a = new_arena(-1);
    bool zero;
    rsb_span *x = rsb_pages_alloc(a, 8, RSB_SPAN_RUN, &zero);
    rsb_span *keep = rsb_pages_alloc(a, 1, RSB_SPAN_RUN, &zero);
    size_t len = (size_t)8 << RSB_PAGE_SHIFT;
    char *p = rsb_span_start(x);
    memset(p, 1, len);
    cr_assert(resident(p, len));
    rsb_pages_free(a, x);
    cr_assert_eq(a->dirty_bytes, len);
    cr_assert(resident(p, len), "not purged before the delay");
    cr_assert(rsb_pages_purge(a, true));
    cr_assert_eq(a->dirty_bytes, 0);
    cr_assert_not(resident(p, len), "purged pages left RSS");
    rsb_span *y = rsb_pages_alloc(a, 8, RSB_SPAN_RUN, &zero);
    cr_assert(zero, "purged pages come back zeroed");
    rsb_pages_free(a, y);
    rsb_pages_free(a, keep);
    rsb_pages_check(a);
}

Test(page_alloc, delayed_purge_happens_after_the_delay) {
    rsb_pages *a = new_arena(20);
    bool zero;
    rsb_span *keep = rsb_pages_alloc(a, 1, RSB_SPAN_RUN, &zero);
    rsb_span *x = rsb_pages_alloc(a, 4, RSB_SPAN_RUN, &zero);
    char *p = rsb_span_start(x);
    memset(p, 1, (size_t)4 << RSB_PAGE_SHIFT);
    rsb_pages_free(a, x);
    cr_assert_gt(a->dirty_bytes, 0);
    usleep(60 * 1000);
    /* Any page-allocator activity after the delay purges. */
    rsb_span *y = rsb_pages_alloc(a, 1, RSB_SPAN_RUN, &zero);
    cr_assert_eq(a->dirty_bytes, 0);
    rsb_pages_free(a, y);
    rsb_pages_free(a, keep);
}

Test(page_alloc, empty_chunks_are_unmapped) {
    rsb_pages *a = new_arena(-1);
    enum { N = 5 };
    rsb_span *s[N];
    bool zero;
    for (int i = 0; i < N; i++) s[i] = rsb_pages_alloc(a, 40, RSB_SPAN_RUN, &zero); /* one chunk each */
    cr_assert_geq(a->nchunks, N);
    size_t mapped = a->mapped;
    for (int i = 0; i < N; i++) rsb_pages_free(a, s[i]);
    rsb_pages_purge(a, true);
    cr_assert_eq(a->nchunks, 1, "one chunk is kept, the rest unmapped");
    cr_assert_lt(a->mapped, mapped);
}

Test(page_alloc, page_run_grows_in_place) {
    rsb_pages *a = new_arena(-1);
    bool zero;
    rsb_span *x = rsb_pages_alloc(a, 2, RSB_SPAN_RUN, &zero);
    cr_assert(rsb_pages_grow(a, x, 5));
    cr_assert_eq(x->npages, 5);
    rsb_pages_check(a);
    rsb_span *y = rsb_pages_alloc(a, 1, RSB_SPAN_RUN, &zero);
    cr_assert_eq(rsb_span_start(y), rsb_span_start(x) + ((size_t)5 << RSB_PAGE_SHIFT));
    cr_assert_not(rsb_pages_grow(a, x, 6), "neighbour in use");
    rsb_pages_free(a, x);
    rsb_pages_free(a, y);
    rsb_pages_check(a);
}

Test(page_alloc, span_lookup_rejects_non_blocks) {
    rsb_pages *a = new_arena(-1);
    bool zero;
    rsb_span *x = rsb_pages_alloc(a, 3, RSB_SPAN_RUN, &zero);
    rsb_chunk *c = rsb_header_of(a, rsb_span_start(x));
    cr_assert_not_null(c);
    cr_assert_eq(rsb_span_of(c, rsb_span_start(x)), x);
    cr_assert_eq(rsb_span_of(c, c->base + 8), NULL, "metadata page");
    rsb_pages_free(a, x);
    rsb_span *f = rsb_span_of(c, rsb_span_start(x));
    cr_assert(f == NULL || f->kind == RSB_SPAN_FREE);
    int local;
    cr_assert_null(rsb_header_of(a, &local), "stack address is not ours");
}

/* Spare page runs: the last RSB_SPARE_RUNS freed page runs are kept whole,
 * one comes back only for the same page count, they all go at a purge, and
 * a second free of a spare is refused. */
Test(page_alloc, spare_runs_are_reused_for_the_same_size_and_go_at_purge) {
    rsb_pages *a = new_arena(1000);
    enum { N = RSB_SPARE_RUNS + 2 };
    rsb_span *s[N];
    bool zero;
    for (int i = 0; i < N; i++) {
        s[i] = rsb_pages_alloc(a, 4 + (uint32_t)i, RSB_SPAN_RUN, &zero);
        cr_assert_not_null(s[i]);
    }
    for (int i = 0; i < N; i++) cr_assert(rsb_run_free(a, s[i]));
    rsb_pages_check(a);
    cr_assert_eq(a->nspare_runs, RSB_SPARE_RUNS, "the oldest spares were evicted");
    cr_assert(!(s[0]->flags & RSB_SF_SPARE) && s[0]->kind != RSB_SPAN_RUN, "evicted: back to the pages");
    cr_assert(s[N - 1]->flags & RSB_SF_SPARE);
    cr_assert_not(rsb_run_free(a, s[N - 1]), "a spare freed again is a double free");
    size_t spare = 0;
    for (int i = 2; i < N; i++) spare += (size_t)(4 + i) << RSB_PAGE_SHIFT;
    cr_assert_eq(a->spare_run_bytes, spare);
    cr_assert_eq(a->run_bytes, 0, "spares are not in use");
    rsb_span *four = rsb_run_alloc(a, 4, &zero);
    cr_assert(four != s[0] || !(four->flags & RSB_SF_SPARE), "4 pages: not a spare");
    cr_assert_eq(a->nspare_runs, RSB_SPARE_RUNS, "no spare of 4 pages was taken");
    rsb_span *t = rsb_run_alloc(a, 6, &zero);
    cr_assert_eq(t, s[2], "same page count: the spare comes back");
    cr_assert(t->kind == RSB_SPAN_RUN && !(t->flags & RSB_SF_SPARE) && !zero);
    cr_assert_eq(a->run_bytes, (size_t)(6 + 4) << RSB_PAGE_SHIFT);
    rsb_pages_purge(a, true);
    cr_assert_eq(a->nspare_runs, 0);
    cr_assert_eq(a->spare_run_bytes, 0);
    rsb_pages_check(a);
    rsb_pages_free(a, t);
    rsb_pages_free(a, four);
    rsb_pages_check(a);
}

/* A page run is cut in two and both halves go back; the region build uses
 * this for aligned runs and in-place shrinking. */
Test(page_alloc, split_runs_free_independently) {
    rsb_pages *a = new_arena(-1);
    bool zero;
    rsb_span *x = rsb_pages_alloc(a, 7, RSB_SPAN_RUN, &zero);
    char *start = rsb_span_start(x);
    rsb_span *y = rsb_pages_split(a, x, 3);
    cr_assert_eq(x->npages, 3);
    cr_assert_eq(y->npages, 4);
    cr_assert_eq(rsb_span_start(y), start + ((size_t)3 << RSB_PAGE_SHIFT));
    rsb_pages_check(a);
    rsb_pages_free(a, y);
    rsb_pages_check(a);
    rsb_pages_free(a, x);
    rsb_pages_check(a);
}

/* The registry covers addresses below 2^RSB_ADDR_BITS.  Setting an entry
 * beyond it is refused; it used to write past the end of the table (the
 * lookup had a range check, the setter none), which arm64 (mmap near 2^48)
 * and 5-level x86-64 would reach. */
Test(registry, out_of_range_addresses_are_refused_not_written) {
    unit_global_init();
    uintptr_t top = (uintptr_t)1 << RSB_ADDR_BITS;
    uintptr_t far[] = {top, top + RSB_CHUNK_SIZE, (uintptr_t)1 << 52, (uintptr_t)1 << 56, ~(uintptr_t)0 << RSB_CHUNK_SHIFT};
    for (unsigned i = 0; i < sizeof far / sizeof far[0]; i++) {
        cr_assert_not(rsb_registry_set(far[i], RSB_HDR_PAGES), "address %#lx accepted", (unsigned long)far[i]);
        cr_assert_eq(rsb_registry_get(far[i]), 0);
    }
    /* The last chunk below the limit is still registered and found. */
    uintptr_t last = top - RSB_CHUNK_SIZE;
    cr_assert(rsb_registry_set(last, RSB_HDR_HUGE));
    cr_assert_eq(rsb_registry_get(last), RSB_HDR_HUGE);
    cr_assert(rsb_registry_set(last, 0));
    cr_assert_eq(rsb_registry_get(last), 0);
}
