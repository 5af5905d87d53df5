/*
 * Page allocator: spans of pages carved from chunks, merged when freed,
 * returned to the OS after the purge delay.  See page_alloc.h for the
 * glossary and the invariants.  Every function here runs with the arena
 * lock held, except the huge-block functions, which need no lock.
 */
#include "page_alloc.h"

#include "os.h"

#if !RSB_FREESTANDING
/* In .bss: 32 MiB of address space, of which only the pages covering our
 * chunks are ever touched (one 4 KiB page per 16 GiB of addresses). */
uint8_t rsb_registry[RSB_REGISTRY_ENTRIES];

static void registry_set(uintptr_t base, unsigned what) {
    __atomic_store_n(&rsb_registry[base >> RSB_CHUNK_SHIFT], (uint8_t)what, __ATOMIC_RELEASE);
}
#endif

static inline uint32_t span_index(const rsb_chunk *c, const rsb_span *s) {
    return (uint32_t)(s - c->pages);
}

/* --- free size bins ------------------------------------------------------ */

static unsigned bin_of(uint32_t n) {
    if (n <= 32) return n - 1;
    unsigned lg = rsb_log2(n);
    return 32 + (lg - 5) * 4 + ((n >> (lg - 2)) & 3);
}

static uint32_t bin_min(unsigned b) {
    if (b < 32) return b + 1;
    unsigned lg = 5 + (b - 32) / 4;
    return (uint32_t)(4 + (b - 32) % 4) << (lg - 2);
}

/* First bin whose every span has at least n pages. */
static unsigned bin_up(uint32_t n) {
    unsigned b = bin_of(n);
    return bin_min(b) == n ? b : b + 1;
}

static void bin_insert(rsb_arena *a, rsb_span *s) {
    unsigned b = bin_of(s->npages);
    rsb_span_list_push(&a->free_bins[b], s);
    a->free_map[b >> 6] |= (uint64_t)1 << (b & 63);
}

static void bin_remove(rsb_arena *a, rsb_span *s) {
    unsigned b = bin_of(s->npages);
    rsb_span_list_remove(&a->free_bins[b], s);
    if (!a->free_bins[b]) a->free_map[b >> 6] &= ~((uint64_t)1 << (b & 63));
}

static int bin_find(const rsb_arena *a, unsigned from) {
    for (unsigned w = from >> 6; w < RSB_FREE_WORDS; w++) {
        uint64_t m = a->free_map[w];
        if (w == from >> 6) m &= ~(uint64_t)0 << (from & 63);
        if (m) return (int)(w * 64 + rsb_ctz64(m));
    }
    return -1;
}

/* --- dirty list (purge order) -------------------------------------------- */

#if RSB_FREESTANDING
/* No OS to give pages back to: free spans keep RSB_SF_DIRTY (their memory is
 * not known to be zero) but there is no dirty list. */
static inline void dirty_append(rsb_arena *a, rsb_span *s) { (void)a, (void)s; }
static inline void dirty_remove(rsb_arena *a, rsb_span *s) { (void)a, (void)s; }
static inline void dirty_replace(rsb_arena *a, rsb_span *s, rsb_span *r) { (void)a, (void)s, (void)r; }
static inline uint32_t freed_ms(const rsb_span *s) { (void)s; return 0; }
static inline void set_freed_ms(rsb_span *s, uint32_t ms) { (void)s, (void)ms; }
#else
/* When a free span was freed (purge delay). */
static inline uint32_t freed_ms(const rsb_span *s) { return s->u.f.freed_ms; }
static inline void set_freed_ms(rsb_span *s, uint32_t ms) { s->u.f.freed_ms = ms; }

static void dirty_append(rsb_arena *a, rsb_span *s) {
    s->u.f.dnext = NULL;
    s->u.f.dprev = a->dirty_tail;
    if (a->dirty_tail)
        a->dirty_tail->u.f.dnext = s;
    else
        a->dirty_head = s;
    a->dirty_tail = s;
    a->dirty_bytes += (size_t)s->npages << RSB_PAGE_SHIFT;
}

