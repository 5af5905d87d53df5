/*
 * Thread caches: a fixed array of caches, each a set of bins (one per size
 * class) behind a spinlock.  A thread uses the cache its thread id hashes to;
 * there is no per-thread state, so threads may come and go (and the library
 * may be dlopen'ed) freely.
 *
 * Ownership: a slab span belongs to the cache that carved it (span->owner).
 * A block freed by a thread whose cache is the owner goes straight back on
 * the span's free list under that cache's lock.  A block freed by any other
 * thread is pushed, lock-free, on the owner's `remote` stack; the owner
 * drains the stack in its slow path, so memory freed elsewhere always comes
 * home (producer/consumer programs stay bounded).
 *
 * Fast-path budget: malloc = hash, lock, pop, unlock (no loop, no syscall);
 * free = header lookup, 3 checks, hash, lock, push, unlock.
 */
#ifndef RSB_TCACHE_H
#define RSB_TCACHE_H

#include "error.h"
#include "os.h"
#include "page_alloc.h"
#include "size_classes.h"

/* Bin invariants (owner cache lock held):
 *   - cur is never NULL: it is a slab of this class or &rsb_empty_span.
 *   - partial lists slabs of this class other than cur that have a free
 *     block or uncarved space; each has RSB_SF_IN_BIN set (so does cur).
 *   - a slab with neither (full) is on no list and has RSB_SF_IN_BIN clear.
 *   - no slab on a list has used == 0, except cur. */
typedef struct rsb_bin {
    rsb_span *cur;
    rsb_span *partial;
} rsb_bin;

typedef struct rsb_cache_fields {
    rsb_lock lock;
    uint32_t index;
    uint64_t nmalloc;            /* stats, lock held */
    rsb_bin bins[RSB_NUM_CLASSES];
    /* Written by other threads: its own cache line. */
    void *remote __attribute__((aligned(RSB_CACHELINE)));
} rsb_cache_fields;

/* Padded to a power of two so that indexing the cache array is a shift. */
#if RSB_FREESTANDING /* one cache per heap, never indexed: no padding beyond a cache line */
#define RSB_CACHE_BYTES ((sizeof(rsb_cache_fields) + RSB_CACHELINE - 1) & ~(size_t)(RSB_CACHELINE - 1))
#else
#define RSB_CACHE_BYTES (sizeof(rsb_cache_fields) <= 1024 ? 1024 : sizeof(rsb_cache_fields) <= 2048 ? 2048 : 4096)
#endif
typedef struct rsb_cache {
    rsb_lock lock;
    uint32_t index;
    uint64_t nmalloc;
    rsb_bin bins[RSB_NUM_CLASSES];
    void *remote __attribute__((aligned(RSB_CACHELINE)));
    char _pad[RSB_CACHE_BYTES - sizeof(rsb_cache_fields)];
} __attribute__((aligned(RSB_CACHELINE))) rsb_cache;
_Static_assert(RSB_FREESTANDING || (sizeof(rsb_cache) & (sizeof(rsb_cache) - 1)) == 0, "cache size is a power of two");

extern rsb_span rsb_empty_span;

/* Size -> class for size <= RSB_SMALL_MAX (class 0 for size 0). */
RSB_INLINE unsigned rsb_size_class(size_t size) {
    if (likely(size <= RSB_CLASS_LUT_MAX)) return rsb_class_lut[(size + 15) >> 4];
    unsigned lg = rsb_log2(size - 1); /* size in (2^lg, 2^(lg+1)] */
    unsigned steps_lg = rsb_log2(RSB_CLASS_STEPS);
    return RSB_LINEAR_CLASSES + (lg - 7) * RSB_CLASS_STEPS + (unsigned)((size - 1) >> (lg - steps_lg)) -
           RSB_CLASS_STEPS;
}

/* Is off (an offset inside a slab, so below 2^20) a multiple of class cls's
 * block size d?  With m = rsb_class_magic[cls] = ceil(2^48 / d), write
 * off = q*d + r and d*m = 2^48 + e (0 <= e < d).  Modulo 2^48,
 * off*m = q*e + r*m: below off < 2^20 when r == 0, and at least m >= 2^28
 * (d <= 2^20) without wrapping when r > 0.  So one multiply and a test of
 * the low 48 bits replace a division (checked for every offset of every
 * class by tests/unit/size_classes.c). */
