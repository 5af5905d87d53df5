/*
 * The page descriptor: 64 bytes, one cache line, so that free's
 * lookup of a slab (kind, start, npages, cls, owner, free list) touches one
 * line.  Included by chunk.h only; read it through the accessors below.
 *
 * Invariants (every descriptor; see also chunk.h and docs/design.md)
 *   - head is the index of the head page of the span containing this page,
 *     for every page of a SLAB span and for the first and last page of FREE
 *     spans and page runs.  Interior pages of FREE spans and runs may hold
 *     stale values: a lookup is valid only if pages[h].head == h,
 *     pages[h].kind is not DEAD and the page lies within [h, h + npages).  A
 *     head that stops being one (merged into a neighbour) is set to DEAD, so
 *     a stale index to it fails that test.
 *   - SLAB: used + (blocks on free) + parked + (capacity - bump) == capacity,
 *     where blocks freed by other caches but not yet drained, and blocks in
 *     thread caches, count as used; parked blocks are free blocks whose OS
 *     pages went back to the system (src/slab.c, rsb_slab_scrub), off the
 *     free list; `purged` of each page of the slab marks those OS pages.
 *     owner, cls and block never change while kind == SLAB (the capacity is
 *     the class's, rsb_class_blocks).  Protected by the owner cache's lock.
 *   - Every page of a SLAB carries its slab's kind, cls, owner and start (the
 *     replica free's fast path reads: rsb_page_view), and no page outside a
 *     live slab says SLAB; the counters and lists are the head's alone.
 *   - FREE/RUN, and every field not listed above: protected by the page lock.
 */
#ifndef RSB_SPAN_WIDE_H
#define RSB_SPAN_WIDE_H

#include "../class/size_class.h"

typedef uint32_t rsb_nblk;
typedef uint32_t rsb_pgidx;

struct rsb_span {
    union {
        struct {                 /* SLAB */
            void *free;          /* free blocks, linked through their first word */
            rsb_nblk used;       /* blocks handed out and not freed locally */
            rsb_nblk bump;       /* blocks [bump, capacity) were never handed out */
            rsb_nblk parked;     /* free blocks on OS pages given back (rsb_slab_scrub) */
            rsb_nblk block;      /* block size in bytes (rsb_class_size[cls]) */
        } s;
        struct {                 /* FREE */
            rsb_span *dnext, *dprev; /* the dirty list, oldest first */
            uint32_t freed_ms;   /* when it was freed (purge delay) */
        } f;
    } u;
    char *start;                 /* address of the span's first byte */
    rsb_span *next, *prev;       /* SLAB: bin partial list; FREE: bucket list */
    uint8_t kind;
    uint8_t cls;
    uint8_t flags;
    uint8_t _pad;
    uint16_t owner;              /* SLAB: index of the owning cache */
    uint16_t purged;             /* SLAB, every page: its OS pages given back (bit i: the i-th) */
    rsb_pgidx head;              /* page index of this page's span head */
    rsb_pgidx npages;            /* head only: length of the span in pages */
};
_Static_assert(sizeof(void *) != 8 || sizeof(rsb_span) == 64, "descriptor is one cache line");
_Static_assert(RSB_MAX_CACHES <= 65536, "a cache index fits the owner field");


RSB_INLINE char *rsb_span_start(const rsb_span *s) { return s->start; }
RSB_INLINE void rsb_span_set_start(rsb_span *s, char *start) { s->start = start; }
RSB_INLINE uint32_t rsb_span_owner(const rsb_span *s) { return s->owner; }

RSB_INLINE rsb_span *rsb_span_next(const rsb_span *s) { return s->next; }
RSB_INLINE rsb_span *rsb_span_prev(const rsb_span *s) { return s->prev; }
RSB_INLINE void rsb_span_set_next(rsb_span *s, rsb_span *t) { s->next = t; }
RSB_INLINE void rsb_span_set_prev(rsb_span *s, rsb_span *t) { s->prev = t; }

