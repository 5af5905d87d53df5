/*
 * The page layer and the core over a fake OS (fake_os.c): chunks the
 * registry cannot cover are refused, failed mappings fail cleanly, the
 * purge delay follows the clock, a purge the OS refuses leaves the memory
 * marked not-zero, spare huge mappings expire, and fatal errors name
 * rsbmalloc and the address.  Built with RSB_ADDR_BITS=46; the fake OS
 * places mappings where each test says: beyond 2^46 to be refused, from
 * 2^45 up to be used (above ASan's shadow memory).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "fake_os.h"

_Static_assert(RSB_ADDR_BITS == 46, "built with a small registry");

/* Addresses below the registry's limit that the kernel leaves free (and
 * that are not ASan's shadow memory). */
#define LOW_BASE ((uintptr_t)1 << 45)

static rsb_pages *pages(int32_t delay) {
    rsb_pages *pg = calloc(1, sizeof *pg);
    rsb_pages_init(pg, delay);
    rsb_huge_init(pg);
    return pg;
}

static void reset(void) {
    memset(&fake, 0, sizeof fake);
    fake.now_ms = 1000;
}

Test(fake_os, chunks_beyond_the_registry_are_refused_and_unmapped) {
    reset();
    rsb_pages *pg = pages(-1);
    bool zero;
    fake.next_addr = ((uintptr_t)1 << 46) + ((uintptr_t)1 << 44); /* beyond the registry */
    rsb_span *s = rsb_pages_alloc(pg, 2, RSB_SPAN_RUN, &zero);
    cr_assert_null(s, "a chunk above 2^46 was used");
    cr_assert_eq(pg->nchunks, 0);
    cr_assert_eq(fake.unmaps, 1, "the refused chunk was given back");
    cr_assert_eq(fake.mapped_bytes, 0);
    void *h = rsb_huge_alloc(pg, 8u << 20, 0, &zero);
    cr_assert_null(h, "a huge mapping above 2^46 was used");
    cr_assert_eq(fake.mapped_bytes, 0);
    fake.next_addr = LOW_BASE; /* now below the limit */
    cr_assert_eq(fake.mmap_errors, 0, "the kernel would not map beyond 2^46: nothing was tested");
    s = rsb_pages_alloc(pg, 2, RSB_SPAN_RUN, &zero);
    cr_assert_not_null(s);
    cr_assert_lt((uintptr_t)rsb_span_start(s), (uintptr_t)1 << 46);
    cr_assert_eq(rsb_pages_chunk_of(pg, rsb_span_start(s)), rsb_chunk_of_span(s));
    rsb_pages_free(pg, s);
    rsb_pages_check(pg);
}

Test(fake_os, a_failed_mapping_fails_the_request_only) {
    reset();
    fake.next_addr = LOW_BASE + ((uintptr_t)1 << 32);
    rsb_pages *pg = pages(-1);
    bool zero;
    fake.fail_maps = 2;
    cr_assert_null(rsb_pages_alloc(pg, 1, RSB_SPAN_RUN, &zero));
    cr_assert_null(rsb_huge_alloc(pg, 4u << 20, 0, &zero));
    cr_assert_eq(fake.failed_maps, 2);
    cr_assert_eq(pg->nchunks, 0);
    cr_assert_eq(pg->huge_count, 0);
    rsb_span *s = rsb_pages_alloc(pg, 1, RSB_SPAN_RUN, &zero);
    cr_assert_not_null(s, "the next request maps again");
    rsb_pages_free(pg, s);
    rsb_pages_check(pg);
}

