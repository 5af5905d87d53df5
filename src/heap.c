/*
 * The freestanding heap API (include/rsbmalloc_heap.h): a good-fit
 * allocator (src/fit/) plus slabs for the smallest sizes, over a
 * caller-supplied region.  State, layout and invariants: src/heap.h.
 *
 * Layout of a region (addresses grow to the right):
 *
 *   | pad | rsb_heap | sl_map, heads (fit.h) | window map | pad | pool ... | sentinel |
 *         ^ 64-byte aligned                                       ^ first header, 8 mod 16
 *
 * This layer adds what a fixed region needs: pointer checks that report
 * through a hook that may return (every pointer is validated before it is
 * trusted), the slabs and their bins, the behaviour at exhaustion (empty
 * slabs kept by the bins are handed back, then the request is tried once
 * more), and the byte accounting for the statistics.
 */
#include "heap.h"
#include "os/os.h"

_Static_assert(RSB_FREESTANDING, "src/heap.c is built only into librsbmalloc_heap.a (RSB_FREESTANDING=1)");

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
static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void spin_lock(void *ctx) {
    int *l = (int *)ctx;
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) cpu_relax();
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

/* No entropy source here (os/region.c): the keys only have to make an
 * accidental match with user data unlikely. */
static uint32_t mix32(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x ^ (uint32_t)(x >> 32);
}

rsb_heap *rsb_heap_init(void *mem, size_t len) {
    uintptr_t lo = (uintptr_t)mem, hi, hp;
    if (!mem || __builtin_add_overflow(lo, len, &hi)) return NULL;
    hp = (lo + RSB_CACHELINE - 1) & ~(uintptr_t)(RSB_CACHELINE - 1);
    if (hp < lo || hp > hi || hi - hp < sizeof(rsb_heap)) return NULL;
    uintptr_t meta = hp + sizeof(rsb_heap);
    size_t room = hi - meta;
    if (room > (size_t)RSB_FIT_MAX_POOL - 64) { /* the pool's offsets are 32 bits */
        room = (size_t)RSB_FIT_MAX_POOL - 64;
        hi = meta + room;
    }
    size_t fit_meta = rsb_fit_meta_size(room);
    /* The window: 1/256 to 1/512 of the heap, between 512 B and the largest. */
    uint32_t wshift = RSB_HEAP_MIN_WINDOW_SHIFT;
    while (wshift < RSB_HEAP_WINDOW_SHIFT && (room >> (wshift + 1)) >= 256) wshift++;
    size_t nwin = (room >> wshift) + 2;
    uintptr_t map = meta + fit_meta;
    uintptr_t first = ((map + nwin * sizeof(rsb_hwin) + 15) & ~(uintptr_t)15) + 8;
    if (first < map || first + RSB_FIT_MIN + 8 > hi) return NULL;
    size_t bytes = ((hi - first) & ~(size_t)15) - 8; /* = 8 mod 16: one block and the sentinel */
    if (bytes < RSB_FIT_MIN + 8) return NULL;

    rsb_heap *h = (rsb_heap *)hp;
    rsb_memset(h, 0, sizeof *h);
    uint64_t r = rsb_os_random() ^ (uint64_t)hp ^ ((uint64_t)len << 17);
    h->capacity = rsb_fit_init(&h->fit, (void *)meta, (char *)first, bytes, mix32(r) | 1);
    h->key = mix32(r * 0x9e3779b97f4a7c15ull + 1) | 1;
    h->lo = (char *)first + RSB_FIT_HDR;
    h->span = bytes - 8;                          /* payloads: [first + 8, sentinel + 8) */
    h->wshift = wshift;
    h->wbase = (char *)((uintptr_t)h->lo & ~(((uintptr_t)1 << wshift) - 1));
    h->map = (rsb_hwin *)map;
    rsb_memset(h->map, 0, nwin * sizeof(rsb_hwin));
    h->max_request = h->capacity;
    h->region_len = len;
    /* Classes: 16-byte steps up to 256, then four per doubling. */
    for (unsigned c = 1, z = 16; c <= RSB_HEAP_CLASSES; c++, z += z < 256 ? 16 : z < 512 ? 64 : 128) {
        rsb_hbin *bin = &h->bins[c];
        bin->cur = &h->empty;
        bin->size = (uint16_t)z;
        bin->after = (uint8_t)(z <= 256 ? RSB_HEAP_SLAB_AFTER_NARROW : RSB_HEAP_SLAB_AFTER);
        /* Blocks that fill RSB_HEAP_SLAB_WINDOWS windows with the header,
         * at least RSB_HEAP_SLAB_MIN_BLOCKS; the extent must
         * reach a full window (one slab start per window). */
        size_t win = (size_t)1 << wshift;
        size_t cap = (RSB_HEAP_SLAB_WINDOWS * win - 24) / z;
        if (cap < RSB_HEAP_SLAB_MIN_BLOCKS) cap = RSB_HEAP_SLAB_MIN_BLOCKS;
        /* A small heap (firmware) gets small slabs: an eighth of it at most. */
        while (cap > 2 && 16 + cap * z > h->capacity / 8 && 16 + (cap - 1) * z >= win) cap--;
        while (16 + cap * z < win) cap++;
        bin->cap = (uint16_t)cap;
    }
    for (uint32_t g = 1; g <= RSB_HEAP_SLAB_MAX / 16; g++) h->magic[g] = (0x80000000u + g - 1) / g; /* 32-bit: no libgcc */
    h->bins[0].cur = &h->empty;
    for (unsigned i = 0, c = 1; i <= RSB_HEAP_SLAB_MAX / 16; i++) {
        while (h->bins[c].size < i * 16) c++;
        h->class_of[i] = (uint8_t)c;
    }
    h->class_of[RSB_HEAP_SLAB_MAX / 16 + 1] = RSB_HEAP_CLASSES + 1;
    return h;
}