RSB_INLINE bool rsb_class_divides(unsigned cls, uintptr_t off) {
    return (((uint64_t)off * rsb_class_magic[cls]) << 16) < ((uint64_t)1 << 36);
}

RSB_INLINE rsb_cache *rsb_cache_of_thread(rsb_arena *a) {
    uint64_t h = (uint64_t)rsb_os_thread_id() * 0x9e3779b97f4a7c15ull;
    return &a->caches[(h >> 56) & (a->ncaches - 1)];
}

/* Slab fields the two descriptor layouts store differently: the first free
 * block, the block size and the number of blocks. */
#if RSB_FREESTANDING
/* The free-list head is stored as (offset from the slab's start) /
 * RSB_ALIGN + 1, 0 for none.  The span's address is computed only for a
 * nonzero head: rsb_empty_span has none. */
RSB_INLINE void *rsb_slab_head_decode(char *start, uint32_t f) { /* f != 0 */
    return start + (size_t)(f - 1) * RSB_ALIGN;
}
RSB_INLINE uint16_t rsb_slab_head_encode(const char *start, const void *b) {
    return b ? (uint16_t)((uintptr_t)((const char *)b - start) / RSB_ALIGN + 1) : 0;
}
RSB_INLINE void *rsb_slab_free_list(const rsb_span *s) {
    uint32_t f = s->u.s.free;
    return f ? rsb_slab_head_decode(rsb_span_start(s), f) : NULL;
}
RSB_INLINE void rsb_slab_set_free_list(rsb_span *s, void *b) { /* s is a real slab */
    s->u.s.free = rsb_slab_head_encode(rsb_span_start(s), b);
}
RSB_INLINE uint32_t rsb_slab_block(const rsb_span *s) { return rsb_class_size[s->cls]; }
RSB_INLINE uint32_t rsb_slab_capacity(const rsb_span *s) {
    return s == &rsb_empty_span ? 0 : rsb_class_blocks[s->cls]; /* the sentinel is full */
}
_Static_assert(((size_t)RSB_MAX_SLAB_PAGES << RSB_PAGE_SHIFT) / RSB_ALIGN <= 65535,
               "a slab's free-list offset fits 16 bits");
#else
RSB_INLINE void *rsb_slab_free_list(const rsb_span *s) { return s->u.s.free; }
RSB_INLINE void rsb_slab_set_free_list(rsb_span *s, void *b) { s->u.s.free = b; }
RSB_INLINE uint32_t rsb_slab_block(const rsb_span *s) { return s->u.s.block; }
RSB_INLINE uint32_t rsb_slab_capacity(const rsb_span *s) { return s->u.s.capacity; }
#endif

/* No free block and nothing left to carve (true of rsb_empty_span). */
RSB_INLINE bool rsb_slab_exhausted(const rsb_span *s) {
    return rsb_slab_free_list(s) == NULL && s->u.s.bump == rsb_slab_capacity(s);
}

/* Free-list links.  A free block's first word links to the next free block
 * of its slab.  With RSB_HARDEN the link is stored XOR-ed with a secret and
 * the block's own address, and every link read is checked to land inside the
 * same slab: a use-after-free write into a free block is then reported at the
 * next allocation instead of steering malloc to an arbitrary address. */
#if RSB_HARDEN
RSB_INLINE void rsb_link_set(const rsb_arena *a, void **b, void *next) {
    b[0] = (void *)((uintptr_t)next ^ a->link_key ^ (uintptr_t)b);
}
RSB_INLINE void *rsb_link_get(const rsb_arena *a, const rsb_span *s, void **b) {
    uintptr_t n = (uintptr_t)b[0] ^ a->link_key ^ (uintptr_t)b;
    if (unlikely(n && n - (uintptr_t)rsb_span_start(s) >= ((uintptr_t)s->npages << RSB_PAGE_SHIFT)))
        rsb_fatal_pointer("free list corrupted (write to a freed block?) at", b);
    return (void *)n;
}
#else
RSB_INLINE void rsb_link_set(const rsb_arena *a, void **b, void *next) {
    (void)a;
    b[0] = next;
}
RSB_INLINE void *rsb_link_get(const rsb_arena *a, const rsb_span *s, void **b) {
    (void)a;
    (void)s;
    return b[0];
}
#endif