static void dirty_remove(rsb_arena *a, rsb_span *s) {
    if (s->u.f.dprev)
        s->u.f.dprev->u.f.dnext = s->u.f.dnext;
    else
        a->dirty_head = s->u.f.dnext;
    if (s->u.f.dnext)
        s->u.f.dnext->u.f.dprev = s->u.f.dprev;
    else
        a->dirty_tail = s->u.f.dprev;
    a->dirty_bytes -= (size_t)s->npages << RSB_PAGE_SHIFT;
}

/* Replace s by r at the same place of the dirty list (a split keeps order). */
static void dirty_replace(rsb_arena *a, rsb_span *s, rsb_span *r) {
    r->u.f.dprev = s->u.f.dprev;
    r->u.f.dnext = s->u.f.dnext;
    if (r->u.f.dprev)
        r->u.f.dprev->u.f.dnext = r;
    else
        a->dirty_head = r;
    if (r->u.f.dnext)
        r->u.f.dnext->u.f.dprev = r;
    else
        a->dirty_tail = r;
    a->dirty_bytes -= (size_t)(s->npages - r->npages) << RSB_PAGE_SHIFT;
}
#endif

/* --- spans --------------------------------------------------------------- */

/* Make pages[idx .. idx+n) a span head with boundary tags. */
static rsb_span *span_make(rsb_chunk *c, uint32_t idx, uint32_t n, uint8_t kind, uint8_t flags) {
    rsb_span *s = &c->pages[idx];
    s->kind = kind;
    s->flags = flags;
    s->head = idx;
    s->npages = n;
#if !RSB_FREESTANDING
    s->start = c->base + ((size_t)idx << RSB_PAGE_SHIFT);
#endif
    c->pages[idx + n - 1].head = idx;
    return s;
}


static void chunk_add(rsb_arena *a, rsb_chunk *c, char *base, uint32_t npages, uint32_t first) {
    c->magic = RSB_CHUNK_MAGIC;
    c->kind = RSB_CHUNK_PAGES_KIND;
    c->npages = npages;
    c->first_page = first;
    c->used_pages = 0;
    c->base = base;
    for (uint32_t i = 0; i < first; i++) {
        c->pages[i].kind = RSB_SPAN_DEAD;
        c->pages[i].head = i;
    }
    c->prev = NULL;
    c->next = a->chunks;
    if (c->next) c->next->prev = c;
    a->chunks = c;
    a->nchunks++;
    rsb_span *s = span_make(c, first, npages - first, RSB_SPAN_FREE, 0);
    bin_insert(a, s);
}

#if RSB_FREESTANDING
rsb_span *rsb_pages_split(rsb_arena *a, rsb_span *s, uint32_t k) {
    (void)a;
    rsb_chunk *c = rsb_chunk_of_span(s);
    uint32_t idx = span_index(c, s);
    rsb_span *t = span_make(c, idx + k, s->npages - k, RSB_SPAN_LARGE, 0);
    s->npages = k;
    c->pages[idx + k - 1].head = idx;
    return t;
}

void rsb_pages_add_region(rsb_arena *a, rsb_chunk *c, char *base, uint32_t npages) {
    chunk_add(a, c, base, npages, 0);
    c->pages[0].flags = RSB_SF_DIRTY; /* the caller's memory is not zeroed */
    a->region = c;
    a->mapped = (size_t)npages << RSB_PAGE_SHIFT;
}
#else
static rsb_chunk *chunk_new(rsb_arena *a) {
    char *base = rsb_os_map(RSB_CHUNK_SIZE, RSB_CHUNK_SIZE, 0);
    if (!base) return NULL;
    rsb_chunk *c = (rsb_chunk *)base;
    _Static_assert(sizeof(rsb_chunk) + (RSB_CHUNK_PAGES + 1) * sizeof(rsb_span) <= RSB_PAGE_SIZE,
                   "chunk metadata, and the DEAD descriptor past it, fit in page 0");
    chunk_add(a, c, base, (uint32_t)RSB_CHUNK_PAGES, 1);
    a->mapped += RSB_CHUNK_SIZE;
    registry_set((uintptr_t)base, RSB_REG_PAGES);
    return c;
}