/* --- accounting ------------------------------------------------------------- */

RSB_INLINE void *account(rsb_heap *h, void *p, size_t bytes) {
    h->allocs++;
    if ((h->in_use += bytes) > h->peak) h->peak = h->in_use;
    return p;
}

/* The fit_live key of a good-fit block of `size` bytes: the class of its
 * usable size, RSB_HEAP_CLASSES + 1 just above the classes, 0 (not
 * counted) beyond. */
RSB_INLINE unsigned fit_key(const rsb_heap *h, uint32_t size) {
    uint32_t u = size - RSB_FIT_HDR;
    return u <= RSB_HEAP_SLAB_MAX + 16 ? h->class_of[(u + 15) >> 4] : 0;
}

/* A good-fit block of `word` became live (+1) or stopped being live (-1):
 * the counts that decide when a class takes slabs. */
RSB_INLINE void count_fit(rsb_heap *h, uint32_t word, int d) {
    h->fit_live[fit_key(h, word & ~RSB_FIT_FLAGS)] += (uint32_t)d;
}

/* Whether a request of n bytes is of a class busy enough for a slab: the
 * good fit holds `after` live blocks of the size it would give (the
 * threshold of that size's own class: a wide class holds more sizes). */
RSB_INLINE bool wants_slab(const rsb_heap *h, size_t n) {
    unsigned k = fit_key(h, rsb_fit_size_for(n));
    return h->fit_live[k] >= h->bins[k <= RSB_HEAP_CLASSES ? k : RSB_HEAP_CLASSES].after;
}

RSB_INLINE rsb_fit_block *fit_header(const void *p) { return (rsb_fit_block *)(void *)((char *)p - RSB_FIT_HDR); }

/* A live good-fit block at p: account for it. */
RSB_INLINE void *fit_live_block(rsb_heap *h, void *p) {
    uint32_t word = fit_header(p)->word;
    count_fit(h, word, 1);
    return account(h, p, (word & ~RSB_FIT_FLAGS) - RSB_FIT_HDR);
}

/* --- slabs ------------------------------------------------------------------- */

RSB_INLINE rsb_hslab *slab_at(const rsb_heap *h, uint32_t off) { return (rsb_hslab *)(void *)(h->fit.base + off); }
RSB_INLINE uint32_t slab_off(const rsb_heap *h, const rsb_hslab *s) { return rsb_fit_off(&h->fit, s); }
RSB_INLINE size_t window_of(const rsb_heap *h, const void *p) {
    return (size_t)((uintptr_t)p - (uintptr_t)h->wbase) >> h->wshift;
}
RSB_INLINE char *window_start(const rsb_heap *h, size_t w) { return h->wbase + (w << h->wshift); }
RSB_INLINE unsigned slab_class(const rsb_heap *h, const rsb_hslab *s) { return h->class_of[s->size >> 4]; }
RSB_INLINE uint32_t slab_limit(const rsb_hslab *s) { return s->limit & ~RSB_HEAP_IN_BIN; }
RSB_INLINE uint32_t slab_cap(const rsb_hslab *s) { return slab_limit(s) / s->size; }

/* Bytes from a slab's header to the end of its last block. */
RSB_INLINE size_t slab_extent(const rsb_hslab *s) { return 16 + slab_limit(s); }

