/*
 * Hosted chunks: RSB_CHUNK_SIZE bytes mapped from the OS at a chunk-aligned
 * address and registered, so that free can find them.  Page 0 holds the
 * header and the descriptors.  Page lock held.
 */
#include "../os/os.h"
#include "pages.h"

_Static_assert(sizeof(rsb_chunk) + (RSB_CHUNK_PAGES + 1) * sizeof(rsb_span) <= RSB_PAGE_SIZE,
               "chunk metadata, and the DEAD descriptor past it (rsb_span_guess), fit in page 0");
_Static_assert(RSB_CHUNK_PAGES - 1 <= (rsb_pgidx)-1, "page indices fit the descriptor");

rsb_chunk *rsb_chunk_new(rsb_pages *pg) {
    char *base = rsb_os_map(RSB_CHUNK_SIZE, RSB_CHUNK_SIZE, 0);
    if (!base) return NULL;
    if (!rsb_registry_set((uintptr_t)base, RSB_HDR_PAGES)) { /* beyond the registry */
        rsb_os_unmap(base, RSB_CHUNK_SIZE);
        return NULL;
    }
    rsb_chunk *c = (rsb_chunk *)(void *)base;
    rsb_chunk_add(pg, c, base, (uint32_t)RSB_CHUNK_PAGES, 1);
    pg->mapped += RSB_CHUNK_SIZE;
    return c;
}

void rsb_chunk_release(rsb_pages *pg, rsb_chunk *c) {
    RSB_ASSERT(c->used_pages == 0 && pg->nchunks > 1);
    if (c->prev)
        c->prev->next = c->next;
    else
        pg->chunks = c->next;
    if (c->next) c->next->prev = c->prev;
    pg->nchunks--;
    pg->mapped -= RSB_CHUNK_SIZE;
    rsb_registry_set((uintptr_t)c->base, 0);
    rsb_os_unmap(c->base, RSB_CHUNK_SIZE);
}