static void chunk_release(rsb_arena *a, rsb_chunk *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        a->chunks = c->next;
    if (c->next) c->next->prev = c->prev;
    a->nchunks--;
    a->mapped -= RSB_CHUNK_SIZE;
    registry_set((uintptr_t)c->base, RSB_REG_NONE);
    rsb_os_unmap(c->base, RSB_CHUNK_SIZE);
}
#endif

#if !RSB_FREESTANDING
static unsigned huge_cache_expire(rsb_arena *a, bool all, uint32_t now, rsb_huge **out);
static void huge_unmap(rsb_arena *a, rsb_huge *h);
#endif

/* Dirty pages kept for reuse are bounded: beyond max(32 MiB, 1/4 of what is
 * mapped) the oldest go back to the OS at once, whatever the delay, so a
 * program that frees most of its peak and then goes quiet (no allocator
 * activity to trigger the delayed purge) does not keep it all resident. */
#define RSB_DIRTY_FLOOR ((size_t)32 << 20)

/* Give a dirty free span's pages back to the OS (it stays free, now clean). */
static bool purge_span(rsb_arena *a, rsb_span *s) {
    dirty_remove(a, s);
    s->flags &= (uint8_t)~RSB_SF_DIRTY;
#if !RSB_FREESTANDING
    if (rsb_os_page > RSB_PAGE_SIZE) return false;
    rsb_os_purge(rsb_span_start(s), (size_t)s->npages << RSB_PAGE_SHIFT);
    a->purges++;
    return true;
#else
    return false;
#endif
}

#if RSB_FREESTANDING
#define RSB_LARGE_CACHED(a) 0
#else
#define RSB_LARGE_CACHED(a) ((a)->large_cached != 0)
#endif

static void purge_over_cap(rsb_arena *a) {
    size_t cap = a->mapped / 4 > RSB_DIRTY_FLOOR ? a->mapped / 4 : RSB_DIRTY_FLOOR;
    if (a->purge_delay_ms < 0 || a->dirty_bytes <= cap) return;
    while (a->dirty_head && a->dirty_bytes > cap / 2) purge_span(a, a->dirty_head);
}

static inline void maybe_purge(rsb_arena *a) {
    if (a->purge_delay_ms >= 0 && (a->dirty_head || a->huge_cached_bytes || RSB_LARGE_CACHED(a)) &&
        rsb_os_now_ms() >= a->next_purge_ms)
        rsb_pages_purge(a, false);
}

rsb_span *rsb_pages_alloc(rsb_arena *a, uint32_t n, uint8_t kind, bool *zero) {
    int b = bin_find(a, bin_up(n));
#if !RSB_FREESTANDING
    if (b < 0 && n <= RSB_CHUNK_PAGES - 1) {
        if (!chunk_new(a)) return NULL;
        b = bin_find(a, bin_up(n));
    }
#else
    /* No chunk to map: the bin that n falls in holds spans from below n up;
     * its first one may still fit (a region's single free span always does). */
    if (b < 0 && a->free_bins[bin_of(n)] && a->free_bins[bin_of(n)]->npages >= n) b = (int)bin_of(n);
#endif
    if (b < 0) return NULL;
    rsb_span *s = a->free_bins[b];
    rsb_chunk *c = rsb_chunk_of_span(s);
    uint32_t idx = span_index(c, s);
    bin_remove(a, s);
    bool dirty = s->flags & RSB_SF_DIRTY;
    if (s->npages > n) {
        rsb_span *r = span_make(c, idx + n, s->npages - n, RSB_SPAN_FREE, s->flags);
        set_freed_ms(r, freed_ms(s));
        if (dirty) dirty_replace(a, s, r);
        bin_insert(a, r);
    } else if (dirty) {
        dirty_remove(a, s);
    }
    s = span_make(c, idx, n, kind, 0);
    if (kind == RSB_SPAN_SLAB)
        for (uint32_t i = 1; i < n; i++) s[i].head = idx;
    else
        a->large_bytes += (size_t)n << RSB_PAGE_SHIFT;
    c->used_pages += n;
    *zero = !dirty;
    maybe_purge(a);
    return s;
}

