/*
 * Chunks, spans and their descriptors (see the glossary in docs/design.md).
 *
 *   page   the allocator's unit, RSB_PAGE_SIZE bytes (64 KiB hosted), a
 *          multiple of the OS page.  "OS page" always says so.
 *   chunk  a reservation of pages: RSB_CHUNK_SIZE bytes mapped at a
 *          RSB_CHUNK_SIZE-aligned address; page 0 holds the chunk header and
 *          one descriptor per page, so metadata never shares a page with
 *          user blocks (src/page/chunk_os.c).
 *   span   a run of pages described by the descriptor of its first ("head")
 *          page, of one kind:
 *            FREE  in the page allocator (src/page/pages.c);
 *            SLAB  blocks of one size class, owned by one cache (src/slab.h);
 *            RUN   a page run: one block of RSB_SMALL_MAX..RSB_RUN_MAX bytes;
 *            DEAD  a descriptor that is not a head (any more).
 *   huge   a block above RSB_RUN_MAX: its own mapping, whose first bytes are
 *          an rsb_huge header at a chunk-aligned address (src/page/huge.c).
 *
 * The descriptor's layout (64 bytes) and its accessors are in span_wide.h.
 */
#ifndef RSB_CHUNK_H
#define RSB_CHUNK_H

#include "../util.h"

enum rsb_span_kind { RSB_SPAN_DEAD = 0, RSB_SPAN_FREE, RSB_SPAN_SLAB, RSB_SPAN_RUN };
enum rsb_span_flags {
    RSB_SF_IN_BIN = 1, /* SLAB: it is its bin's `cur` or on its partial list   */
    RSB_SF_DIRTY = 2,  /* FREE: some page may be resident (not purged yet)     */
    RSB_SF_STALE = 4,  /* FREE: not on the dirty list, yet not known to be zero */
    RSB_SF_SPARE = 8,  /* RUN: freed, kept whole as a spare page run           */
    /* SLAB (the bits FREE and RUN use mean this for a slab): */
    RSB_SF_RETURNED = 2, /* SLAB: blocks came back since the last scrub pass    */
    RSB_SF_AGING = 4,    /* SLAB: ... and none in the pass before: scrub it next  */
};

typedef struct rsb_span rsb_span;

/* What a chunk-aligned header is (chunk or huge mapping, same offset). */
enum { RSB_HDR_PAGES = 1, RSB_HDR_HUGE = 2, RSB_HDR_HUGE_SPARE = 3 };
#define RSB_CHUNK_MAGIC 0x7273626d616c6c63ull /* "rsbmallc" */

/*
 * Header of a chunk; its descriptors follow it (rsb_chunk_pages).
 * Invariants: pages [0, first_page) are metadata, never part of a span
 * (their descriptors are DEAD and name themselves); pages
 * [first_page, npages) are covered exactly by disjoint spans; used_pages is
 * the number of pages in SLAB and RUN spans.  Protected by the page lock.
 */
typedef struct rsb_chunk {
    uint64_t magic;
    uint32_t kind;               /* RSB_HDR_PAGES */
    uint32_t npages;             /* pages including the metadata page(s) */
    uint32_t used_pages;
    uint32_t first_page;
    char *base;                  /* address of page 0 */
    struct rsb_chunk *next, *prev; /* the page allocator's chunk list */
} __attribute__((aligned(RSB_CACHELINE))) rsb_chunk;

/* Header of a huge block, at a chunk-aligned address.  The block starts at
 * (char *)h + offset, 0 < offset <= RSB_CHUNK_SIZE, and ends at (char *)h +
 * end (all of it usable); offset < end <= map_size, both multiples of the
 * OS page.  Pages in [end, map_size) are slack: mapped, not the program's,
 * unmapped after the purge delay (src/page/huge.c).  magic and kind are at
 * the same offsets as in rsb_chunk, so a registered header is told apart by
 * kind. */
typedef struct rsb_huge {
    uint64_t magic;
    uint32_t kind;               /* RSB_HDR_HUGE, or RSB_HDR_HUGE_SPARE while freed */
    uint32_t freed_ms;           /* spare: when it was freed; live: since when it has slack */
    size_t map_size;
    size_t offset;
    size_t end;
} rsb_huge;
_Static_assert(__builtin_offsetof(rsb_chunk, magic) == __builtin_offsetof(rsb_huge, magic) &&
                   __builtin_offsetof(rsb_chunk, kind) == __builtin_offsetof(rsb_huge, kind),
               "chunk and huge headers share their prefix");

#include "span_wide.h"
_Static_assert(sizeof(rsb_chunk) % sizeof(rsb_span) == 0,
               "hosted descriptors are cache-line aligned: the header is a whole number of them");

/* The descriptors of chunk c: one per page, right after the header. */
RSB_INLINE rsb_span *rsb_chunk_pages(const rsb_chunk *c) { return (rsb_span *)(void *)(c + 1); }

/* The chunk of head span s. */
RSB_INLINE rsb_chunk *rsb_chunk_of_span(const rsb_span *s) { return (rsb_chunk *)(void *)(s - s->head) - 1; }

/* Address of page 0: a chunk starts with its header (base == c). */
RSB_INLINE char *rsb_chunk_base(const rsb_chunk *c) { return (char *)c; }

/* The live span holding p inside chunk c, or NULL if p is in no live span
 * (metadata page, interior of a free span or page run, beyond the end). */
RSB_INLINE rsb_span *rsb_span_of(const rsb_chunk *c, const void *p) {
    uintptr_t idx = ((uintptr_t)p - (uintptr_t)c->base) >> RSB_PAGE_SHIFT;
    if (unlikely(idx >= c->npages)) return NULL;
    const rsb_span *pages = rsb_chunk_pages(c);
    uint32_t h = pages[idx].head;
    if (unlikely(h >= c->npages)) return NULL;
    const rsb_span *s = &pages[h];
    if (unlikely(s->head != h || s->kind == RSB_SPAN_DEAD || idx - h >= s->npages)) return NULL;
    return (rsb_span *)s;
}

/* Hot-path lookup of the span that may hold p, without validation: the
 * descriptor named by p's page.  Sound to use when the result's kind is
 * SLAB and p lies within [start, start + npages pages): a descriptor whose
 * kind is not DEAD is always a live head (heads that stop being heads are
 * set DEAD), and every page of a slab names its head.  p's page index is at
 * most RSB_CHUNK_PAGES; the descriptor past the last one lies
 * in the metadata page and reads as DEAD (chunk_os.c asserts the room). */
RSB_INLINE rsb_span *rsb_span_guess(const rsb_chunk *c, const void *p) {
    uintptr_t idx = ((uintptr_t)p - (uintptr_t)rsb_chunk_base(c)) >> RSB_PAGE_SHIFT;
    rsb_span *pages = rsb_chunk_pages(c);
    return &pages[pages[idx].head];
}

/* Doubly linked lists of head spans (free-span buckets, bins' partial lists). */
RSB_INLINE void rsb_span_list_push(rsb_span **head, rsb_span *s) {
    rsb_span *n = *head;
    rsb_span_set_prev(s, NULL);
    rsb_span_set_next(s, n);
    if (n) rsb_span_set_prev(n, s);
    *head = s;
}

RSB_INLINE void rsb_span_list_remove(rsb_span **head, rsb_span *s) {
    rsb_span *p = rsb_span_prev(s), *n = rsb_span_next(s);
    if (p)
        rsb_span_set_next(p, n);
    else
        *head = n;
    if (n) rsb_span_set_prev(n, p);
}

#endif
