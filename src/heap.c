/*
 * The freestanding heap API (include/rsbmalloc_heap.h): the rsbmalloc core
 * (page allocator, size classes, bins) over a caller-supplied region.
 *
 * Layout of a region (addresses grow to the right):
 *
 *   | pad | rsb_heap (allocator + 1 cache) | rsb_chunk header | descriptors[n] | pad | n pages |
 *         ^ 64-byte aligned                                                     ^ page aligned
 *
 * Each heap is an allocator with a single cache; the core's locks compile to
 * nothing (spinlock.h) and the whole heap is serialised by the caller's lock
 * hook, if any.
 *
 * This layer adds what a fixed region needs and the hosted malloc does not:
 *   - pointer checks that report through a hook that may return, instead of
 *     the core's abort: every pointer is validated here before the core sees
 *     it (the inline free path repeats the core's three checks, then calls
 *     the core's rsb_cache_free);
 *   - behaviour at exhaustion: the empty slab each class keeps in reserve is
 *     handed back, then a larger class or a page run serves the request, so
 *     that a full heap fails only when nothing fits;
 *   - byte accounting (in use, peak) for the statistics.
 *
 * Invariants (checked by rsb_heap_check):
 *   - h->in_use == sum over SLAB spans of used * block + bytes of page runs;
 *   - every descriptor's head field names a page of the region (descriptors
 *     are zeroed at init), so a lookup never leaves the descriptor array.
 */
#include "rsbmalloc_heap.h"

#include "alloc.h"

_Static_assert(RSB_FREESTANDING, "src/heap.c is built only into librsbmalloc_heap.a (RSB_FREESTANDING=1)");

struct rsb_heap {
    rsb_allocator alloc;         /* its locks compile to nothing (spinlock.h) */
    rsb_cache cache;
    rsb_heap_lock_fn lock, unlock;
    void *lock_ctx;
    rsb_heap_error_fn on_error;
    void *error_ctx;
    size_t in_use, peak;
    uint64_t allocs, frees, failures;
    size_t region_len;
    int spin;                    /* the built-in spinlock's word */
};

/* --- locking and errors ---------------------------------------------------- */

RSB_INLINE void heap_lock(rsb_heap *h) {
    if (h->lock) h->lock(h->lock_ctx);
}

RSB_INLINE void heap_unlock(rsb_heap *h) {
    if (h->unlock) h->unlock(h->lock_ctx);
}

/* Called with the lock released, so that the hook may use the heap. */
static RSB_COLD void report(rsb_heap *h, int err, const void *p) {
    if (h->on_error) {
        h->on_error(h, (rsb_heap_error)err, p, h->error_ctx);
        return;
    }
    __builtin_trap();
}

const char *rsb_heap_error_name(rsb_heap_error err) {
    switch (err) {
    case RSB_HEAP_FOREIGN_POINTER: return "pointer not from this heap";
    case RSB_HEAP_INVALID_POINTER: return "pointer not at the start of a block";
    case RSB_HEAP_DOUBLE_FREE: return "double free";
    }
    return "unknown heap error";
}

void rsb_heap_set_error_hook(rsb_heap *h, rsb_heap_error_fn fn, void *ctx) {
    h->on_error = fn;
    h->error_ctx = ctx;
}

void rsb_heap_set_lock(rsb_heap *h, rsb_heap_lock_fn lock, rsb_heap_lock_fn unlock, void *ctx) {
    h->lock = lock;
    h->unlock = unlock;
    h->lock_ctx = ctx;
}

#if defined(__GCC_ATOMIC_INT_LOCK_FREE) && __GCC_ATOMIC_INT_LOCK_FREE == 2
static void spin_lock(void *ctx) {
    int *l = (int *)ctx;
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) rsb_cpu_relax();
}

static void spin_unlock(void *ctx) { __atomic_store_n((int *)ctx, 0, __ATOMIC_RELEASE); }

int rsb_heap_use_spinlock(rsb_heap *h) {
    h->spin = 0;
    rsb_heap_set_lock(h, spin_lock, spin_unlock, &h->spin);
    return 0;
}
#else
int rsb_heap_use_spinlock(rsb_heap *h) {
    (void)h;
    return -1;
}
#endif