bool rsb_pages_grow(rsb_arena *a, rsb_span *s, uint32_t n) {
    rsb_chunk *c = rsb_chunk_of_span(s);
    uint32_t idx = s->head, r = idx + s->npages, extra = n - s->npages;
    if (r >= c->npages) return false;
    rsb_span *rs = &c->pages[r];
    if (rs->head != r || rs->kind != RSB_SPAN_FREE || rs->npages < extra) return false;
    bin_remove(a, rs);
    bool dirty = rs->flags & RSB_SF_DIRTY;
    if (rs->npages > extra) {
        rsb_span *rest = span_make(c, r + extra, rs->npages - extra, RSB_SPAN_FREE, rs->flags);
        set_freed_ms(rest, freed_ms(rs));
        if (dirty) dirty_replace(a, rs, rest);
        bin_insert(a, rest);
    } else if (dirty) {
        dirty_remove(a, rs);
    }
    rs->kind = RSB_SPAN_DEAD;
    s->npages = n;
    c->pages[idx + n - 1].head = idx;
    c->used_pages += extra;
    a->large_bytes += (size_t)extra << RSB_PAGE_SHIFT;
    return true;
}

void rsb_pages_free(rsb_arena *a, rsb_span *s) {
    rsb_chunk *c = rsb_chunk_of_span(s);
    uint32_t idx = span_index(c, s);
    uint32_t n = s->npages;
    RSB_ASSERT(s->kind == RSB_SPAN_SLAB || s->kind == RSB_SPAN_LARGE);
    c->used_pages -= n;
    if (s->kind == RSB_SPAN_LARGE) a->large_bytes -= (size_t)n << RSB_PAGE_SHIFT;
    /* Merge with the span on the left: its last page names its head. */
    if (idx > c->first_page) {
        uint32_t lh = c->pages[idx - 1].head;
        rsb_span *l = &c->pages[lh];
        if (lh < idx && l->head == lh && l->kind == RSB_SPAN_FREE && lh + l->npages == idx) {
            bin_remove(a, l);
            if (l->flags & RSB_SF_DIRTY) dirty_remove(a, l);
            s->kind = RSB_SPAN_DEAD;
            n += l->npages;
            idx = lh;
        }
    }
    /* Merge with the span on the right. */
    uint32_t r = idx + n;
    if (r < c->npages) {
        rsb_span *rs = &c->pages[r];
        if (rs->head == r && rs->kind == RSB_SPAN_FREE) {
            bin_remove(a, rs);
            if (rs->flags & RSB_SF_DIRTY) dirty_remove(a, rs);
            rs->kind = RSB_SPAN_DEAD;
            n += rs->npages;
        }
    }
    s = span_make(c, idx, n, RSB_SPAN_FREE, RSB_SF_DIRTY);
    set_freed_ms(s, (uint32_t)rsb_os_now_ms());
    bin_insert(a, s);
    dirty_append(a, s);
    if (a->purge_delay_ms >= 0 && a->next_purge_ms == UINT64_MAX)
        a->next_purge_ms = rsb_os_now_ms() + (uint64_t)a->purge_delay_ms;
    maybe_purge(a);
    purge_over_cap(a);
}

#if !RSB_FREESTANDING
/* Take entry i out of the cache and make its span live (LARGE, in use). */
static rsb_span *large_cache_remove(rsb_arena *a, uint32_t i) {
    rsb_span *s = a->large_cache[i];
    for (uint32_t j = i + 1; j < a->large_cached; j++) a->large_cache[j - 1] = a->large_cache[j];
    a->large_cached--;
    s->flags &= (uint8_t)~RSB_SF_CACHED;
    a->large_cached_bytes -= (size_t)s->npages << RSB_PAGE_SHIFT;
    a->large_bytes += (size_t)s->npages << RSB_PAGE_SHIFT;
    return s;
}

rsb_span *rsb_large_cache_take(rsb_arena *a, uint32_t n) {
    for (uint32_t i = a->large_cached; i-- > 0;)
        if (a->large_cache[i]->npages == n) return large_cache_remove(a, i);
    return NULL;
}

static void large_cache_evict(rsb_arena *a, uint32_t i) { rsb_pages_free(a, large_cache_remove(a, i)); }