Test(fake_os, the_purge_delay_follows_the_clock) {
    reset();
    fake.next_addr = LOW_BASE + ((uintptr_t)2 << 32);
    rsb_pages *pg = pages(50);
    bool zero;
    rsb_span *keep = rsb_pages_alloc(pg, 1, RSB_SPAN_RUN, &zero);
    rsb_span *x = rsb_pages_alloc(pg, 4, RSB_SPAN_RUN, &zero);
    rsb_pages_free(pg, x);
    cr_assert_gt(pg->dirty_bytes, 0);
    unsigned before = fake.purges;
    fake.now_ms += 40;
    rsb_span *early = rsb_pages_alloc(pg, 1, RSB_SPAN_RUN, &zero); /* activity before the delay */
    cr_assert_eq(fake.purges, before, "purged before the delay");
    fake.now_ms += 11;
    rsb_span *y = rsb_pages_alloc(pg, 1, RSB_SPAN_RUN, &zero); /* activity after it */
    cr_assert_gt(fake.purges, before, "not purged after the delay");
    cr_assert_eq(pg->dirty_bytes, 0);
    rsb_pages_free(pg, early);
    rsb_pages_free(pg, y);
    rsb_pages_free(pg, keep);
    rsb_pages_check(pg);
}

/* A purge the OS refuses must not make the pages look zeroed: they would
 * be handed to calloc unwritten.  (The page layer cleared the dirty flag
 * whatever madvise returned.) */
Test(fake_os, a_refused_purge_keeps_the_pages_not_zero) {
    reset();
    fake.next_addr = LOW_BASE + ((uintptr_t)3 << 32);
    rsb_pages *pg = pages(-1);
    bool zero;
    rsb_span *keep = rsb_pages_alloc(pg, 1, RSB_SPAN_RUN, &zero);
    rsb_span *x = rsb_pages_alloc(pg, 4, RSB_SPAN_RUN, &zero);
    cr_assert(zero);
    char *p = rsb_span_start(x);
    memset(p, 0xab, (size_t)4 << RSB_PAGE_SHIFT);
    rsb_pages_free(pg, x);
    fake.fail_purges = true;
    rsb_pages_purge(pg, true);
    rsb_pages_check(pg);
    rsb_span *y = rsb_pages_alloc(pg, 4, RSB_SPAN_RUN, &zero);
    cr_assert_eq(rsb_span_start(y), p);
    cr_assert_not(zero, "unpurged pages reported zero");
    cr_assert_eq((unsigned char)p[100], 0xab);
    rsb_pages_free(pg, y);
    rsb_pages_free(pg, keep);
    rsb_pages_check(pg);
}

Test(fake_os, spare_huge_mappings_are_reused_then_expire) {
    reset();
    fake.next_addr = LOW_BASE + ((uintptr_t)4 << 32);
    rsb_pages *pg = pages(100);
    bool zero;
    size_t n = (size_t)6 << 20;
    void *p = rsb_huge_alloc(pg, n, 0, &zero);
    cr_assert_not_null(p);
    cr_assert(zero);
    rsb_huge *h = (rsb_huge *)rsb_header_of(pg, p);
    cr_assert_eq(rsb_registry_get((uintptr_t)h), RSB_HDR_HUGE);
    unsigned maps = fake.maps;
    rsb_huge_free(pg, h);
    cr_assert_eq(h->kind, RSB_HDR_HUGE_SPARE);
    cr_assert_eq(rsb_registry_get((uintptr_t)h), RSB_HDR_HUGE, "a spare stays registered");
    void *q = rsb_huge_alloc(pg, n - 4096, 0, &zero);
    cr_assert_eq(q, p, "the spare mapping is reused");
    cr_assert_eq(fake.maps, maps, "no new mapping");
    cr_assert_not(zero);
    rsb_huge_free(pg, (rsb_huge *)rsb_header_of(pg, q));
    unsigned unmaps = fake.unmaps;
    fake.now_ms += 150;
    rsb_lock_acquire(&pg->lock);
    rsb_pages_purge(pg, false);
    rsb_lock_release(&pg->lock);
    cr_assert_eq(fake.unmaps, unmaps + 1, "the spare expired");
    cr_assert_eq(rsb_registry_get((uintptr_t)h), 0);
    cr_assert_eq(pg->huge_mapped, 0);
}