/* The slab whose extent may hold p (in window w, with map entry e != 0),
 * or NULL: the slab starting in w if p is at or after its start, else the
 * slab covering the start of w.  The caller checks p against the extent. */
RSB_INLINE rsb_hslab *slab_candidate(const rsb_heap *h, const void *p, size_t w, rsb_hwin e) {
    char *win = window_start(h, w);
    if (e.first && (size_t)((const char *)p - win) >= (size_t)(e.first - 1) * 16)
        return (rsb_hslab *)(void *)(win + (size_t)(e.first - 1) * 16);
    if (!e.cover) return NULL;
    size_t w0 = w - e.cover;
    return (rsb_hslab *)(void *)(window_start(h, w0) + (size_t)(h->map[w0].first - 1) * 16);
}

/* A block of slab s (blocks of z bytes): the free list first, then the
 * never-used blocks from the top down.  NULL if s has neither. */
RSB_INLINE void *slab_take(rsb_hslab *s, size_t z) {
    char *p;
    if (s->free) {
        p = (char *)s + ((size_t)s->free << 4);
        s->free = (uint16_t)((uint32_t *)(void *)p)[0];
    } else if (s->left) {
        p = (char *)s + 16 + (size_t)--s->left * z;
    } else {
        return NULL;
    }
    ((uint32_t *)(void *)p)[1] = 0; /* no stale double-free marker */
    s->used++;
    return p;
}

RSB_INLINE rsb_hlinks *slab_links(rsb_hslab *s) { return (rsb_hlinks *)(void *)((char *)s + 16 + slab_limit(s)); }

/* Queue slab s at the tail of its bin's partial list. */
static void partial_push(rsb_heap *h, rsb_hbin *bin, rsb_hslab *s) {
    uint32_t o = slab_off(h, s);
    rsb_hlinks *l = slab_links(s);
    l->next = 0;
    l->prev = bin->partial_tail;
    if (bin->partial_tail)
        slab_links(slab_at(h, bin->partial_tail))->next = o;
    else
        bin->partial = o;
    bin->partial_tail = o;
    s->limit |= RSB_HEAP_IN_BIN;
}

static void partial_remove(rsb_heap *h, rsb_hbin *bin, rsb_hslab *s) {
    rsb_hlinks *l = slab_links(s);
    if (l->prev)
        slab_links(slab_at(h, l->prev))->next = l->next;
    else
        bin->partial = l->next;
    if (l->next)
        slab_links(slab_at(h, l->next))->prev = l->prev;
    else
        bin->partial_tail = l->prev;
}

/* Mark (on) or clear the map entries of slab s: first in its start window,
 * cover in every later window its extent reaches (at most extent / window
 * + 1 entries). */
static void slab_map(rsb_heap *h, rsb_hslab *s, bool on) {
    size_t w0 = window_of(h, s), w1 = window_of(h, (char *)s + slab_extent(s) - 1);
    h->map[w0].first = on ? (uint8_t)(((uintptr_t)s - (uintptr_t)window_start(h, w0)) / 16 + 1) : 0;
    for (size_t w = w0 + 1; w <= w1; w++) h->map[w].cover = on ? (uint8_t)(w - w0) : 0;
}

/* A new slab of class c, or NULL if no free block holds one: bins[c].cap
 * blocks, or half as many, a quarter... while the extent still spans a
 * window (at most log2(RSB_HEAP_SLAB_WINDOWS) + 1 tries), so that the last free memory of a
 * heap of small blocks goes to slabs too.  Cut from the high end of the
 * free block it comes from (good-fit blocks come from the low end), so
 * slabs gather apart from other blocks. */
static rsb_hslab *slab_new(rsb_heap *h, unsigned c) {
    rsb_hbin *bin = &h->bins[c];
    size_t z = bin->size, cap = bin->cap, extent = 16 + cap * z;
    if (extent > h->max_request) return NULL;
    /* Close to exhaustion (8 slabs' worth, or an eighth of the heap, left) a
     * new slab is mostly left empty, unless slabs hold most of what is in
     * use (a heap of small blocks): then no slab.
     * (in_use counts slab blocks twice here: the room is underestimated.) */
    size_t near = 8 * extent < h->capacity / 8 ? 8 * extent : h->capacity / 8;
    if (h->capacity < h->slab_bytes + h->in_use + near && 2 * h->slab_bytes < h->in_use) return NULL;
    rsb_hslab *s;
    while (!(s = rsb_fit_alloc_tail(&h->fit, extent))) {
        cap /= 2;
        extent = 16 + cap * z;
        if (cap < 2 || extent < ((size_t)1 << h->wshift)) return NULL;
    }
    rsb_fit_block *b = fit_header(s);
    rsb_fit_flip(b, RSB_FIT_TAG);
    s->free = 0;
    s->size = (uint16_t)z;
    s->limit = (uint16_t)(cap * z) | RSB_HEAP_IN_BIN;
    s->used = 0;
    s->left = (uint16_t)cap;
    slab_map(h, s, true);
    h->slabs++;
    bin->slabs++;
    h->slab_bytes += b->word & ~RSB_FIT_FLAGS;
    return s;
}