/* --- init ------------------------------------------------------------------- */

rsb_heap *rsb_heap_init(void *mem, size_t len) {
    uintptr_t lo = (uintptr_t)mem, hi, hp, meta, base;
    if (!mem || __builtin_add_overflow(lo, len, &hi)) return NULL;
    hp = (lo + RSB_CACHELINE - 1) & ~(uintptr_t)(RSB_CACHELINE - 1);
    meta = hp + sizeof(rsb_heap) + sizeof(rsb_chunk);
    if (hp < lo || meta < hp || meta > hi) return NULL;
    /* The most pages whose descriptors and page-aligned pages both fit. */
    size_t n = (hi - meta) / (RSB_PAGE_SIZE + sizeof(rsb_span));
    if (n > RSB_MAX_REGION_PAGES) n = RSB_MAX_REGION_PAGES;
    for (;; n--) {
        if (n == 0) return NULL;
        uintptr_t end = meta + n * sizeof(rsb_span);
        base = (end + RSB_PAGE_SIZE - 1) & ~(uintptr_t)(RSB_PAGE_SIZE - 1);
        if (base >= end && base <= hi && (hi - base) >> RSB_PAGE_SHIFT >= n) break;
    }

    rsb_heap *h = (rsb_heap *)hp;
    rsb_chunk *c = (rsb_chunk *)(h + 1);
    /* Zeroed descriptors: every head field names page 0 until written. */
    rsb_memset(h, 0, sizeof(rsb_heap) + sizeof(rsb_chunk) + n * sizeof(rsb_span));
    rsb_allocator *a = &h->alloc;
    rsb_pages_init(&a->pages, -1); /* no OS to purge to */
    /* The double-free marker only has to be unlikely to appear in user data
     * by accident; there is no entropy source here (os/region.c). */
    a->key = (rsb_os_random() ^ (uint64_t)hp ^ ((uint64_t)len << 17)) | 1;
    a->link_key = rsb_os_random() | 1;
    rsb_caches_init(a, &h->cache, 1);
    rsb_pages_add_region(&a->pages, c, (char *)base, (uint32_t)n);
    a->ready = 1;
    a->fast = 1;
    h->region_len = len;
    return h;
}

/* --- allocation --------------------------------------------------------------- */

RSB_INLINE void *account(rsb_heap *h, void *p, size_t bytes) {
    h->allocs++;
    if ((h->in_use += bytes) > h->peak) h->peak = h->in_use;
    return p;
}

static inline size_t page_round(size_t size) {
    return (size + RSB_PAGE_SIZE - 1) & ~(size_t)(RSB_PAGE_SIZE - 1);
}

static size_t capacity(const rsb_heap *h) { return (size_t)h->alloc.pages.region->npages << RSB_PAGE_SHIFT; }

/* A run of pages (page aligned).  `trimmed`: the empty slabs were just
 * handed back, no use trying again. */
static RSB_NOINLINE void *alloc_pages(rsb_heap *h, size_t size, bool trimmed) {
    rsb_allocator *a = &h->alloc;
    bool zero;
    if (size > capacity(h)) goto fail;
    if (size == 0) size = 1; /* a page, not an empty run */
    void *p = rsb_big_alloc(a, size, RSB_PAGE_SIZE, &zero);
    if (!p && !trimmed) { /* the empty slabs kept by the classes may be what is missing */
        rsb_core_trim(a);
        p = rsb_big_alloc(a, size, RSB_PAGE_SIZE, &zero);
    }
    if (p) return account(h, p, page_round(size));
fail:
    h->failures++;
    return NULL;
}

/* Class cls has no block and no page for a new slab: hand back the empty
 * slabs other classes keep, then take a block of a larger class (whose size
 * is a multiple of align) that has one, then a page run.  O(classes). */
