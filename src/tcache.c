/*
 * Thread caches: slow paths of malloc and free, remote frees, and the core
 * entry points that are not on the hot path (calloc, memalign, realloc,
 * usable size, trim).  The hot paths themselves are inline in tcache.h.
 *
 * Lock order: a cache lock is never held while the arena lock is taken, and
 * no system call is made under a cache lock.
 */
#include "tcache.h"

#include "os.h"

/* The bin cursor of every empty bin: no free block, nothing to carve. */
rsb_span rsb_empty_span;

void rsb_caches_init(rsb_arena *a, rsb_cache *caches, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        caches[i].index = i;
        for (unsigned c = 0; c < RSB_NUM_CLASSES; c++) caches[i].bins[c].cur = &rsb_empty_span;
    }
    a->caches = caches;
    a->ncaches = n;
}

/* --- bin lists ------------------------------------------------------------ */

static void partial_push(rsb_bin *bin, rsb_span *s) { rsb_span_list_push(&bin->partial, s); }

static void partial_remove(rsb_bin *bin, rsb_span *s) { rsb_span_list_remove(&bin->partial, s); }

/* A slab just got a block back (pushed, used decremented).  Owner lock held.
 * A full slab returns to its bin; a slab other than the bin's cursor that
 * became empty leaves the bin, and true is returned: the caller gives it to
 * the page allocator after dropping the lock. */
static bool slab_settle(rsb_cache *c, rsb_span *s) {
    rsb_bin *bin = &c->bins[s->cls];
    if (!(s->flags & RSB_SF_IN_BIN)) { /* was full: make it available again */
        s->flags |= RSB_SF_IN_BIN;
        partial_push(bin, s);
    }
    if (s->u.s.used == 0 && bin->cur != s) {
        partial_remove(bin, s);
        s->flags &= (uint8_t)~RSB_SF_IN_BIN;
        return true;
    }
    return false;
}

/* Put block b back on slab s.  Owner lock held.  True: see slab_settle. */
static bool slab_put(rsb_arena *a, rsb_cache *c, rsb_span *s, void **b) {
    rsb_slab_push(a, s, b);
    s->u.s.used--;
    if (likely((s->flags & RSB_SF_IN_BIN) && s->u.s.used != 0)) return false;
    return slab_settle(c, s);
}

static void release_spans(rsb_arena *a, rsb_span *list) {
    if (!list) return;
    rsb_lock_acquire(&a->lock);
    while (list) {
        rsb_span *next = rsb_span_next(list);
        rsb_pages_free(a, list);
        list = next;
    }
    rsb_lock_release(&a->lock);
}

/* Move every block other threads freed to this cache back to its slab.
 * Owner lock held.  Slabs that became empty are returned, linked by next. */
static rsb_span *drain_remote(rsb_arena *a, rsb_cache *c) {
    void **b = __atomic_exchange_n((void ***)&c->remote, NULL, __ATOMIC_ACQUIRE);
    rsb_span *empty = NULL;
    while (b) {
        void **next = (void **)b[0];
        rsb_span *s = rsb_span_of((rsb_chunk *)rsb_header_of(a, b), b);
        if (slab_put(a, c, s, b)) {
            rsb_span_set_next(s, empty);
            empty = s;
        }
        b = next;
    }
    return empty;
}