/* Push block b on slab s's free list; pop the list's first block (NULL if
 * it is empty).  The freestanding layout computes the span's address once. */
RSB_INLINE void rsb_slab_push(const rsb_arena *a, rsb_span *s, void **b) {
#if RSB_FREESTANDING
    char *start = rsb_span_start(s);
    uint32_t f = s->u.s.free;
    rsb_link_set(a, b, f ? rsb_slab_head_decode(start, f) : NULL);
    s->u.s.free = rsb_slab_head_encode(start, b);
#else
    rsb_link_set(a, b, s->u.s.free);
    s->u.s.free = b;
#endif
}

RSB_INLINE void **rsb_slab_pop(const rsb_arena *a, rsb_span *s) {
#if RSB_FREESTANDING
    uint32_t f = s->u.s.free;
    if (!f) return NULL;
    char *start = rsb_span_start(s);
    void **b = (void **)rsb_slab_head_decode(start, f);
    s->u.s.free = rsb_slab_head_encode(start, rsb_link_get(a, s, b));
    return b;
#else
    void **b = (void **)s->u.s.free;
    if (b) s->u.s.free = rsb_link_get(a, s, b);
    return b;
#endif
}

/* Links of a batch of blocks moving between a cache and a magazine: plain,
 * or, when hardened, encoded and checked to name a block start in a live
 * slab of the expected class (a magazine mixes slabs, so the slab range
 * check of rsb_link_get does not apply). */
#if RSB_HARDEN
RSB_INLINE void rsb_mag_link_set(const rsb_arena *a, void **b, void *next) {
    b[0] = (void *)((uintptr_t)next ^ a->link_key ^ (uintptr_t)b);
}
RSB_INLINE void *rsb_mag_link_get(const rsb_arena *a, void **b, unsigned cls) {
    uintptr_t n = (uintptr_t)b[0] ^ a->link_key ^ (uintptr_t)b;
    if (n) {
        rsb_chunk *ch = (rsb_chunk *)rsb_header_of(a, (void *)n);
        rsb_span *s = ch && ch->kind == RSB_CHUNK_PAGES_KIND ? rsb_span_guess(ch, (void *)n) : NULL;
        uintptr_t off = s ? n - (uintptr_t)rsb_span_start(s) : 0;
        if (!s || s->kind != RSB_SPAN_SLAB || s->cls != cls ||
            off >= ((uintptr_t)s->npages << RSB_PAGE_SHIFT) || off % rsb_slab_block(s))
            rsb_fatal_pointer("free list corrupted (write to a freed block?) at", b);
    }
    return (void *)n;
}
#else
RSB_INLINE void rsb_mag_link_set(const rsb_arena *a, void **b, void *next) {
    (void)a;
    b[0] = next;
}
RSB_INLINE void *rsb_mag_link_get(const rsb_arena *a, void **b, unsigned cls) {
    (void)a;
    (void)cls;
    return b[0];
}
#endif

/* Take up to n blocks of class cls from cache c in one lock (at least one
 * unless out of memory), linked with rsb_mag_link_*; *got is the count. */
void *rsb_small_take_batch(rsb_arena *a, rsb_cache *c, unsigned cls, unsigned n, unsigned *got);
/* Give back a list of blocks owned by cache c, in one lock. */
void rsb_small_put_batch(rsb_arena *a, rsb_cache *c, void *list, unsigned cls);

/* Core entry points: no errno, no argument policy (interpose/api.c). */
void *rsb_core_calloc(rsb_arena *a, size_t size);
void *rsb_core_memalign(rsb_arena *a, size_t align, size_t size);
void *rsb_core_realloc(rsb_arena *a, void *p, size_t size);
size_t rsb_core_usable_size(rsb_arena *a, const void *p);
bool rsb_core_trim(rsb_arena *a);
void rsb_caches_init(rsb_arena *a, rsb_cache *caches, uint32_t n);
/* Drain every cache's remote frees (trim, stats). */
void rsb_caches_drain_all(rsb_arena *a);
void rsb_cache_check(rsb_arena *a, rsb_cache *c);