static RSB_NOINLINE void *alloc_small_slow(rsb_heap *h, unsigned cls, size_t align) {
    rsb_allocator *a = &h->alloc;
    rsb_core_trim(a);
    void *p = rsb_small_alloc(a, cls);
    if (p) return account(h, p, rsb_class_size[cls]);
    for (unsigned k = cls + 1; k < RSB_NUM_CLASSES; k++) {
        const rsb_bin *bin = &h->cache.bins[k];
        const rsb_span *s = bin->cur;
        if (rsb_class_size[k] & (align - 1)) continue;
        if (rsb_slab_exhausted(s) && !bin->partial) continue;
        p = rsb_small_alloc(a, k);
        if (p) return account(h, p, rsb_class_size[k]);
    }
    return alloc_pages(h, rsb_class_size[cls], true);
}

/* Lock held. */
RSB_INLINE void *heap_alloc(rsb_heap *h, size_t size) {
    if (likely(size <= RSB_SMALL_MAX)) {
        unsigned cls = rsb_size_class(size);
        void *p = rsb_small_alloc(&h->alloc, cls);
        if (likely(p != NULL)) return account(h, p, rsb_class_size[cls]);
        return alloc_small_slow(h, cls, RSB_ALIGN);
    }
    return alloc_pages(h, size, false);
}

void *rsb_heap_alloc(rsb_heap *h, size_t size) {
    heap_lock(h);
    void *p = heap_alloc(h, size);
    heap_unlock(h);
    return p;
}

/* Alignment above a page: take a run long enough to hold an aligned run,
 * give back the pages before and after it. */