/* Give empty slab s (on no list) back to the good fit. */
static void slab_release(rsb_heap *h, rsb_hslab *s) {
    h->bins[slab_class(h, s)].slabs--;
    slab_map(h, s, false);
    rsb_fit_block *b = fit_header(s);
    h->slabs--;
    h->slab_bytes -= b->word & ~RSB_FIT_FLAGS;
    rsb_fit_flip(b, RSB_FIT_TAG);
    rsb_fit_release(&h->fit, rsb_fit_off(&h->fit, b));
}

/* Every bin hands back its empty cur (the one empty slab a class keeps).
 * O(classes).  True if anything went back. */
static bool release_reserves(rsb_heap *h) {
    bool any = false;
    if (!h->reserves) return false; /* no cur emptied since the last call: nothing to look at */
    h->reserves = 0;
    for (unsigned c = 1; c <= RSB_HEAP_CLASSES; c++) {
        rsb_hslab *s = h->bins[c].cur;
        if (s != &h->empty && s->used == 0) {
            h->bins[c].cur = &h->empty;
            slab_release(h, s);
            any = true;
        }
    }
    return any;
}

/* A free into slab s left it empty, or it was full (on no list). */
static RSB_NOINLINE void slab_free_slow(rsb_heap *h, rsb_hslab *s) {
    rsb_hbin *bin = &h->bins[slab_class(h, s)];
    if (!(s->limit & RSB_HEAP_IN_BIN)) { /* it has one free block now (cap >= 2: not empty) */
        rsb_hslab *cur = bin->cur;
        if (!cur->free && !cur->left) {
            /* The cursor is used up (or the sentinel): s takes its place, so
             * that the next allocation of the class needs no slow path. */
            cur->limit &= (uint16_t)~RSB_HEAP_IN_BIN;
            bin->cur = s;
            s->limit |= RSB_HEAP_IN_BIN;
        } else {
            partial_push(h, bin, s);
        }
    } else if (s->used == 0 && s != bin->cur) {
        partial_remove(h, bin, s);
        slab_release(h, s);
    } else if (s->used == 0) {
        h->reserves = 1; /* the cur is empty: a reserve for release_reserves */
    }
}

/* --- allocation ---------------------------------------------------------------- */

/* A good-fit block; when none fits, the bins' empty slabs go back first. */
static RSB_NOINLINE void *fit_alloc_slow(rsb_heap *h, size_t n, size_t align) {
    void *p = NULL;
    if (n <= h->max_request) {
        p = align <= 16 ? rsb_fit_alloc(&h->fit, n) : rsb_fit_alloc_aligned(&h->fit, align, n);
        if (!p && release_reserves(h))
            p = align <= 16 ? rsb_fit_alloc(&h->fit, n) : rsb_fit_alloc_aligned(&h->fit, align, n);
    }
    if (p) return fit_live_block(h, p);
    h->failures++;
    return NULL;
}

/* The cur of bin has nothing left and a partial slab waits: it becomes the
 * cur (the old one, full, leaves the bin until a block comes back).  Kept
 * apart from small_slow: it is the common transition of a busy class. */
static RSB_NOINLINE void *slab_switch(rsb_heap *h, rsb_hbin *bin) {
    rsb_hslab *old = bin->cur, *s = slab_at(h, bin->partial);
    old->limit &= (uint16_t)~RSB_HEAP_IN_BIN; /* (the sentinel's limit is never read) */
    uint32_t next = slab_links(s)->next;
    bin->partial = next;
    if (next)
        slab_links(slab_at(h, next))->prev = 0;
    else
        bin->partial_tail = 0;
    bin->cur = s;
    return account(h, slab_take(s, bin->size), bin->size);
}

/* Class c's cur has nothing left: a partial slab, a new slab if the class
 * is busy enough, else a good-fit block. */
