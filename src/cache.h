/*
 * Shared caches: a fixed array of caches, each a spinlock and one bin per
 * size class.  A thread uses the cache its thread id hashes to, so threads
 * share caches (with more threads than caches) and may come and go freely:
 * a cache holds no per-thread state.  (The per-thread cache in front of it
 * is src/thread_cache.h.)
 *
 * Ownership: a slab belongs to the cache that carved it (its owner).  A
 * block that comes back through a cache that is its owner goes straight on
 * the slab's free list under that cache's lock.  Any other goes, lock-free,
 * on the owner's `remote` stack; the owner drains the stack before it
 * carves or takes new memory, and at trim, so memory freed elsewhere always
 * comes home (producer/consumer programs stay bounded).  Thread caches in
 * front hold blocks of any owner and sort them home when they flush.
 *
 * Locks: the page lock is never taken while a cache lock is held, but by
 * rsb_lock_all (every cache lock in index order, then the page lock), for
 * fork and statistics; no system call is made under a cache lock but a
 * slab scrub's madvise (rsb_slab_scrub: the slab must not be released and
 * reused meanwhile; once per purge delay at most).
 */
#ifndef RSB_CACHE_H
#define RSB_CACHE_H

#include "allocator.h"
#include "os/os.h"
#include "slab.h"

/* Transfer slots per bin: whole batches a thread cache flushed, handed to
 * the next refill as they are (O(1) each way under the lock, instead of a
 * slab push or pop per block). */
#define RSB_XFER 8

/* Bin invariants (owner cache lock held; rsb_cache_check):
 *   - xfer[0 .. nxfer) are chains of xn[i] > 0 blocks of this class (of any
 *     owner), linked with rsb_link_set; their blocks count as used in their
 *     slabs, like blocks in a thread cache;
 *   - cur is never NULL: it is a slab of this class or &rsb_empty_span;
 *   - partial lists slabs of this class other than cur that have a free
 *     block or uncarved space; each has RSB_SF_IN_BIN set (so does cur);
 *   - a slab with neither (full) is on no list and has RSB_SF_IN_BIN clear;
 *   - no slab on partial has used == 0: an emptied slab other than cur goes
 *     back to the page allocator (after the cache lock is dropped);
 *   - a slab's RETURNED/AGING flags drive the scrub passes (scrub_pass);
 *   - slots nobody took or filled for a whole scrub interval (xfer_idle
 *     still set at the next tick) are sorted home (xfer_age), so that a bin
 *     that stopped refilling does not keep their slabs. */
typedef struct rsb_bin {
    rsb_span *cur;
    rsb_span *partial;
    void *xfer[RSB_XFER];
    uint8_t xn[RSB_XFER];
    uint8_t nxfer;
    uint8_t xfer_idle; /* 1: no slot taken or filled since the last scrub tick */
} rsb_bin;

/* One shared cache.  Everything but `remote` is protected by `lock`. */
typedef struct rsb_cache {
    rsb_lock lock;
    uint32_t index;              /* its place in the allocator's array */
    uint64_t nmalloc;            /* blocks handed out by the slow paths (stats) */
    uint32_t ticks;              /* slow-path calls: the clock is read once per 64 */
    uint32_t scrub_ms;           /* when the last scrub pass ran (cache.c) */
    rsb_bin bins[RSB_NUM_CLASSES];
    /* Blocks of this cache's slabs freed by other caches' threads, linked
     * through their first word; pushed with a CAS, taken whole with an
     * exchange.  Written by other threads: its own cache line. */
    void *remote __attribute__((aligned(RSB_CACHELINE)));
} __attribute__((aligned(RSB_CACHELINE))) rsb_cache;

RSB_INLINE rsb_cache *rsb_cache_of_thread(rsb_allocator *a) {
    uint64_t h = (uint64_t)rsb_os_thread_id() * 0x9e3779b97f4a7c15ull;
    return &a->caches[(h >> 56) & (a->ncaches - 1)];
}

void rsb_caches_init(rsb_allocator *a, rsb_cache *caches, uint32_t n);

/* --- allocation -------------------------------------------------------------- */

/* Class cls's cursor has no free block: carve, drain remote frees, take a
 * partial slab or a new one.  Lock held; releases it.  NULL if out of memory. */
void *rsb_cache_alloc_slow(rsb_allocator *a, rsb_cache *c, unsigned cls);

/* A block of class cls from cache c: lock, pop, unlock.  The second word of
 * a free block holds the double-free marker: cleared on the way out. */
RSB_INLINE void *rsb_cache_alloc(rsb_allocator *a, rsb_cache *c, unsigned cls) {
    rsb_lock_acquire(&c->lock);
    rsb_span *s = c->bins[cls].cur;
    void **b = rsb_slab_pop(a->link_key, s);
    if (unlikely(b == NULL)) return rsb_cache_alloc_slow(a, c, cls);
    s->u.s.used++;
    rsb_lock_release(&c->lock);
    b[1] = NULL;
    return b;
}