/* Slow paths (tcache.c). */
void *rsb_small_alloc_slow(rsb_arena *a, rsb_cache *c, unsigned cls); /* lock held; releases it */
void *rsb_big_alloc(rsb_arena *a, size_t size, size_t align, bool *zero);
void rsb_free_slow(rsb_arena *a, void *p); /* finishes the free or aborts */
/* Free of page run p, whose head page in chunk ch holds a LARGE descriptor. */
void rsb_large_free(rsb_arena *a, rsb_chunk *ch, void *p);
void rsb_local_free_slow(rsb_arena *a, rsb_cache *c, rsb_span *s); /* lock held; releases it */
void rsb_remote_free(rsb_arena *a, rsb_span *s, void **b);
void rsb_local_free_contended(rsb_arena *a, rsb_cache *c, rsb_span *s, void **b);

/* ---- the hot path ------------------------------------------------------- */

/* malloc of a small class: hash, lock, pop, unlock.  The second word of a
 * free block holds the double-free marker; clear it on the way out. */
RSB_INLINE void *rsb_small_alloc(rsb_arena *a, unsigned cls) {
    rsb_cache *c = rsb_cache_of_thread(a);
    rsb_lock_acquire(&c->lock);
    rsb_span *s = c->bins[cls].cur;
    void **b = rsb_slab_pop(a, s);
    if (unlikely(b == NULL)) return rsb_small_alloc_slow(a, c, cls);
    s->u.s.used++;
    rsb_lock_release(&c->lock);
    b[1] = NULL;
    return b;
}

RSB_INLINE void *rsb_core_malloc(rsb_arena *a, size_t size) {
    if (likely(size <= RSB_SMALL_MAX)) return rsb_small_alloc(a, rsb_size_class(size));
    bool zero;
    return rsb_big_alloc(a, size, 0, &zero);
}

/* free, first half: find the span from the address and check that p is the
 * start of a block that is not already free; write the double-free marker.
 * Returns NULL when p took the slow path (which has finished the free). */
RSB_INLINE rsb_span *rsb_free_begin(rsb_arena *a, void *p) {
    rsb_chunk *ch = rsb_pages_chunk_of(a, p);
    if (unlikely(!ch)) goto slow;
    rsb_span *s = rsb_span_guess(ch, p);
    uintptr_t off = (uintptr_t)p - (uintptr_t)rsb_span_start(s);
    if (unlikely(s->kind != RSB_SPAN_SLAB || off >= ((uintptr_t)s->npages << RSB_PAGE_SHIFT))) {
        /* A page run: p names its head page, so s is its live descriptor. */
        if (s->kind == RSB_SPAN_LARGE && off == 0) {
            rsb_large_free(a, ch, p);
            return NULL;
        }
        goto slow;
    }
    if (unlikely(!rsb_class_divides(s->cls, off))) goto slow;
    uintptr_t mark = a->key ^ (uintptr_t)p;
    if (unlikely((uintptr_t)((void **)p)[1] == mark)) goto slow;
    ((void **)p)[1] = (void *)mark;
    return s;
slow:
    rsb_free_slow(a, p);
    return NULL;
}

/* free, second half: back to the owner cache c (the thread's own cache) or,
 * if another cache owns the slab, onto that cache's remote stack. */
RSB_INLINE void rsb_free_to_cache(rsb_arena *a, rsb_cache *c, rsb_span *s, void **b) {
    if (unlikely(c->index != rsb_span_owner(s))) { rsb_remote_free(a, s, b); return; }
    if (unlikely(!rsb_lock_try(&c->lock))) { rsb_local_free_contended(a, c, s, b); return; }
    rsb_slab_push(a, s, b);
    uint32_t used = --s->u.s.used;
    if (unlikely(!(s->flags & RSB_SF_IN_BIN) || (used == 0 && c->bins[s->cls].cur != s))) {
        rsb_local_free_slow(a, c, s);
        return;
    }
    rsb_lock_release(&c->lock);
}

RSB_INLINE void rsb_core_free(rsb_arena *a, void *p) {
    rsb_span *s = rsb_free_begin(a, p);
    if (likely(s != NULL)) rsb_free_to_cache(a, rsb_cache_of_thread(a), s, (void **)p);
}

#endif