static RSB_NOINLINE void *small_slow(rsb_heap *h, size_t n, unsigned c) {
    rsb_hbin *bin = &h->bins[c];
    rsb_hslab *s = bin->cur;
    if (s != &h->empty) { /* full: it leaves the bin until a block comes back */
        s->limit &= (uint16_t)~RSB_HEAP_IN_BIN;
        bin->cur = &h->empty;
    }
    if (bin->partial) {
        s = slab_at(h, bin->partial);
        partial_remove(h, bin, s);
        bin->cur = s;
        return account(h, slab_take(s, bin->size), bin->size);
    }
    if ((bin->slabs || wants_slab(h, n)) && (s = slab_new(h, c)) != NULL) {
        bin->cur = s;
        return account(h, slab_take(s, bin->size), bin->size);
    }
    return fit_alloc_slow(h, n, 16);
}

/* Lock held. */
RSB_INLINE void *heap_alloc(rsb_heap *h, size_t n) {
    if (likely(n <= RSB_HEAP_SLAB_MAX)) {
        unsigned c = h->class_of[(n + 15) >> 4];
        const rsb_hbin *bin = &h->bins[c];
        void *p = slab_take(bin->cur, bin->size);
        if (likely(p != NULL)) return account(h, p, bin->size);
        if (bin->partial) return slab_switch(h, (rsb_hbin *)bin);
        /* A class without slabs that is not busy enough for one: good fit. */
        if (bin->cur != &h->empty || bin->slabs || wants_slab(h, n)) return small_slow(h, n, c);
    }
    if (likely(n <= h->max_request)) {
        void *p = rsb_fit_alloc(&h->fit, n);
        if (likely(p != NULL)) return fit_live_block(h, p);
    }
    return fit_alloc_slow(h, n, 16);
}

static RSB_NOINLINE void *alloc_locked(rsb_heap *h, size_t size) {
    heap_lock(h);
    void *p = heap_alloc(h, size);
    heap_unlock(h);
    return p;
}

/* The lock hook is tested once: without one, the paths run straight. */
void *rsb_heap_alloc(rsb_heap *h, size_t size) {
    if (unlikely(h->lock != NULL)) return alloc_locked(h, size);
    return heap_alloc(h, size);
}

void *rsb_heap_alloc_aligned(rsb_heap *h, size_t align, size_t size) {
    if (!rsb_is_pow2(align)) {
        heap_lock(h);
        h->failures++;
        heap_unlock(h);
        return NULL;
    }
    if (align <= RSB_FIT_HDR * 2) return rsb_heap_alloc(h, size);
    heap_lock(h);
    /* An alignment beyond the pool can never be met: fail without searching. */
    void *p = fit_alloc_slow(h, align > h->max_request ? (size_t)-1 : size, align);
    heap_unlock(h);
    return p;
}

/* --- pointer lookup ----------------------------------------------------------------- */

enum { BLK_NONE = 0, BLK_SLAB, BLK_FIT };

/* What p is: a live slab block (*sp its slab), a live good-fit block, or
 * neither (*err says why).  Reads only the heap's metadata and the 8 bytes
 * before p, all inside the region. */
static int lookup(const rsb_heap *h, const void *p, int *err, rsb_hslab **sp) {
    uintptr_t off = (uintptr_t)p - (uintptr_t)h->lo;
    if (off >= h->span) {
        *err = RSB_HEAP_FOREIGN_POINTER;
        return BLK_NONE;
    }
    *err = RSB_HEAP_INVALID_POINTER;
    if ((uintptr_t)p & 15) return BLK_NONE;
    size_t w = window_of(h, p);
    rsb_hwin e = h->map[w];
    rsb_hslab *s = e.first | e.cover ? slab_candidate(h, p, w, e) : NULL;
    if (s && (size_t)((const char *)p - (const char *)s) < slab_extent(s)) {
        uint32_t z = s->size, bo = (uint32_t)((const char *)p - (const char *)s) - 16;
        if (bo >= slab_limit(s)) return BLK_NONE; /* the slab's header */
        uint32_t q = (uint32_t)(((uint64_t)(bo >> 4) * h->magic[z >> 4]) >> 31);
        if (q * z != bo || q < s->left) return BLK_NONE;
        if (((const uint32_t *)p)[1] == (h->key ^ (uint32_t)(uintptr_t)p)) {
            *err = RSB_HEAP_DOUBLE_FREE;
            return BLK_NONE;
        }
        *sp = s;
        return BLK_SLAB;
    }
    const rsb_fit_block *b = fit_header(p);
    uint32_t want = rsb_fit_check_of(&h->fit, rsb_fit_off(&h->fit, b), b->word);
    if (b->check == want) {
        if (b->word & RSB_FIT_FREE) *err = RSB_HEAP_DOUBLE_FREE;
        return b->word & (RSB_FIT_FREE | RSB_FIT_TAG) ? BLK_NONE : BLK_FIT;
    }
    if (b->check == (want ^ RSB_FIT_DEAD)) *err = RSB_HEAP_DOUBLE_FREE; /* merged away since it was freed */
    return BLK_NONE;
}

