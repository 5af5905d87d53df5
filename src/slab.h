/*
 * Slabs: spans cut into blocks of one size class.  A slab's free blocks are
 * a singly linked list through their first word; blocks [bump, capacity)
 * have never been handed out and are linked in ("carved") at most
 * RSB_CARVE_BYTES at a time, so a fresh slab becomes resident only as it is
 * used.  The second word of a free block holds the double-free marker
 * (key ^ address, written by free, cleared by malloc).
 *
 * Invariant (owner cache lock held): used + (length of the free list) +
 * parked + (capacity - bump) == capacity; every block on the free list lies
 * in [0, bump) and starts at a multiple of the block size (rsb_slab_check).
 *
 * Scrubbing (hosted): the OS pages of a slab whose every block is free go
 * back to the system (MADV_DONTNEED); the free blocks on them leave the free
 * list ("parked": their links would read as zero) and each page's `purged`
 * bits say which OS pages went.  When the slab needs blocks again and its
 * free list is empty, the parked blocks are linked back (rsb_slab_unpark),
 * before any never-used block is carved; the pages fault in as reused.
 *
 * With RSB_HARDEN a link is stored XOR-ed with a secret and the block's own
 * address, and every link read is checked to land inside the same slab: a
 * use-after-free write into a free block is reported at the next allocation
 * instead of steering malloc to an arbitrary address.
 */
#ifndef RSB_SLAB_H
#define RSB_SLAB_H

#include "class/size_class.h"
#include "error.h"
#include "page/chunk.h"

/* The cursor of every empty bin: not a slab, no free block, nothing to
 * carve (bump is the largest count, so bump >= capacity for every class). */
extern rsb_span rsb_empty_span;

/* A link as stored, and as read back without any check. */
RSB_INLINE void rsb_link_set(uint64_t key, void **b, void *next) {
    b[0] = RSB_HARDEN ? (void *)((uintptr_t)next ^ (uintptr_t)key ^ (uintptr_t)b) : next;
}
RSB_INLINE void *rsb_link_decode(uint64_t key, void **b) {
    return RSB_HARDEN ? (void *)((uintptr_t)b[0] ^ (uintptr_t)key ^ (uintptr_t)b) : b[0];
}

/* The next free block of slab s after b (start: the slab's first byte);
 * hardened, it must lie in the same slab. */
RSB_INLINE void *rsb_link_get(uint64_t key, const rsb_span *s, char *start, void **b) {
    void *n = rsb_link_decode(key, b);
    if (RSB_HARDEN && unlikely(n && (uintptr_t)n - (uintptr_t)start >= ((uintptr_t)s->npages << RSB_PAGE_SHIFT)))
        rsb_fatal_pointer("free list corrupted (write to a freed block?) at", b);
    return n;
}

/* No free block, nothing parked and nothing left to carve (true of
 * rsb_empty_span). */
RSB_INLINE bool rsb_slab_exhausted(const rsb_span *s) {
    return !rsb_slab_has_free(s) && s->u.s.bump >= rsb_slab_capacity(s) && rsb_slab_parked(s) == 0;
}

/* Push block b on slab s's free list. */
RSB_INLINE void rsb_slab_push(uint64_t key, rsb_span *s, void **b) {
    char *start = rsb_span_start(s);
    rsb_link_set(key, b, rsb_slab_head_in(s, start));
    rsb_slab_set_head_in(s, start, b);
}

/* Pop the first free block of s, or NULL if the list is empty (the
 * sentinel's list always is). */
RSB_INLINE void **rsb_slab_pop(uint64_t key, rsb_span *s) {
    if (!rsb_slab_has_free(s)) return NULL;
    char *start = rsb_span_start(s);
    void **b = (void **)rsb_slab_head_in(s, start);
    rsb_slab_set_head_in(s, start, rsb_link_get(key, s, start, b));
    return b;
}

/* Make the new span s a slab of class cls owned by cache `owner`, empty. */
void rsb_slab_init(rsb_span *s, unsigned cls, uint32_t owner);
/* Link up to RSB_CARVE_BYTES of never-used blocks onto the free list. */
void rsb_slab_carve(uint64_t key, rsb_span *s);
/* Take up to n never-used blocks straight onto the front of *list (linked
 * with rsb_link_set, lowest address first); returns how many.  They count
 * as used. */
uint32_t rsb_slab_carve_list(uint64_t key, rsb_span *s, uint32_t n, void **list);
/* Give back the OS pages of s that hold no block in use (owner cache lock
 * held: the madvise runs under it, so the slab cannot be released and
 * reused meanwhile).  Returns the bytes given back. */
size_t rsb_slab_scrub(uint64_t key, rsb_span *s);
/* Link s's parked blocks back onto its free list (owner cache lock held). */
void rsb_slab_unpark(uint64_t key, rsb_span *s);
/* The slab invariant above (RSB_CHECK). */
void rsb_slab_check(uint64_t key, const rsb_span *s);

#endif