void rsb_large_cache_put(rsb_arena *a, rsb_span *s) {
    if (a->purge_delay_ms == 0) { /* purge at once: nothing to keep */
        rsb_pages_free(a, s);
        return;
    }
    if (a->large_cached == RSB_LARGE_CACHE) large_cache_evict(a, 0);
    s->flags |= RSB_SF_CACHED;
    a->large_cache[a->large_cached++] = s;
    a->large_cached_bytes += (size_t)s->npages << RSB_PAGE_SHIFT;
    a->large_bytes -= (size_t)s->npages << RSB_PAGE_SHIFT;
    /* The purge timer must run while the cache holds memory; the clock is
     * read once per 64 puts, not on each. */
    if (a->next_purge_ms == UINT64_MAX && a->purge_delay_ms > 0)
        a->next_purge_ms = rsb_os_now_ms() + (uint64_t)a->purge_delay_ms;
    else if ((++a->large_cache_puts & 63) == 0)
        maybe_purge(a);
}
#endif

bool rsb_pages_purge(rsb_arena *a, bool all) {
    bool released = false;
#if !RSB_FREESTANDING
    /* Cached page runs first, so that they can merge and be purged below. */
    while (a->large_cached) large_cache_evict(a, a->large_cached - 1);
    a->large_cache_puts = 0;
#endif
    uint32_t now = (uint32_t)rsb_os_now_ms();
    rsb_span *s;
    while ((s = a->dirty_head) != NULL) {
        if (!all && (a->purge_delay_ms < 0 || now - freed_ms(s) < (uint32_t)a->purge_delay_ms)) break;
#if !RSB_FREESTANDING
        rsb_chunk *c = rsb_chunk_of_span(s);
        if (s->npages == c->npages - c->first_page && a->nchunks > 1) { /* a whole chunk */
            dirty_remove(a, s);
            bin_remove(a, s);
            chunk_release(a, c);
            a->purges++;
            released = true;
            continue;
        }
#endif
        released |= purge_span(a, s);
    }
#if !RSB_FREESTANDING
    rsb_huge *expired[RSB_HUGE_CACHE];
    unsigned nexp = huge_cache_expire(a, all, now, expired);
    for (unsigned i = 0; i < nexp; i++) huge_unmap(a, expired[i]);
    released |= nexp != 0;
    a->purges += nexp;
#endif
    a->next_purge_ms = (a->dirty_head || a->huge_cached_bytes || RSB_LARGE_CACHED(a)) && a->purge_delay_ms >= 0
                           ? (uint64_t)rsb_os_now_ms() + (uint64_t)a->purge_delay_ms
                           : UINT64_MAX;
    return released;
}

void rsb_pages_init(rsb_arena *a) {
    a->next_purge_ms = UINT64_MAX;
}

#if !RSB_FREESTANDING
/* --- huge blocks ----------------------------------------------------------- */

static size_t huge_offset(size_t align) {
    if (align > RSB_CHUNK_SIZE) return RSB_CHUNK_SIZE;
    return align > 64 ? align : 64;
}

/* A cached mapping with the same block offset, a block address aligned as
 * asked (offsets coincide for every alignment from a chunk up), and a size
 * between the need and twice the need (reuse never more than doubles the
 * footprint). */
static rsb_huge *huge_cache_take(rsb_arena *a, size_t off, size_t align, size_t map) {
    rsb_huge *best = NULL;
    unsigned bi = 0;
    rsb_lock_acquire(&a->lock);
    for (unsigned i = 0; i < RSB_HUGE_CACHE; i++) {
        rsb_huge *h = a->huge_cache[i];
        if (h && h->offset == off && (((uintptr_t)h + off) & (align - 1)) == 0 &&
            h->map_size >= map && h->map_size / 2 <= map &&
            (!best || h->map_size < best->map_size))
            best = h, bi = i;
    }
    if (best) {
        a->huge_cache[bi] = NULL;
        a->huge_cached_bytes -= best->map_size;
    }
    rsb_lock_release(&a->lock);
    return best;
}

