/*
 * The region page descriptor (librsbmalloc_heap.a): 16 bytes on every
 * target, because a region is small and every descriptor costs heap.  A
 * region has one chunk and one cache, so links are page indices (+1, 0 for
 * none), a slab's free-list head is an offset inside the slab, there is no
 * owner, and a span's address, block size and capacity follow from its
 * page index and class.  At most 65535 pages per region; no dirty list
 * (there is no OS to purge to).  Included by chunk.h only; read it through
 * the accessors below, which mirror span_wide.h one for one.
 *
 * Invariants: those of span_wide.h, with `free` an offset.
 */
#ifndef RSB_SPAN_COMPACT_H
#define RSB_SPAN_COMPACT_H

#include "../class/size_class.h"

typedef uint16_t rsb_nblk;
typedef uint16_t rsb_pgidx;
#define RSB_MAX_REGION_PAGES 65535u

struct rsb_span {
    union {
        struct {                 /* SLAB */
            uint16_t free;       /* first free block: offset / RSB_ALIGN + 1; 0: none */
            rsb_nblk used;       /* blocks handed out and not freed locally */
            rsb_nblk bump;       /* blocks [bump, capacity) were never handed out */
        } s;
    } u;
    uint16_t next, prev;         /* page index + 1 (0: none) */
    rsb_pgidx head;              /* page index of this page's span head */
    rsb_pgidx npages;            /* head only: length of the span in pages */
    uint8_t cls;
    uint8_t kind : 2;
    uint8_t flags : 4;
};
_Static_assert(sizeof(rsb_span) == 16, "compact descriptor");
_Static_assert(((size_t)RSB_MAX_SLAB_PAGES << RSB_PAGE_SHIFT) / RSB_ALIGN <= 65535,
               "a slab's free-list offset and block counts fit 16 bits");

#define RSB_SPAN_DIRTY_LIST 0

/* Page 0 of the chunk that holds head span s. */
RSB_INLINE char *rsb_span_base_(const rsb_span *s) {
    return ((const rsb_chunk *)(const void *)(s - s->head) - 1)->base;
}

RSB_INLINE char *rsb_span_start(const rsb_span *s) { return rsb_span_base_(s) + ((size_t)s->head << RSB_PAGE_SHIFT); }
RSB_INLINE void rsb_span_set_start(rsb_span *s, char *start) { (void)s, (void)start; }
RSB_INLINE uint32_t rsb_span_owner(const rsb_span *s) {
    (void)s;
    return 0; /* one cache per region */
}

RSB_INLINE rsb_span *rsb_span_at_(const rsb_span *s, uint16_t link) {
    return link ? (rsb_span *)(s - s->head) + (link - 1) : NULL;
}
RSB_INLINE uint16_t rsb_span_link_(const rsb_span *t) { return t ? (uint16_t)(t->head + 1) : 0; }
RSB_INLINE rsb_span *rsb_span_next(const rsb_span *s) { return rsb_span_at_(s, s->next); }
RSB_INLINE rsb_span *rsb_span_prev(const rsb_span *s) { return rsb_span_at_(s, s->prev); }
RSB_INLINE void rsb_span_set_next(rsb_span *s, const rsb_span *t) { s->next = rsb_span_link_(t); }
RSB_INLINE void rsb_span_set_prev(rsb_span *s, const rsb_span *t) { s->prev = rsb_span_link_(t); }

/* No dirty list: free spans keep RSB_SF_DIRTY (their memory is not known to
 * be zero) and nothing else. */
RSB_INLINE rsb_span *rsb_span_dnext(const rsb_span *s) { (void)s; return NULL; }
RSB_INLINE rsb_span *rsb_span_dprev(const rsb_span *s) { (void)s; return NULL; }
RSB_INLINE void rsb_span_set_dnext(rsb_span *s, rsb_span *t) { (void)s, (void)t; }
RSB_INLINE void rsb_span_set_dprev(rsb_span *s, rsb_span *t) { (void)s, (void)t; }
RSB_INLINE uint32_t rsb_span_freed_ms(const rsb_span *s) { (void)s; return 0; }
RSB_INLINE void rsb_span_set_freed_ms(rsb_span *s, uint32_t ms) { (void)s, (void)ms; }

/* Page i of slab s names its head (the only per-page field). */
RSB_INLINE void rsb_span_mark_page(rsb_span *s, uint32_t i) { s[i].head = s->head; }

/* Free's fast-path view of p's page: its span's head (no replicas in 16
 * bytes), so p must still be checked against the span's extent. */
#define RSB_PAGE_VIEW_EXACT 0
RSB_INLINE const rsb_span *rsb_page_view(const rsb_chunk *c, const void *p) {
    uintptr_t idx = ((uintptr_t)p - (uintptr_t)c->base) >> RSB_PAGE_SHIFT;
    const rsb_span *pages = (const rsb_span *)(const void *)(c + 1);
    return &pages[pages[idx].head];
}
RSB_INLINE rsb_span *rsb_view_head(const rsb_span *d) { return (rsb_span *)d; }

/* SLAB fields: block size and capacity come from the class. */
RSB_INLINE void rsb_slab_set_class(rsb_span *s, unsigned cls, uint32_t owner, uint32_t block, uint32_t capacity) {
    (void)owner, (void)block, (void)capacity;
    s->cls = (uint8_t)cls;
}
RSB_INLINE uint32_t rsb_slab_block(const rsb_span *s) { return rsb_class_size[s->cls]; }
RSB_INLINE uint32_t rsb_slab_capacity(const rsb_span *s) { return rsb_class_blocks[s->cls]; }
/* No OS to give pages back to: nothing is ever parked or purged. */
#define RSB_SLAB_SCRUB 0
RSB_INLINE uint32_t rsb_slab_parked(const rsb_span *s) { (void)s; return 0; }
RSB_INLINE void rsb_slab_set_parked(rsb_span *s, uint32_t n) { (void)s, (void)n; }
RSB_INLINE uint32_t rsb_slab_purged(const rsb_span *s, uint32_t i) { (void)s, (void)i; return 0; }
RSB_INLINE void rsb_slab_set_purged(rsb_span *s, uint32_t i, uint32_t bits) { (void)s, (void)i, (void)bits; }
/* The free-list head, stored as (offset from the slab's start) / RSB_ALIGN
 * + 1, 0 for none.  start is rsb_span_start(s), computed once by the caller
 * (and only when the slab has a free block: the empty-bin sentinel has no
 * chunk). */
RSB_INLINE bool rsb_slab_has_free(const rsb_span *s) { return s->u.s.free != 0; }
RSB_INLINE void *rsb_slab_head_in(const rsb_span *s, char *start) {
    uint32_t f = s->u.s.free;
    return f ? start + (size_t)(f - 1) * RSB_ALIGN : NULL;
}
RSB_INLINE void rsb_slab_set_head_in(rsb_span *s, char *start, void *b) {
    s->u.s.free = b ? (uint16_t)((uintptr_t)((char *)b - start) / RSB_ALIGN + 1) : 0;
}

#endif