void rsb_remote_free(rsb_arena *a, rsb_span *s, void **b) {
    rsb_cache *owner = &a->caches[rsb_span_owner(s)];
    void *head = __atomic_load_n(&owner->remote, __ATOMIC_RELAXED);
    do {
        b[0] = head;
    } while (!__atomic_compare_exchange_n(&owner->remote, &head, b, true, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
}

/* The owner cache's lock was busy: wait for it, then free as usual. */
void rsb_local_free_contended(rsb_arena *a, rsb_cache *c, rsb_span *s, void **b) {
    rsb_lock_slow(&c->lock);
    bool release = slab_put(a, c, s, b);
    rsb_lock_release(&c->lock);
    if (release) release_spans(a, (rsb_span_set_next(s, NULL), s));
}

void rsb_local_free_slow(rsb_arena *a, rsb_cache *c, rsb_span *s) {
    /* The hot path already pushed the block and decremented used. */
    bool release = slab_settle(c, s);
    rsb_lock_release(&c->lock);
    if (release) release_spans(a, (rsb_span_set_next(s, NULL), s));
}

/* Hand out up to one OS page worth of never-used blocks: only touched memory
 * becomes resident, and a fresh slab costs no more than it is used. */
static void carve(rsb_arena *a, rsb_span *s) {
    uint32_t block = rsb_slab_block(s);
    uint32_t n = rsb_slab_capacity(s) - s->u.s.bump;
    uint32_t batch = block >= RSB_CARVE_BYTES ? 1 : RSB_CARVE_BYTES / block;
    if (n > batch) n = batch;
    char *p = rsb_span_start(s) + (size_t)s->u.s.bump * block;
    for (uint32_t i = 0; i + 1 < n; i++)
        rsb_link_set(a, (void **)(p + (size_t)i * block), p + (size_t)(i + 1) * block);
    rsb_link_set(a, (void **)(p + (size_t)(n - 1) * block), rsb_slab_free_list(s));
    rsb_slab_set_free_list(s, p);
    s->u.s.bump += n;
}

static rsb_span *slab_new(rsb_arena *a, rsb_cache *c, unsigned cls) {
    bool zero;
    rsb_lock_acquire(&a->lock);
    rsb_span *s = rsb_pages_alloc(a, rsb_class_pages[cls], RSB_SPAN_SLAB, &zero);
    rsb_lock_release(&a->lock);
    if (!s) return NULL;
    s->cls = (uint8_t)cls;
#if RSB_FREESTANDING
    (void)c; /* the heap's only cache */
#else
    s->owner = (uint16_t)c->index;
#endif
    s->flags = RSB_SF_IN_BIN;
    rsb_slab_set_free_list(s, NULL);
    s->u.s.used = 0;
    s->u.s.bump = 0;
#if !RSB_FREESTANDING
    s->u.s.block = rsb_class_size[cls];
    s->u.s.capacity = rsb_class_blocks[cls];
#endif
    return s;
}

void *rsb_small_alloc_slow(rsb_arena *a, rsb_cache *c, unsigned cls) {
    rsb_bin *bin = &c->bins[cls];
    rsb_span *release = NULL;
    bool drained = false;
    rsb_span *s;
    for (;;) {
        s = bin->cur;
        if (rsb_slab_free_list(s)) break;
        if (s->u.s.bump < rsb_slab_capacity(s)) {
            carve(a, s);
            break;
        }
        if (!drained && __atomic_load_n(&c->remote, __ATOMIC_RELAXED)) {
            drained = true;
            rsb_span *e = drain_remote(a, c);
            while (e) { /* keep one emptied slab of this class, release the rest */
                rsb_span *next = rsb_span_next(e);
                if (e->cls == cls && !bin->partial) {
                    e->flags |= RSB_SF_IN_BIN;
                    partial_push(bin, e);
                } else {
                    rsb_span_set_next(e, release);
                    release = e;
                }
                e = next;
            }
            continue;
        }
        if (bin->partial) { /* cur is full: it leaves the bin */
            rsb_span *n = bin->partial;
            partial_remove(bin, n);
            if (s != &rsb_empty_span) s->flags &= (uint8_t)~RSB_SF_IN_BIN;
            bin->cur = n;
            continue;
        }
        /* A new slab, taken without holding the cache lock. */
        rsb_lock_release(&c->lock);
        release_spans(a, release);
        release = NULL;
        rsb_span *n = slab_new(a, c, cls);
        rsb_lock_acquire(&c->lock);
        if (!n) {
            rsb_lock_release(&c->lock);
            return NULL;
        }
        s = bin->cur;
        if (rsb_slab_exhausted(s)) {
            if (s != &rsb_empty_span) s->flags &= (uint8_t)~RSB_SF_IN_BIN;
            bin->cur = n;
        } else {
            partial_push(bin, n);
        }
    }
    void **b = rsb_slab_pop(a, s);
    s->u.s.used++;
    c->nmalloc++;
    rsb_lock_release(&c->lock);
    release_spans(a, release);
    b[1] = NULL;
    return b;
}

void *rsb_small_take_batch(rsb_arena *a, rsb_cache *c, unsigned cls, unsigned n, unsigned *got) {
    rsb_lock_acquire(&c->lock);
    rsb_span *s = c->bins[cls].cur;
    void *list = NULL;
    unsigned k = 0;
    while (k < n) {
        void **b = rsb_slab_pop(a, s);
        if (!b) { /* uncarved space: link the blocks straight into the batch */
            uint32_t m = rsb_slab_capacity(s) - s->u.s.bump;
            if (m == 0) break;
            if (m > n - k) m = n - k;
            char *p = rsb_span_start(s) + (size_t)s->u.s.bump * rsb_slab_block(s);
            for (uint32_t i = m; i-- > 0;) { /* lowest address first */
                void **x = (void **)(p + (size_t)i * rsb_slab_block(s));
                rsb_mag_link_set(a, x, list);
                list = x;
            }
            s->u.s.bump += m;
            s->u.s.used += m;
            k += m;
            break; /* the free list is empty and n is reached or the slab full */
        }
        s->u.s.used++;
        rsb_mag_link_set(a, b, list);
        list = b;
        k++;
    }
    if (k == 0) { /* the bin needs its slow path: let it find one block */
        void **b = (void **)rsb_small_alloc_slow(a, c, cls);
        if (!b) return NULL;
        rsb_mag_link_set(a, b, NULL);
        *got = 1;
        return b;
    }
    c->nmalloc += k;
    rsb_lock_release(&c->lock);
    *got = k;
    return list;
}

void rsb_small_put_batch(rsb_arena *a, rsb_cache *c, void *list, unsigned cls) {
    rsb_span *release = NULL;
    rsb_lock_acquire(&c->lock);
    for (void **b = (void **)list; b;) {
        void **next = (void **)rsb_mag_link_get(a, b, cls);
        rsb_span *s = rsb_span_guess((rsb_chunk *)rsb_header_of(a, b), b);
        if (slab_put(a, c, s, b)) {
            rsb_span_set_next(s, release);
            release = s;
        }
        b = next;
    }
    rsb_lock_release(&c->lock);
    release_spans(a, release);
}

/* --- page runs and huge blocks ------------------------------------------- */

static void *large_alloc(rsb_arena *a, size_t size, bool *zero) {
    uint32_t n = (uint32_t)((size + RSB_PAGE_SIZE - 1) >> RSB_PAGE_SHIFT);
    rsb_lock_acquire(&a->lock);
#if RSB_FREESTANDING
    rsb_span *s = rsb_pages_alloc(a, n, RSB_SPAN_LARGE, zero);
#else
    rsb_span *s = rsb_large_cache_take(a, n);
    if (s)
        *zero = false;
    else
        s = rsb_pages_alloc(a, n, RSB_SPAN_LARGE, zero);
#endif
    rsb_lock_release(&a->lock);
    return s ? rsb_span_start(s) : NULL;
}

void *rsb_big_alloc(rsb_arena *a, size_t size, size_t align, bool *zero) {
#if RSB_FREESTANDING
    if (align > RSB_PAGE_SIZE || size > ((size_t)a->region->npages << RSB_PAGE_SHIFT)) return NULL;
    return large_alloc(a, size, zero);
#else
    if (size <= RSB_MEDIUM_MAX && align <= RSB_PAGE_SIZE) return large_alloc(a, size, zero);
    return rsb_huge_alloc(a, size, align, zero);
#endif
}

static void large_free(rsb_arena *a, rsb_span *s) {
#if RSB_FREESTANDING
    rsb_lock_acquire(&a->lock);
    rsb_pages_free(a, s);
    rsb_lock_release(&a->lock);
#else
    if (unlikely(a->junk)) rsb_memset(rsb_span_start(s), RSB_JUNK_FREE, (size_t)s->npages << RSB_PAGE_SHIFT);
    rsb_lock_acquire(&a->lock);
    bool twice = s->flags & RSB_SF_CACHED;
    if (!twice) rsb_large_cache_put(a, s);
    rsb_lock_release(&a->lock);
    if (twice) rsb_fatal_pointer("double free", rsb_span_start(s));
#endif
}

/* Called from the inline free with p rather than its descriptor, which is
 * looked up again here: passing the descriptor costs the malloc(32)+free
 * fast path two more instructions (callgrind) for a call it never makes. */
void rsb_large_free(rsb_arena *a, rsb_chunk *ch, void *p) { large_free(a, rsb_span_guess(ch, p)); }

/* Everything the inline free does not finish: NULL, foreign pointers, huge
 * and large blocks, and slab frees that fail a check (diagnosed here with
 * the fully validated lookup). */
void rsb_free_slow(rsb_arena *a, void *p) {
    if (!p) return;
    void *hdr = rsb_header_of(a, p);
    if (!hdr) rsb_fatal_pointer("free of a pointer it never returned", p);
#if !RSB_FREESTANDING
    rsb_huge *h = (rsb_huge *)hdr;
    if (h->kind == RSB_CHUNK_HUGE_KIND) {
        if ((char *)p != (char *)h + h->offset) rsb_fatal_pointer("free of a pointer inside a block, not its start", p);
        rsb_huge_free(a, h);
        return;
    }
    if (h->kind == RSB_CHUNK_HUGE_CACHED) rsb_fatal_pointer("double free", p);
#endif
    rsb_span *s = rsb_span_of((rsb_chunk *)hdr, p);
    if (s && s->kind == RSB_SPAN_SLAB) {
        void **b = (void **)p;
        uintptr_t mark = a->key ^ (uintptr_t)p;
        if (((uintptr_t)p - (uintptr_t)rsb_span_start(s)) % rsb_slab_block(s))
            rsb_fatal_pointer("free of a pointer inside a block, not its start", p);
        if ((uintptr_t)b[1] == mark) rsb_fatal_pointer("double free", p);
        b[1] = (void *)mark;
        rsb_cache *c = rsb_cache_of_thread(a);
        if (c->index != rsb_span_owner(s)) {
            rsb_remote_free(a, s, b);
            return;
        }
        rsb_lock_acquire(&c->lock);
        bool release = slab_put(a, c, s, b);
        rsb_lock_release(&c->lock);
        if (release) release_spans(a, (rsb_span_set_next(s, NULL), s));
        return;
    }
    if (s && s->kind == RSB_SPAN_LARGE && (char *)p == rsb_span_start(s)) {
        large_free(a, s);
        return;
    }
    if (s && s->kind == RSB_SPAN_FREE && (char *)p == rsb_span_start(s))
        rsb_fatal_pointer("double free", p);
    rsb_fatal_pointer("free of a pointer it never returned", p);
}

/* --- calloc, memalign, realloc, usable size ------------------------------- */

/* Zero a big reused block: memory past the first OS page is handed back to
 * the OS (it reads as zero and is faulted in only when touched) instead of
 * being written, so a sparse calloc does not become resident. */
static void zero_big(void *p, size_t size) {
#if !RSB_FREESTANDING
    if (size >= ((size_t)1 << 20)) {
        uintptr_t lo = rsb_align_up((uintptr_t)p, rsb_os_page);
        uintptr_t hi = ((uintptr_t)p + size) & ~(uintptr_t)(rsb_os_page - 1);
        if (hi > lo && rsb_os_purge((void *)lo, hi - lo)) {
            rsb_memset(p, 0, lo - (uintptr_t)p);
            rsb_memset((void *)hi, 0, (uintptr_t)p + size - hi);
            return;
        }
    }
#endif
    rsb_memset(p, 0, size);
}

void *rsb_core_calloc(rsb_arena *a, size_t size) {
    if (likely(size <= RSB_SMALL_MAX)) {
        void *p = rsb_small_alloc(a, rsb_size_class(size));
        if (p) rsb_memset(p, 0, size);
        return p;
    }
    bool zero;
    void *p = rsb_big_alloc(a, size, 0, &zero);
    if (p && !zero) zero_big(p, size);
    return p;
}

void *rsb_core_memalign(rsb_arena *a, size_t align, size_t size) {
    if (align <= RSB_ALIGN) return rsb_core_malloc(a, size);
    if (size <= RSB_SMALL_MAX && align <= RSB_PAGE_SIZE) {
        /* Slabs start on a page; a class whose size is a multiple of align
         * has every block aligned. */
        unsigned cls = rsb_size_class(size > align ? size : align);
        while (cls < RSB_NUM_CLASSES && (rsb_class_size[cls] & (align - 1))) cls++;
        if (cls < RSB_NUM_CLASSES) return rsb_small_alloc(a, cls);
    }
    bool zero;
    return rsb_big_alloc(a, size, align, &zero);
}

/* Usable size of a live block; aborts on a pointer that is not one. */
size_t rsb_core_usable_size(rsb_arena *a, const void *p) {
    void *hdr = rsb_header_of(a, p);
    if (!hdr) rsb_fatal_pointer("usable size of a pointer it never returned", p);
#if !RSB_FREESTANDING
    rsb_huge *h = (rsb_huge *)hdr;
    if (h->kind == RSB_CHUNK_HUGE_KIND && (char *)p >= (char *)h + h->offset) return rsb_huge_usable(h) - (size_t)((const char *)p - ((char *)h + h->offset));
    if (h->kind != RSB_CHUNK_PAGES_KIND) rsb_fatal_pointer("usable size of a pointer it never returned", p);
#endif
    rsb_span *s = rsb_span_of((rsb_chunk *)hdr, p);
    if (s && s->kind == RSB_SPAN_SLAB) {
        uintptr_t off = (uintptr_t)p - (uintptr_t)rsb_span_start(s);
        return rsb_slab_block(s) - off % rsb_slab_block(s);
    }
    if (s && s->kind == RSB_SPAN_LARGE)
        return ((size_t)s->npages << RSB_PAGE_SHIFT) - (size_t)((const char *)p - rsb_span_start(s));
    rsb_fatal_pointer("usable size of a pointer it never returned", p);
}

void *rsb_core_realloc(rsb_arena *a, void *p, size_t size) {
    size_t old;
    void *hdr = rsb_header_of(a, p);
    if (!hdr) rsb_fatal_pointer("realloc of a pointer it never returned", p);
#if !RSB_FREESTANDING
    rsb_huge *h = (rsb_huge *)hdr;
    if (h->kind == RSB_CHUNK_HUGE_KIND) {
        if ((char *)p != (char *)h + h->offset) rsb_fatal_pointer("realloc of a pointer inside a block", p);
        old = rsb_huge_usable(h);
        /* Grow, or shrink while still above the small classes: resize the
         * mapping (mremap or unmapping the tail) instead of copying. */
        if (size > RSB_MEDIUM_MAX || (size <= old && size > RSB_SMALL_MAX)) {
            void *q = rsb_huge_realloc(a, h, size);
            if (q) return q;
        }
        goto move;
    }
    if (h->kind != RSB_CHUNK_PAGES_KIND) rsb_fatal_pointer("realloc of a pointer it never returned", p);
#endif
    rsb_span *s = rsb_span_of((rsb_chunk *)hdr, p);
    if (s && s->kind == RSB_SPAN_SLAB) {
        old = rsb_slab_block(s);
        if ((uintptr_t)((char *)p - rsb_span_start(s)) % old)
            rsb_fatal_pointer("realloc of a pointer inside a block", p);
        if (size <= old && (size > old / 2 || old <= 32)) return p;
        goto move;
    }
    if (s && s->kind == RSB_SPAN_LARGE && (char *)p == rsb_span_start(s)) {
        if (s->flags & RSB_SF_CACHED) rsb_fatal_pointer("realloc of a freed pointer", p);
        old = (size_t)s->npages << RSB_PAGE_SHIFT;
        if (size <= old && size > old / 2) return p;
        if (size > old && size <= RSB_MEDIUM_MAX) {
            uint32_t n = (uint32_t)((size + RSB_PAGE_SIZE - 1) >> RSB_PAGE_SHIFT);
            rsb_lock_acquire(&a->lock);
            bool grown = rsb_pages_grow(a, s, n);
            rsb_lock_release(&a->lock);
            if (grown) return p;
        }
        goto move;
    }
    rsb_fatal_pointer("realloc of a pointer it never returned", p);
move:;
    void *q = rsb_core_malloc(a, size);
    if (!q) return NULL;
    rsb_memcpy(q, p, old < size ? old : size);
    rsb_core_free(a, p);
    return q;
}

/* --- trim and whole-cache operations ------------------------------------- */

void rsb_caches_drain_all(rsb_arena *a) {
    for (uint32_t i = 0; i < a->ncaches; i++) {
        rsb_cache *c = &a->caches[i];
        if (!__atomic_load_n(&c->remote, __ATOMIC_RELAXED)) continue;
        rsb_lock_acquire(&c->lock);
        rsb_span *e = drain_remote(a, c);
        rsb_lock_release(&c->lock);
        release_spans(a, e);
    }
}

bool rsb_core_trim(rsb_arena *a) {
    rsb_caches_drain_all(a);
    /* Empty bin cursors go back too. */
    for (uint32_t i = 0; i < a->ncaches; i++) {
        rsb_cache *c = &a->caches[i];
        rsb_span *release = NULL;
        rsb_lock_acquire(&c->lock);
        for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) {
            rsb_bin *bin = &c->bins[k];
            rsb_span *s = bin->cur;
            if (s != &rsb_empty_span && s->u.s.used == 0) {
                s->flags &= (uint8_t)~RSB_SF_IN_BIN;
                rsb_span_set_next(s, release);
                release = s;
                if (bin->partial) {
                    bin->cur = bin->partial;
                    partial_remove(bin, bin->cur);
                } else {
                    bin->cur = &rsb_empty_span;
                }
            }
        }
        rsb_lock_release(&c->lock);
        release_spans(a, release);
    }
    rsb_lock_acquire(&a->lock);
    bool released = rsb_pages_purge(a, true);
    rsb_lock_release(&a->lock);
    return released;
}

/* Invariants of one cache (tests, RSB_DEBUG >= 2).  Cache lock held. */
void rsb_cache_check(rsb_arena *a, rsb_cache *c) {
    for (unsigned k = 0; k < RSB_NUM_CLASSES; k++) {
        rsb_bin *bin = &c->bins[k];
        if (!bin->cur) rsb_assert_fail("bin cur is NULL", __FILE__, __LINE__);
        for (rsb_span *s = bin->cur == &rsb_empty_span ? bin->partial : bin->cur; s;
             s = s == bin->cur ? bin->partial : rsb_span_next(s)) {
            if (s->kind != RSB_SPAN_SLAB || s->cls != k || rsb_span_owner(s) != c->index ||
                !(s->flags & RSB_SF_IN_BIN))
                rsb_assert_fail("slab in wrong bin", __FILE__, __LINE__);
            uint32_t nfree = 0;
            for (void **b = (void **)rsb_slab_free_list(s); b; b = (void **)rsb_link_get(a, s, b)) {
                uintptr_t off = (uintptr_t)b - (uintptr_t)rsb_span_start(s);
                if (off % rsb_slab_block(s) || off / rsb_slab_block(s) >= s->u.s.bump)
                    rsb_assert_fail("free block outside carved area", __FILE__, __LINE__);
                if (++nfree > rsb_slab_capacity(s)) rsb_assert_fail("free list cycle", __FILE__, __LINE__);
            }
            if (s->u.s.used + nfree != s->u.s.bump)
                rsb_assert_fail("slab block count mismatch", __FILE__, __LINE__);
        }
    }
}