void *rsb_huge_alloc(rsb_arena *a, size_t size, size_t align, bool *zero) {
    size_t off = huge_offset(align);
    if (size > (size_t)PTRDIFF_MAX - off - rsb_os_page - RSB_CHUNK_SIZE) return NULL;
    size_t map = rsb_align_up(off + size, rsb_os_page);
    rsb_huge *h = huge_cache_take(a, off, align ? align : 1, map);
    if (h) {
        h->kind = RSB_CHUNK_HUGE_KIND;
        __atomic_fetch_add(&a->huge_count, 1, __ATOMIC_RELAXED);
        *zero = false;
        return (char *)h + off;
    }
    h = align > RSB_CHUNK_SIZE ? rsb_os_map(map, align, RSB_CHUNK_SIZE) : rsb_os_map(map, RSB_CHUNK_SIZE, 0);
    if (!h) return NULL;
    h->magic = RSB_CHUNK_MAGIC;
    h->kind = RSB_CHUNK_HUGE_KIND;
    h->map_size = map;
    h->offset = off;
    registry_set((uintptr_t)h, RSB_REG_HUGE);
    __atomic_fetch_add(&a->huge_mapped, map, __ATOMIC_RELAXED);
    __atomic_fetch_add(&a->huge_count, 1, __ATOMIC_RELAXED);
    *zero = true;
    return (char *)h + off;
}

static void huge_unmap(rsb_arena *a, rsb_huge *h) {
    size_t map = h->map_size;
    registry_set((uintptr_t)h, RSB_REG_NONE);
    h->magic = 0;
    __atomic_fetch_sub(&a->huge_mapped, map, __ATOMIC_RELAXED);
    rsb_os_unmap(h, map);
}

void rsb_huge_free(rsb_arena *a, rsb_huge *h) {
    __atomic_fetch_sub(&a->huge_count, 1, __ATOMIC_RELAXED);
    rsb_huge *evict = NULL;
    if (a->purge_delay_ms != 0 && h->map_size <= RSB_HUGE_CACHE_MAX_BYTES / 4) {
        rsb_lock_acquire(&a->lock);
        unsigned slot = 0;
        for (unsigned i = 0; i < RSB_HUGE_CACHE; i++) { /* an empty slot, else the oldest */
            if (!a->huge_cache[i]) {
                slot = i;
                break;
            }
            if (a->huge_cache[i]->freed_ms < a->huge_cache[slot]->freed_ms) slot = i;
        }
        evict = a->huge_cache[slot];
        if (evict) a->huge_cached_bytes -= evict->map_size;
        h->kind = RSB_CHUNK_HUGE_CACHED;
        h->freed_ms = (uint32_t)rsb_os_now_ms();
        a->huge_cache[slot] = h;
        a->huge_cached_bytes += h->map_size;
        if (a->next_purge_ms == UINT64_MAX && a->purge_delay_ms > 0)
            a->next_purge_ms = rsb_os_now_ms() + (uint64_t)a->purge_delay_ms;
        maybe_purge(a);
        h = NULL;
        /* Never keep more than the byte cap: evict the oldest beyond it. */
        rsb_huge *over = NULL;
        if (a->huge_cached_bytes > RSB_HUGE_CACHE_MAX_BYTES) {
            for (unsigned i = 0; i < RSB_HUGE_CACHE; i++)
                if (a->huge_cache[i] && a->huge_cache[i] != a->huge_cache[slot] &&
                    (!over || a->huge_cache[i]->freed_ms < over->freed_ms))
                    over = a->huge_cache[i];
            for (unsigned i = 0; over && i < RSB_HUGE_CACHE; i++)
                if (a->huge_cache[i] == over) a->huge_cache[i] = NULL;
            if (over) a->huge_cached_bytes -= over->map_size;
        }
        rsb_lock_release(&a->lock);
        if (over) huge_unmap(a, over);
    }
    if (evict) huge_unmap(a, evict);
    if (h) huge_unmap(a, h);
}

/* Unmap cached huge mappings freed at least the purge delay ago (all if
 * `all`).  Arena lock held; the unmapping happens after it is released, so
 * they are collected into out[] (RSB_HUGE_CACHE entries). */
static unsigned huge_cache_expire(rsb_arena *a, bool all, uint32_t now, rsb_huge **out) {
    unsigned n = 0;
    for (unsigned i = 0; i < RSB_HUGE_CACHE; i++) {
        rsb_huge *h = a->huge_cache[i];
        if (h && (all || (a->purge_delay_ms >= 0 && now - h->freed_ms >= (uint32_t)a->purge_delay_ms))) {
            a->huge_cache[i] = NULL;
            a->huge_cached_bytes -= h->map_size;
            out[n++] = h;
        }
    }
    return n;
}

