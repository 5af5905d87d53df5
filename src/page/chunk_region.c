/*
 * Region chunks (librsbmalloc_heap.a): a heap's only chunk is the region its
 * caller handed over, laid out by rsb_heap_init; there is nothing to map or
 * unmap, and the page allocator never asks for a second chunk (nor releases
 * the only one: a purge keeps the last chunk).
 */
#include "pages.h"

rsb_chunk *rsb_chunk_new(rsb_pages *pg) {
    (void)pg;
    return NULL;
}

void rsb_chunk_release(rsb_pages *pg, rsb_chunk *c) {
    (void)pg, (void)c;
    rsb_assert_fail("a region chunk is never released", __FILE__, __LINE__);
}

void rsb_pages_add_region(rsb_pages *pg, rsb_chunk *c, char *base, uint32_t npages) {
    rsb_chunk_add(pg, c, base, npages, 0);
    rsb_chunk_pages(c)[0].flags = RSB_SF_STALE;
    pg->region = c;
    pg->mapped = (size_t)npages << RSB_PAGE_SHIFT;
}