static size_t usable(const rsb_heap *h, const rsb_hslab *s, const void *p, int kind) {
    (void)h;
    return kind == BLK_SLAB ? s->size : (fit_header(p)->word & ~RSB_FIT_FLAGS) - RSB_FIT_HDR;
}

/* --- free --------------------------------------------------------------------------- */

RSB_INLINE void slab_put(rsb_heap *h, rsb_hslab *s, void *p, uint32_t bo, uint32_t z, uint32_t mark) {
    ((uint32_t *)p)[0] = s->free;
    ((uint32_t *)p)[1] = mark;
    s->free = (uint16_t)((bo >> 4) + 1);
    h->in_use -= z;
    h->frees++;
    if (unlikely(--s->used == 0 || !(s->limit & RSB_HEAP_IN_BIN))) slab_free_slow(h, s);
}

/* Free good-fit block o (header word, validated).  Out of line: the slab
 * path in heap_free then needs few registers.  Returns 0. */
static RSB_NOINLINE int fit_free(rsb_heap *h, uint32_t o, uint32_t word) {
    h->in_use -= (word & ~RSB_FIT_FLAGS) - RSB_FIT_HDR;
    h->frees++;
    count_fit(h, word, -1);
    rsb_fit_release(&h->fit, o);
    return 0;
}

/* Free live block p (lookup's kind and slab).  Lock held. */
static void free_block(rsb_heap *h, void *p, int kind, rsb_hslab *s) {
    if (kind == BLK_SLAB) {
        uint32_t bo = (uint32_t)((char *)p - (char *)s) - 16;
        slab_put(h, s, p, bo, s->size, h->key ^ (uint32_t)(uintptr_t)p);
    } else {
        rsb_fit_block *b = fit_header(p);
        fit_free(h, rsb_fit_off(&h->fit, b), b->word);
    }
}

/* Returns 0, or the error to report. */
static RSB_NOINLINE int free_slow(rsb_heap *h, void *p) {
    int err = 0;
    rsb_hslab *s = NULL;
    int kind = lookup(h, p, &err, &s);
    if (!kind) return err;
    free_block(h, p, kind, s);
    return 0;
}

/* Lock held.  lookup's checks, then the free, inline for both kinds;
 * returns 0, or the error to report once the lock is released. */
RSB_INLINE int heap_free(rsb_heap *h, void *p) {
    uintptr_t off = (uintptr_t)p - (uintptr_t)h->lo;
    if (likely(off < h->span && ((uintptr_t)p & 15) == 0)) {
        size_t w = window_of(h, p);
        rsb_hwin e = h->map[w];
        if (e.first | e.cover) {
            rsb_hslab *s = slab_candidate(h, p, w, e);
            if (s) {
                uint32_t z = s->size, bo = (uint32_t)((char *)p - (char *)s) - 16;
                uint32_t mark = h->key ^ (uint32_t)(uintptr_t)p;
                if (likely(bo < (uint32_t)(s->limit & ~RSB_HEAP_IN_BIN))) {
                    uint32_t q = (uint32_t)(((uint64_t)(bo >> 4) * h->magic[z >> 4]) >> 31);
                    if (likely(q * z == bo && q >= s->left && ((uint32_t *)p)[1] != mark)) {
                        slab_put(h, s, p, bo, z, mark);
                        return 0;
                    }
                    return free_slow(h, p);
                }
                if ((uintptr_t)p - (uintptr_t)s < 16) return free_slow(h, p); /* the slab's header */
                /* past the slab's blocks: a good-fit block after it */
            }
        }
        rsb_fit_block *b = fit_header(p);
        uint32_t word = b->word, o = rsb_fit_off(&h->fit, b);
        if (likely(b->check == (h->fit.key ^ o ^ word) && !(word & (RSB_FIT_FREE | RSB_FIT_TAG))))
            return fit_free(h, o, word);
    }
    return free_slow(h, p);
}

static RSB_NOINLINE void free_locked(rsb_heap *h, void *p) {
    heap_lock(h);
    int err = heap_free(h, p);
    heap_unlock(h);
    if (err) report(h, err, p);
}