/* Resize without copying: shrink or grow in place, else move the pages to a
 * new chunk-aligned reservation with mremap.  NULL (block intact) on failure. */
void *rsb_huge_realloc(rsb_arena *a, rsb_huge *h, size_t size) {
    size_t off = h->offset, old = h->map_size;
    if (size > (size_t)PTRDIFF_MAX - off - rsb_os_page) return NULL;
    size_t map = rsb_align_up(off + size, rsb_os_page);
    if (map == old) return (char *)h + off;
    if (map < old) {
        rsb_os_unmap((char *)h + map, old - map);
    } else if (!rsb_os_remap_inplace(h, old, map)) {
        if (off == RSB_CHUNK_SIZE) return NULL; /* alignment above a chunk: caller copies */
        rsb_huge *n = rsb_os_map(map, RSB_CHUNK_SIZE, 0);
        if (!n) return NULL;
        /* Clear h's entry while h is still mapped: once mremap has moved the
         * pages, another thread may map a chunk at h and set its entry. */
        registry_set((uintptr_t)h, RSB_REG_NONE);
        if (!rsb_os_remap_to(h, old, map, n)) {
            registry_set((uintptr_t)h, RSB_REG_HUGE);
            rsb_os_unmap(n, map);
            return NULL;
        }
        h = n;
        registry_set((uintptr_t)h, RSB_REG_HUGE);
    }
    h->map_size = map;
    if (map > old)
        __atomic_fetch_add(&a->huge_mapped, map - old, __ATOMIC_RELAXED);
    else
        __atomic_fetch_sub(&a->huge_mapped, old - map, __ATOMIC_RELAXED);
    return (char *)h + off;
}
#endif

/* --- self-check ------------------------------------------------------------ */

void rsb_pages_check(rsb_arena *a) {
#if !RSB_FREESTANDING
    size_t dirty = 0;
    for (rsb_span *s = a->dirty_head; s; s = s->u.f.dnext) {
        if (s->kind != RSB_SPAN_FREE || !(s->flags & RSB_SF_DIRTY))
            rsb_assert_fail("dirty list holds a non-dirty span", __FILE__, __LINE__);
        dirty += (size_t)s->npages << RSB_PAGE_SHIFT;
    }
    if (dirty != a->dirty_bytes) rsb_assert_fail("dirty_bytes mismatch", __FILE__, __LINE__);
#endif
    for (rsb_chunk *c = a->chunks; c; c = c->next) {
        uint32_t i = c->first_page, used = 0;
        bool prev_free = false;
        while (i < c->npages) {
            rsb_span *s = &c->pages[i];
            if (s->head != i || s->npages == 0 || i + s->npages > c->npages)
                rsb_assert_fail("span chain broken", __FILE__, __LINE__);
            if (c->pages[i + s->npages - 1].head != i)
                rsb_assert_fail("span tail tag wrong", __FILE__, __LINE__);
            if (s->kind == RSB_SPAN_FREE) {
                if (prev_free) rsb_assert_fail("two adjacent free spans", __FILE__, __LINE__);
                unsigned b = bin_of(s->npages);
                rsb_span *x = a->free_bins[b];
                while (x && x != s) x = rsb_span_next(x);
                if (!x) rsb_assert_fail("free span not in its bin", __FILE__, __LINE__);
                prev_free = true;
            } else if (s->kind == RSB_SPAN_SLAB || s->kind == RSB_SPAN_LARGE) {
                used += s->npages;
                prev_free = false;
                if (s->kind == RSB_SPAN_SLAB)
                    for (uint32_t j = 0; j < s->npages; j++)
                        if (c->pages[i + j].head != i)
                            rsb_assert_fail("slab page head wrong", __FILE__, __LINE__);
            } else {
                rsb_assert_fail("dead span in chain", __FILE__, __LINE__);
            }
            i += s->npages;
        }
        if (used != c->used_pages) rsb_assert_fail("used_pages mismatch", __FILE__, __LINE__);
    }
}