static void *alloc_pages_aligned(rsb_heap *h, size_t align, size_t size) {
    rsb_allocator *a = &h->alloc;
    rsb_pages *pg = &a->pages;
    size_t need = page_round(size ? size : 1);
    if (need < size || need > capacity(h) || align - RSB_PAGE_SIZE > capacity(h) - need) goto fail;
    uint32_t n = (uint32_t)(need >> RSB_PAGE_SHIFT);
    uint32_t extra = (uint32_t)((align - RSB_PAGE_SIZE) >> RSB_PAGE_SHIFT);
    bool zero;
    char *p = rsb_big_alloc(a, need + (align - RSB_PAGE_SIZE), RSB_PAGE_SIZE, &zero);
    if (!p) {
        rsb_core_trim(a);
        p = rsb_big_alloc(a, need + (align - RSB_PAGE_SIZE), RSB_PAGE_SIZE, &zero);
    }
    if (!p) goto fail;
    rsb_span *s = rsb_span_of(pg->region, p);
    uint32_t front = (uint32_t)((((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1)) - (uintptr_t)p) >>
                     RSB_PAGE_SHIFT;
    if (front) {
        rsb_span *t = rsb_pages_split(pg, s, front);
        rsb_pages_free(pg, s);
        s = t;
    }
    if (extra - front) rsb_pages_free(pg, rsb_pages_split(pg, s, n));
    return account(h, rsb_span_start(s), need);
fail:
    h->failures++;
    return NULL;
}

void *rsb_heap_alloc_aligned(rsb_heap *h, size_t align, size_t size) {
    if (!rsb_is_pow2(align)) {
        heap_lock(h);
        h->failures++;
        heap_unlock(h);
        return NULL;
    }
    if (align <= RSB_ALIGN) return rsb_heap_alloc(h, size);
    void *p;
    heap_lock(h);
    size_t want = size > align ? size : align;
    if (want <= RSB_SMALL_MAX && align <= RSB_PAGE_SIZE) {
        /* Slabs start on a page boundary: every block of a class whose size
         * is a multiple of align is aligned. */
        unsigned cls = rsb_size_class_aligned(want, align);
        if (cls < RSB_NUM_CLASSES) {
            p = rsb_small_alloc(&h->alloc, cls);
            p = p ? account(h, p, rsb_class_size[cls]) : alloc_small_slow(h, cls, align);
            goto out;
        }
    }
    p = align <= RSB_PAGE_SIZE ? alloc_pages(h, size, false) : alloc_pages_aligned(h, align, size);
out:
    heap_unlock(h);
    return p;
}

/* --- free ----------------------------------------------------------------------- */

/* The span of the live block that starts at p, or NULL with *err set: the
 * core's classification, plus the check that the block was ever carved.
 * Lock held.  Never reads outside the region's metadata and p's block. */
static rsb_span *live_block(rsb_heap *h, const void *p, int *err) {
    rsb_ptr_info info;
    switch (rsb_classify(&h->alloc, p, &info)) {
    case RSB_PTR_SMALL: {
        rsb_span *s = info.span;
        uintptr_t off = (uintptr_t)p - (uintptr_t)rsb_span_start(s);
        if (rsb_class_index(s->cls, off) < s->u.s.bump) return s;
        *err = RSB_HEAP_INVALID_POINTER; /* never handed out */
        return NULL;
    }
    case RSB_PTR_RUN:
        return info.span;
    case RSB_PTR_FREED:
        *err = RSB_HEAP_DOUBLE_FREE;
        return NULL;
    case RSB_PTR_FOREIGN:
        *err = RSB_HEAP_FOREIGN_POINTER;
        return NULL;
    default: /* a page start in free pages: most likely a page run freed before */
        *err = (!info.span || info.span->kind == RSB_SPAN_FREE) && ((uintptr_t)p & (RSB_PAGE_SIZE - 1)) == 0 ? RSB_HEAP_DOUBLE_FREE
                   : RSB_HEAP_INVALID_POINTER;
        return NULL;
    }
}

/* Free live block p of span s.  Lock held. */
static void free_block(rsb_heap *h, rsb_span *s, void *p) {
    rsb_allocator *a = &h->alloc;
    h->frees++;
    if (s->kind == RSB_SPAN_SLAB) {
        ((void **)p)[1] = (void *)rsb_free_mark(a, p);
        h->in_use -= rsb_slab_block(s);
        rsb_cache_free(a, &h->cache, s, (void **)p);
    } else {
        h->in_use -= (size_t)s->npages << RSB_PAGE_SHIFT;
        rsb_pages_free(&a->pages, s);
    }
}

static RSB_NOINLINE void free_slow(rsb_heap *h, void *p) {
    int err = 0;
    rsb_span *s = live_block(h, p, &err);
    if (s) free_block(h, s, p);
    heap_unlock(h);
    if (!s) report(h, err, p);
}

void rsb_heap_free(rsb_heap *h, void *p) {
    if (unlikely(p == NULL)) return;
    heap_lock(h);
    /* The inline path: a slab block (rsb_free_begin's checks, plus the
     * block must have been carved). */
    rsb_allocator *a = &h->alloc;
    rsb_chunk *c = a->pages.region;
    uintptr_t off = (uintptr_t)p - (uintptr_t)c->base;
    if (likely(off < ((uintptr_t)c->npages << RSB_PAGE_SHIFT))) {
        rsb_span *pages = rsb_chunk_pages(c);
        uint32_t head = pages[off >> RSB_PAGE_SHIFT].head;
        rsb_span *s = &pages[head];
        uintptr_t so = off - ((uintptr_t)head << RSB_PAGE_SHIFT);
        uintptr_t mark = rsb_free_mark(a, p);
        if (likely(s->kind == RSB_SPAN_SLAB && so < ((uintptr_t)s->npages << RSB_PAGE_SHIFT))) {
            uintptr_t q = rsb_class_index(s->cls, so);
            if (likely(q * rsb_slab_block(s) == so && q < s->u.s.bump &&
                       (uintptr_t)((void **)p)[1] != mark)) {
                ((void **)p)[1] = (void *)mark;
                h->in_use -= rsb_slab_block(s);
                h->frees++;
                rsb_cache_free(a, &h->cache, s, (void **)p);
                heap_unlock(h);
                return;
            }
        }
    }
    free_slow(h, p);
}

/* --- realloc, usable size ----------------------------------------------------------- */

void *rsb_heap_realloc(rsb_heap *h, void *p, size_t size) {
    if (!p) return rsb_heap_alloc(h, size);
    if (size == 0) {
        rsb_heap_free(h, p);
        return NULL;
    }
    heap_lock(h);
    int err = 0;
    rsb_span *s = live_block(h, p, &err);
    if (!s) {
        heap_unlock(h);
        report(h, err, p);
        return NULL;
    }
    size_t old;
    void *q = p;
    if (s->kind == RSB_SPAN_SLAB) {
        old = rsb_slab_block(s);
        if (size <= old && (size > old / 2 || old <= 32)) goto out;
    } else {
        uint32_t had = s->npages;
        old = (size_t)had << RSB_PAGE_SHIFT;
        if (size <= old && size > RSB_SMALL_MAX) { /* shrink in place: free the tail pages */
            uint32_t n = (uint32_t)(page_round(size) >> RSB_PAGE_SHIFT);
            if (n < had) {
                rsb_pages_free(&h->alloc.pages, rsb_pages_split(&h->alloc.pages, s, n));
                h->in_use -= (size_t)(had - n) << RSB_PAGE_SHIFT;
            }
            goto out;
        }
        if (size <= old && size > old / 2) goto out;
        if (size > old && size <= capacity(h)) {
            uint32_t n = (uint32_t)(page_round(size) >> RSB_PAGE_SHIFT);
            if (rsb_pages_grow(&h->alloc.pages, s, n)) {
                account(h, p, (size_t)(n - had) << RSB_PAGE_SHIFT);
                h->allocs--; /* not a new block */
                goto out;
            }
        }
    }
    q = heap_alloc(h, size);
    if (q) {
        rsb_memcpy(q, p, old < size ? old : size);
        free_block(h, s, p);
    } else if (size <= old) {
        q = p; /* could not move to a smaller block: keep the bigger one */
    }
out:
    heap_unlock(h);
    return q;
}

size_t rsb_heap_usable_size(rsb_heap *h, const void *p) {
    if (!p) return 0;
    heap_lock(h);
    int err = 0;
    rsb_span *s = live_block(h, p, &err);
    size_t n = !s ? 0 : s->kind == RSB_SPAN_SLAB ? rsb_slab_block(s) : (size_t)s->npages << RSB_PAGE_SHIFT;
    heap_unlock(h);
    if (!s) report(h, err, p);
    return n;
}

/* --- statistics and checks --------------------------------------------------------- */

void rsb_heap_stats(rsb_heap *h, rsb_heap_stats_t *out) {
    heap_lock(h);
    rsb_allocator *a = &h->alloc;
    rsb_core_trim(a);
    size_t largest = 0, free_bytes = 0;
    for (unsigned b = 0; b < RSB_BUCKETS; b++)
        for (rsb_span *s = a->pages.buckets[b]; s; s = rsb_span_next(s)) {
            size_t bytes = (size_t)s->npages << RSB_PAGE_SHIFT;
            free_bytes += bytes;
            if (bytes > largest) largest = bytes;
        }
    out->capacity = capacity(h);
    out->in_use = h->in_use;
    out->peak = h->peak;
    out->largest_free = largest;
    out->free_pages = free_bytes;
    out->overhead = h->region_len - capacity(h);
    out->small_max = RSB_SMALL_MAX;
    out->page_size = (uint32_t)RSB_PAGE_SIZE;
    out->classes = RSB_NUM_CLASSES;
    out->allocs = h->allocs;
    out->frees = h->frees;
    out->failures = h->failures;
    heap_unlock(h);
}

int rsb_heap_check(rsb_heap *h) {
    heap_lock(h);
    rsb_allocator *a = &h->alloc;
    rsb_pages_check(&a->pages);
    rsb_cache_check(a, &h->cache);
    rsb_chunk *c = a->pages.region;
    const rsb_span *pages = rsb_chunk_pages(c);
    size_t used = 0;
    for (uint32_t i = 0; i < c->npages; i += pages[i].npages) {
        const rsb_span *s = &pages[i];
        RSB_CHECK(s->npages != 0, "span chain broken");
        if (s->kind == RSB_SPAN_SLAB) used += (size_t)s->u.s.used * rsb_slab_block(s);
        if (s->kind == RSB_SPAN_RUN) used += (size_t)s->npages << RSB_PAGE_SHIFT;
    }
    RSB_CHECK(used == h->in_use, "in_use does not match the spans");
    heap_unlock(h);
    return 0;
}