void rsb_heap_free(rsb_heap *h, void *p) {
    if (unlikely(p == NULL)) return;
    if (unlikely(h->lock != NULL)) {
        free_locked(h, p);
        return;
    }
    int err = heap_free(h, p);
    if (unlikely(err)) report(h, err, p);
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
    rsb_hslab *s = NULL;
    int kind = lookup(h, p, &err, &s);
    if (!kind) {
        heap_unlock(h);
        report(h, err, p);
        return NULL;
    }
    size_t old = usable(h, s, p, kind);
    void *q = p;
    if (kind == BLK_SLAB) {
        if (size <= old && (size > old / 2 || old <= 32)) goto out;
    } else if (size <= h->max_request) {
        rsb_fit_block *b = fit_header(p);
        uint32_t was = b->word;
        /* In place (shrink, or grow into a free neighbour); a block that
         * would shrink to a slab size keeps its good-fit block. */
        if (rsb_fit_resize(&h->fit, p, size)) {
            count_fit(h, was, -1);
            count_fit(h, b->word, 1);
            h->in_use = h->in_use - old + ((b->word & ~RSB_FIT_FLAGS) - RSB_FIT_HDR);
            if (h->in_use > h->peak) h->peak = h->in_use;
            goto out;
        }
    }
    /* Moved, the block keeps the alignment its address had, up to
     * RSB_HEAP_REALLOC_ALIGN: a block allocated aligned stays aligned. */
    size_t align = (uintptr_t)p & (0u - (uintptr_t)p);
    if (align > RSB_HEAP_REALLOC_ALIGN) align = RSB_HEAP_REALLOC_ALIGN;
    q = align > 16 && kind == BLK_FIT ? fit_alloc_slow(h, size, align) : heap_alloc(h, size);
    if (q) {
        rsb_memcpy(q, p, old < size ? old : size);
        free_block(h, p, kind, s);
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
    rsb_hslab *s = NULL;
    int kind = lookup(h, p, &err, &s);
    size_t n = kind ? usable(h, s, p, kind) : 0;
    heap_unlock(h);
    if (!kind) report(h, err, p);
    return n;
}

/* --- statistics and checks --------------------------------------------------------- */

void rsb_heap_stats(rsb_heap *h, rsb_heap_stats_t *out) {
    heap_lock(h);
    release_reserves(h);
    out->capacity = h->capacity;
    out->in_use = h->in_use;
    out->peak = h->peak;
    out->largest_free = rsb_fit_largest(&h->fit);
    out->free_bytes = rsb_fit_free_bytes(&h->fit);
    out->slab_bytes = h->slab_bytes;
    out->overhead = h->region_len - h->capacity;
    out->small_max = RSB_HEAP_SLAB_MAX;
    out->window = (uint32_t)1 << h->wshift;
    out->classes = RSB_HEAP_CLASSES;
    out->slabs = h->slabs;
    out->allocs = h->allocs;
    out->frees = h->frees;
    out->failures = h->failures;
    heap_unlock(h);
}

struct check_ctx {
    const rsb_heap *h;
    size_t in_use, slabs, slab_bytes, windows;
    uint32_t fit_live[RSB_HEAP_CLASSES + 2];
};

static void check_slab(struct check_ctx *x, const rsb_hslab *s, uint32_t word) {
    const rsb_heap *h = x->h;
    uint32_t z = s->size, cap = slab_cap(s);
    RSB_CHECK(z >= 16 && z <= RSB_HEAP_SLAB_MAX && h->bins[slab_class(h, s)].size == z, "slab: block size");
    RSB_CHECK(cap >= 2 && slab_limit(s) == cap * z, "slab: capacity");
    size_t extent = slab_extent(s);
    RSB_CHECK(extent >= ((size_t)1 << h->wshift) && extent + sizeof(rsb_hlinks) + RSB_FIT_HDR <= (word & ~RSB_FIT_FLAGS),
              "slab: extent and links inside the block");
    RSB_CHECK(s->used <= cap && s->left <= cap, "slab: counts");
    size_t w0 = window_of(h, s), w1 = window_of(h, (const char *)s + extent - 1);
    RSB_CHECK(h->map[w0].first == ((uintptr_t)s - (uintptr_t)window_start(h, w0)) / 16 + 1, "slab: map first");
    for (size_t w = w0 + 1; w <= w1; w++) RSB_CHECK(h->map[w].cover == w - w0, "slab: map cover");
    size_t nfree = 0;
    for (uint32_t f = s->free; f; nfree++) {
        RSB_CHECK(nfree < cap, "slab: free list cycle");
        uint32_t bo = (f << 4) - 16;
        RSB_CHECK(f >= 1 && bo % z == 0 && bo / z < cap && bo / z >= s->left, "slab: free list link");
        const uint32_t *b = (const uint32_t *)(const void *)((const char *)s + ((size_t)f << 4));
        RSB_CHECK(b[1] == (h->key ^ (uint32_t)(uintptr_t)b), "slab: free block without its marker");
        f = b[0];
    }
    RSB_CHECK(s->used + nfree + s->left == cap, "slab: used + free + never used != capacity");
    x->in_use += (size_t)s->used * z;
    x->slabs++;
    x->slab_bytes += word & ~RSB_FIT_FLAGS;
    x->windows += w1 - w0 + 1; /* one first, w1 - w0 covers */
}

static void check_visit(void *ctx, char *payload, uint32_t word) {
    struct check_ctx *x = ctx;
    if (word & RSB_FIT_TAG) {
        check_slab(x, (const rsb_hslab *)(const void *)payload, word);
        return;
    }
    x->in_use += (word & ~RSB_FIT_FLAGS) - RSB_FIT_HDR;
    x->fit_live[fit_key(x->h, word & ~RSB_FIT_FLAGS)]++;
}

static bool is_slab(const rsb_heap *h, const rsb_hslab *s) {
    size_t w = window_of(h, s);
    return w < window_of(h, h->lo + h->span) && h->map[w].first &&
           (size_t)(h->map[w].first - 1) * 16 == (uintptr_t)s - (uintptr_t)window_start(h, w);
}

int rsb_heap_check(rsb_heap *h) {
    heap_lock(h);
    struct check_ctx x; /* not "= {...}": that is a memset call, which a region build lacks */
    x.h = h;
    x.in_use = x.slabs = x.slab_bytes = x.windows = 0;
    for (unsigned c = 0; c <= RSB_HEAP_CLASSES + 1; c++) x.fit_live[c] = 0;
    rsb_fit_check(&h->fit, check_visit, &x);
    RSB_CHECK(x.slabs == h->slabs && x.slab_bytes == h->slab_bytes, "heap: slab count and bytes");
    size_t mapped = 0;
    for (size_t w = 0, n = window_of(h, h->lo + h->span - 1) + 1; w < n; w++)
        mapped += (h->map[w].first != 0) + (h->map[w].cover != 0);
    RSB_CHECK(mapped == x.windows, "heap: window map names windows of no slab");
    RSB_CHECK(x.in_use == h->in_use, "heap: in_use does not match the blocks");
    for (unsigned c = 1; c <= RSB_HEAP_CLASSES + 1; c++) RSB_CHECK(x.fit_live[c] == h->fit_live[c], "heap: fit_live");
    size_t in_bins = 0, per_bin = 0;
    for (unsigned c = 1; c <= RSB_HEAP_CLASSES; c++) per_bin += h->bins[c].slabs;
    RSB_CHECK(per_bin == h->slabs, "heap: slabs per bin");
    for (unsigned c = 1; c <= RSB_HEAP_CLASSES; c++) {
        const rsb_hbin *bin = &h->bins[c];
        if (bin->cur != &h->empty) {
            const rsb_hslab *s = bin->cur;
            RSB_CHECK(is_slab(h, s) && s->size == bin->size && (s->limit & RSB_HEAP_IN_BIN), "heap: bin cursor");
            RSB_CHECK(s->used || h->reserves, "heap: an empty cur without the reserves flag");
            in_bins++;
        }
        uint32_t prev = 0;
        RSB_CHECK(!bin->partial == !bin->partial_tail, "heap: partial list ends");
        for (uint32_t o = bin->partial; o; prev = o, o = slab_links(slab_at(h, o))->next) {
            const rsb_hslab *s = slab_at(h, o);
            RSB_CHECK(++in_bins <= h->slabs, "heap: partial list cycle");
            RSB_CHECK(is_slab(h, s) && s->size == bin->size && s != bin->cur, "heap: partial list entry");
            RSB_CHECK((s->limit & RSB_HEAP_IN_BIN) && slab_links((rsb_hslab *)s)->prev == prev, "heap: partial list links");
            RSB_CHECK(s->used > 0 && (s->free || s->left), "heap: empty or full slab on a partial list");
        }
        RSB_CHECK(prev == bin->partial_tail, "heap: partial list tail");
    }
    RSB_CHECK(h->empty.free == 0 && h->empty.left == 0, "heap: the empty-bin sentinel has blocks");
    heap_unlock(h);
    return 0;
}