/* Fatal errors: one line naming rsbmalloc and the address, then abort. */
Test(fake_os, a_double_free_aborts_with_rsbmalloc_and_the_address) {
    reset();
    fake.next_addr = LOW_BASE + ((uintptr_t)5 << 32);
    rsb_allocator *a = aligned_alloc(RSB_CACHELINE, sizeof *a);
    memset(a, 0, sizeof *a);
    rsb_pages_init(&a->pages, -1);
    static rsb_cache caches[2] __attribute__((aligned(RSB_CACHELINE)));
    rsb_caches_init(a, caches, 2);
    a->key = 0x77;
    void *p = rsb_core_malloc(a, 40);
    cr_assert_not_null(p);
    rsb_core_free(a, p);
    jmp_buf jb;
    fake.on_abort = &jb;
    if (setjmp(jb) == 0) {
        rsb_core_free(a, p);
        cr_assert_fail("a double free did not abort");
    }
    char want[64];
    snprintf(want, sizeof want, "%p", p);
    cr_assert_eq(fake.aborts, 1);
    cr_assert_not_null(strstr(fake.message, "rsbmalloc: double free"), "%s", fake.message);
    cr_assert_not_null(strstr(fake.message, want), "%s lacks %s", fake.message, want);
}

/* A huge block that shrinks keeps its pages past the new end until the
 * purge delay: growing back costs no system call; after the delay the
 * slack is unmapped.  A spare smaller than a request is grown (by mremap,
 * its pages kept) rather than replaced by a fresh mapping. */
Test(fake_os, huge_slack_waits_for_the_delay_and_spares_grow) {
    reset();
    fake.next_addr = LOW_BASE + ((uintptr_t)6 << 32);
    rsb_pages *pg = pages(100);
    bool zero;
    char *p = rsb_huge_alloc(pg, (size_t)8 << 20, 0, &zero);
    rsb_huge *h = (rsb_huge *)rsb_header_of(pg, p);
    size_t map = h->map_size;
    unsigned calls = fake.maps + fake.unmaps + fake.remaps;
    cr_assert_eq(rsb_huge_realloc(pg, h, (size_t)5 << 20), p);
    cr_assert_eq(rsb_huge_usable(h), rsb_align_up(((size_t)5 << 20) + h->offset, 4096) - h->offset);
    cr_assert_eq(h->map_size, map, "the slack stays mapped");
    cr_assert_eq(rsb_huge_realloc(pg, h, (size_t)7 << 20), p, "grown back in place");
    cr_assert_eq(fake.maps + fake.unmaps + fake.remaps, calls, "no system call for a shrink and regrowth");
    cr_assert_eq(rsb_huge_realloc(pg, h, (size_t)3 << 20), p);
    fake.now_ms += 150;
    rsb_lock_acquire(&pg->lock);
    rsb_pages_purge(pg, false);
    rsb_lock_release(&pg->lock);
    cr_assert_eq(h->map_size, h->end, "the slack went after the delay");
    cr_assert_eq(pg->huge_mapped, h->map_size);
    rsb_huge_free(pg, h); /* a 3 MiB spare */
    unsigned maps = fake.maps, remaps = fake.remaps;
    char *q = rsb_huge_alloc(pg, (size_t)10 << 20, 0, &zero);
    cr_assert_not_null(q);
    cr_assert_gt(fake.remaps, remaps, "the spare was grown by mremap");
    cr_assert_leq(fake.maps, maps + 1, "at most a reservation to move it to");
    rsb_huge *g = (rsb_huge *)rsb_header_of(pg, q);
    cr_assert_geq(rsb_huge_usable(g), (size_t)10 << 20);
    memset(q, 1, (size_t)10 << 20);
    rsb_huge_free(pg, g);
    rsb_lock_acquire(&pg->lock);
    rsb_pages_purge(pg, true);
    rsb_lock_release(&pg->lock);
    cr_assert_eq(pg->huge_mapped, 0);
}