/* The next block of a batch (a list of blocks of class cls moving between a
 * thread cache and a cache, which mixes slabs): hardened, it must be the
 * start of a block of a live slab of that class. */
RSB_INLINE void *rsb_batch_link_get(const rsb_allocator *a, void **b, unsigned cls) {
    void *n = rsb_link_decode(a->link_key, b);
    if (RSB_HARDEN && n) {
        rsb_chunk *ch = rsb_pages_chunk_of(&a->pages, n);
        rsb_span *s = ch ? rsb_span_guess(ch, n) : NULL;
        uintptr_t off = s ? (uintptr_t)n - (uintptr_t)rsb_span_start(s) : 0;
        if (!s || s->kind != RSB_SPAN_SLAB || s->cls != cls || off >= ((uintptr_t)s->npages << RSB_PAGE_SHIFT) ||
            !rsb_class_divides(cls, off))
            rsb_fatal_pointer("free list corrupted (write to a freed block?) at", b);
    }
    return n;
}

/* Up to n blocks of class cls in one lock (at least one unless out of
 * memory), linked with rsb_link_set; *got is the count.  A transfer slot's
 * chain is taken whole. */
void *rsb_cache_take_batch(rsb_allocator *a, rsb_cache *c, unsigned cls, unsigned n, unsigned *got);
/* Give back a list of n blocks of class cls (linked with rsb_link_set): into
 * a free transfer slot whole (n > 0), else those of c's slabs onto their slabs, in
 * one lock, and the others onto their owners' remote stacks, one chain (one
 * CAS) per owner. */
void rsb_cache_put_batch(rsb_allocator *a, rsb_cache *c, void *list, unsigned cls, unsigned n);

/* --- free -------------------------------------------------------------------- */

/* The fast free pushed the block and found the slab full or emptied: settle
 * its place in the bin.  Lock held; releases it. */
void rsb_cache_free_settle(rsb_allocator *a, rsb_cache *c, rsb_span *s);
/* Block b of slab s, owned by c: wait for c's lock, then free it. */
void rsb_cache_free_locked(rsb_allocator *a, rsb_cache *c, rsb_span *s, void **b);
/* Block b of slab s onto its owner's remote stack (one CAS, no lock). */
void rsb_remote_free(rsb_allocator *a, rsb_span *s, void **b);
/* A chain head..tail of blocks owned by cache owner onto its remote stack. */
void rsb_remote_free_chain(rsb_allocator *a, uint32_t owner, void *head, void *tail);

/* Block b of slab s (checked, marked freed) back to cache c (the freeing
 * thread's cache): onto the slab if c owns it, else the owner's remote
 * stack. */
RSB_INLINE void rsb_cache_free(rsb_allocator *a, rsb_cache *c, rsb_span *s, void **b) {
    if (unlikely(c->index != rsb_span_owner(s))) {
        rsb_remote_free(a, s, b);
        return;
    }
    if (unlikely(!rsb_lock_try(&c->lock))) {
        rsb_cache_free_locked(a, c, s, b);
        return;
    }
    rsb_slab_push(a->link_key, s, b);
    RSB_ASSERT(s->u.s.used > 0);
    uint32_t used = --s->u.s.used;
    s->flags |= RSB_SF_RETURNED;
    if (unlikely(!(s->flags & RSB_SF_IN_BIN) || (used == 0 && c->bins[s->cls].cur != s))) {
        rsb_cache_free_settle(a, c, s);
        return;
    }
    rsb_lock_release(&c->lock);
}

/* --- whole-cache operations ------------------------------------------------------ */

/* Give back the OS pages inside slabs that hold no block in use: of every
 * slab (`all`: trim), or of slabs left alone since the last pass (the
 * background purge).  Returns the bytes given back. */
size_t rsb_caches_scrub(rsb_allocator *a, bool all);
/* Sort every transfer slot's blocks home (trim). */
void rsb_caches_flush_xfer(rsb_allocator *a);
/* Drain every cache's remote frees (trim, stats). */
void rsb_caches_drain_all(rsb_allocator *a);
/* Give every empty slab back to the page allocator (trim). */
void rsb_caches_release_empty(rsb_allocator *a);
/* Every cache lock in index order, then the page lock (fork, stats). */
void rsb_lock_all(rsb_allocator *a);
void rsb_unlock_all(rsb_allocator *a);
/* The bin invariants above and every slab's (RSB_CHECK).  Lock held. */
void rsb_cache_check(rsb_allocator *a, rsb_cache *c);

#endif