/* FREE: dirty list links and the time the span was freed. */
RSB_INLINE rsb_span *rsb_span_dnext(const rsb_span *s) { return s->u.f.dnext; }
RSB_INLINE rsb_span *rsb_span_dprev(const rsb_span *s) { return s->u.f.dprev; }
RSB_INLINE void rsb_span_set_dnext(rsb_span *s, rsb_span *t) { s->u.f.dnext = t; }
RSB_INLINE void rsb_span_set_dprev(rsb_span *s, rsb_span *t) { s->u.f.dprev = t; }
RSB_INLINE uint32_t rsb_span_freed_ms(const rsb_span *s) { return s->u.f.freed_ms; }
RSB_INLINE void rsb_span_set_freed_ms(rsb_span *s, uint32_t ms) { s->u.f.freed_ms = ms; }

/* Page i of slab s names its head and carries the replica. */
RSB_INLINE void rsb_span_mark_page(rsb_span *s, uint32_t i) {
    s[i].head = s->head;
    s[i].kind = s->kind;
    s[i].cls = s->cls;
    s[i].owner = s->owner;
    s[i].start = s->start;
}

/* SLAB fields; every page of the slab gets the replica of cls and owner.
 * (head, kind and start were replicated by rsb_pages_alloc under the page
 * lock, and must not be written again here, outside it: the tail page's
 * head is the boundary tag a neighbour's merge reads under that lock.) */
RSB_INLINE void rsb_slab_set_class(rsb_span *s, unsigned cls, uint32_t owner, uint32_t block, uint32_t capacity) {
    (void)capacity;
    s->cls = (uint8_t)cls;
    s->owner = (uint16_t)owner;
    s->u.s.block = block;
    for (uint32_t i = 1; i < s->npages; i++) {
        s[i].cls = s->cls;
        s[i].owner = s->owner;
    }
}

/* Free's fast-path view of the page that holds p in chunk c: the page's
 * own descriptor.  Its kind is SLAB only on a page of a live slab (so p
 * lies in that slab: no range check), and then cls, owner and start are
 * the slab's; RUN only on the head page of a page run. */
RSB_INLINE const rsb_span *rsb_page_view(const rsb_chunk *c, const void *p) {
    uintptr_t off = (uintptr_t)p - (uintptr_t)c; /* hosted: base == c */
    if (sizeof(rsb_span) == 64) /* one shift and a mask instead of two shifts */
        return (const rsb_span *)(const void *)((const char *)(c + 1) +
                                                ((off >> (RSB_PAGE_SHIFT - 6)) & ~(uintptr_t)63));
    return (const rsb_span *)(const void *)(c + 1) + (off >> RSB_PAGE_SHIFT);
}
/* The head descriptor of the slab a SLAB view belongs to (descriptors live
 * in page 0 of their chunk, which is chunk-aligned). */
RSB_INLINE rsb_span *rsb_view_head(const rsb_span *d) {
    const rsb_chunk *c = (const rsb_chunk *)((uintptr_t)d & ~(uintptr_t)(RSB_CHUNK_SIZE - 1));
    return (rsb_span *)(void *)(c + 1) + d->head;
}
RSB_INLINE uint32_t rsb_slab_block(const rsb_span *s) { return s->u.s.block; }
RSB_INLINE uint32_t rsb_slab_capacity(const rsb_span *s) { return rsb_class_blocks[s->cls]; }
/* Parked blocks and the purged OS pages of page i of slab s (rsb_slab_scrub). */
RSB_INLINE uint32_t rsb_slab_parked(const rsb_span *s) { return s->u.s.parked; }
RSB_INLINE void rsb_slab_set_parked(rsb_span *s, uint32_t n) { s->u.s.parked = n; }
RSB_INLINE uint32_t rsb_slab_purged(const rsb_span *s, uint32_t i) { return s[i].purged; }
RSB_INLINE void rsb_slab_set_purged(rsb_span *s, uint32_t i, uint32_t bits) { s[i].purged = (uint16_t)bits; }
/* The free-list head (raw: the slab layer encodes the links).  start is
 * rsb_span_start(s), which this layout does not need. */
RSB_INLINE bool rsb_slab_has_free(const rsb_span *s) { return s->u.s.free != NULL; }
RSB_INLINE void *rsb_slab_head_in(const rsb_span *s, char *start) {
    (void)start;
    return s->u.s.free;
}
RSB_INLINE void rsb_slab_set_head_in(rsb_span *s, char *start, void *b) {
    (void)start;
    s->u.s.free = b;
}

#endif
