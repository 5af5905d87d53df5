/*
 * Page allocator: chunks of pages, spans, and the arena that owns them.
 *
 * Glossary
 *   page   the allocator's unit, RSB_PAGE_SIZE bytes (64 KiB hosted), always
 *          a multiple of the OS page.  Not the OS page.
 *   chunk  a reservation of pages.  Hosted: RSB_CHUNK_SIZE bytes mapped at a
 *          RSB_CHUNK_SIZE-aligned address; page 0 holds the chunk header and
 *          one descriptor per page (metadata never shares a page with user
 *          blocks).  Freestanding: the caller's region, descriptors first.
 *   span   a run of pages described by the descriptor of its first ("head")
 *          page: FREE (in the page allocator), SLAB (blocks of one size
 *          class, owned by one cache) or LARGE (one block, a "medium" size).
 *   huge   a block above RSB_MEDIUM_MAX: its own mapping, whose first bytes
 *          are an rsb_huge header at a chunk-aligned address.
 *
 * Finding the metadata of a pointer p (hosted): the header of the chunk or
 * huge mapping that holds p is at (p - 1) rounded down to RSB_CHUNK_SIZE,
 * because every block starts strictly after its header and at most
 * RSB_CHUNK_SIZE bytes after it.  A global byte map (the registry) says which
 * chunk-aligned addresses are ours, and whether each holds a page chunk or a
 * huge block, so a foreign pointer is recognised without touching memory we
 * do not own.
 */
#ifndef RSB_PAGE_ALLOC_H
#define RSB_PAGE_ALLOC_H

#include "spinlock.h"
#include "util.h"

enum rsb_span_kind { RSB_SPAN_DEAD = 0, RSB_SPAN_FREE, RSB_SPAN_SLAB, RSB_SPAN_LARGE };
enum rsb_span_flags {
    RSB_SF_IN_BIN = 1, /* SLAB: it is its bin's `cur` or on its partial list   */
    RSB_SF_DIRTY = 2,  /* FREE: some page may be resident (not purged yet)     */
    RSB_SF_ZERO = 4,   /* FREE/LARGE: every byte is known to be zero           */
    RSB_SF_CACHED = 8, /* LARGE: freed, kept whole in the arena's large cache  */
};

typedef struct rsb_span rsb_span;

/*
 * Page descriptor; the descriptor of a head page describes the whole span.
 *
 * Invariants
 *   - d->head is the index of the head page of the span containing page d,
 *     for every page of a SLAB span and for the first and last page of FREE
 *     and LARGE spans.  Interior pages of FREE/LARGE spans may hold stale
 *     values: a lookup is valid only if pages[h].head == h, pages[h].kind is
 *     not DEAD and page d lies within [h, h + npages).  A head that stops
 *     being one (merged into a neighbour) is set to DEAD, so a stale pointer
 *     to it fails that test.
 *   - SLAB: used + (blocks on `free`) + (capacity - bump) == capacity, where
 *     blocks freed by other caches but not yet drained still count as used.
 *     owner and cls never change while kind == SLAB.  Protected by the owner
 *     cache's lock.
 *   - FREE/LARGE and every field not listed above: protected by the arena lock.
 */
#if RSB_FREESTANDING
/* Freestanding (librsbmalloc_heap.a): one descriptor per page of a small
 * region, 16 bytes on every target.  A heap has one chunk (its region) and
 * one cache, so links are page indices and a slab's free list head is an
 * offset inside the slab; a span's address, block size and capacity follow
 * from its page index and class (read them through the accessors below,
 * never the fields).  At most 65535 pages per heap; no dirty list (there is
 * no OS to purge to). */
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
    uint16_t next, prev;         /* page index + 1 (0: none); lists as below */
    rsb_pgidx head;              /* page index of this page's span head */
    rsb_pgidx npages;            /* head only: length of the span in pages */
    uint8_t cls;
    uint8_t kind : 2;
    uint8_t flags : 4;           /* no owner: one cache per heap (rsb_span_owner) */
};
_Static_assert(sizeof(rsb_span) == 16, "compact descriptor");
#else
typedef uint32_t rsb_nblk;
typedef uint32_t rsb_pgidx;

struct rsb_span {
    union {
        struct {                 /* SLAB */
            void *free;          /* free blocks, linked through their first word */
            rsb_nblk used;       /* blocks handed out and not freed locally */
            rsb_nblk bump;       /* blocks [bump, capacity) were never handed out */
            rsb_nblk capacity;
            rsb_nblk block;      /* block size in bytes (rsb_class_size[cls]) */
        } s;
        struct {                 /* FREE */
            rsb_span *dnext, *dprev; /* arena dirty list, oldest first */
            uint32_t freed_ms;   /* when it was freed (purge delay) */
        } f;
    } u;
    char *start;                 /* address of the span's first byte */
    rsb_span *next, *prev;       /* SLAB: bin partial list; FREE: size bin list */
    uint8_t kind;
    uint8_t cls;
    uint8_t flags;
    uint8_t _pad;
    uint16_t owner;              /* SLAB: index of the owning cache */
    uint16_t _pad2;
    rsb_pgidx head;              /* page index of this page's span head */
    rsb_pgidx npages;            /* head only: length of the span in pages */
};
_Static_assert(sizeof(void *) != 8 || sizeof(rsb_span) == 64, "descriptor is one cache line");
#endif

enum { RSB_CHUNK_PAGES_KIND = 1, RSB_CHUNK_HUGE_KIND = 2, RSB_CHUNK_HUGE_CACHED = 3 };
#define RSB_CHUNK_MAGIC 0x7273626d616c6c63ull /* "rsbmallc" */

/* Header of a page chunk.  Invariant: pages[0] is never part of a span;
 * pages[1 .. npages-1] are covered exactly by disjoint spans. */
typedef struct rsb_chunk {
    uint64_t magic;
    uint32_t kind;               /* RSB_CHUNK_PAGES_KIND */
    uint32_t npages;             /* pages including the metadata page(s) */
    uint32_t used_pages;         /* pages in SLAB or LARGE spans */
    uint32_t first_page;         /* first page that may belong to a span */
    char *base;                  /* address of page 0 */
    struct rsb_chunk *next, *prev; /* arena chunk list */
    uint64_t _pad[2];
    rsb_span pages[];            /* one per page, cache-line aligned */
} rsb_chunk;

/* --- span fields the two descriptor layouts store differently ----------- */

/* The chunk of head span s (s is pages[s->head]). */
RSB_INLINE rsb_chunk *rsb_chunk_of_span(const rsb_span *s) {
    return (rsb_chunk *)((char *)(s - s->head) - __builtin_offsetof(rsb_chunk, pages));
}

/* Address of head span s's first byte. */
RSB_INLINE char *rsb_span_start(const rsb_span *s) {
#if RSB_FREESTANDING
    return rsb_chunk_of_span(s)->base + ((size_t)s->head << RSB_PAGE_SHIFT);
#else
    return s->start;
#endif
}

/* SLAB: index of the cache that owns it. */
RSB_INLINE uint32_t rsb_span_owner(const rsb_span *s) {
#if RSB_FREESTANDING
    (void)s;
    return 0;
#else
    return s->owner;
#endif
}

/* List links between head spans of one chunk (the freestanding region is
 * the only chunk of its arena). */
#if RSB_FREESTANDING
RSB_INLINE rsb_span *rsb_span_at_(const rsb_span *s, uint16_t link) {
    return link ? (rsb_span *)(s - s->head) + (link - 1) : NULL;
}
RSB_INLINE uint16_t rsb_span_link_(const rsb_span *t) { return t ? (uint16_t)(t->head + 1) : 0; }
RSB_INLINE rsb_span *rsb_span_next(const rsb_span *s) { return rsb_span_at_(s, s->next); }
RSB_INLINE rsb_span *rsb_span_prev(const rsb_span *s) { return rsb_span_at_(s, s->prev); }
RSB_INLINE void rsb_span_set_next(rsb_span *s, const rsb_span *t) { s->next = rsb_span_link_(t); }
RSB_INLINE void rsb_span_set_prev(rsb_span *s, const rsb_span *t) { s->prev = rsb_span_link_(t); }
#else
RSB_INLINE rsb_span *rsb_span_next(const rsb_span *s) { return s->next; }
RSB_INLINE rsb_span *rsb_span_prev(const rsb_span *s) { return s->prev; }
RSB_INLINE void rsb_span_set_next(rsb_span *s, rsb_span *t) { s->next = t; }
RSB_INLINE void rsb_span_set_prev(rsb_span *s, rsb_span *t) { s->prev = t; }
#endif

/* Doubly linked lists of head spans (free-size bins, bins' partial lists). */
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

/* Header of a huge block, at a chunk-aligned address.  The block starts at
 * (char *)h + offset, 0 < offset <= RSB_CHUNK_SIZE, and extends to the end
 * of the mapping (all of it usable). */
typedef struct rsb_huge {
    uint64_t magic;
    uint32_t kind;               /* RSB_CHUNK_HUGE_KIND, or _CACHED while freed */
    uint32_t freed_ms;           /* _CACHED: when it was freed */
    size_t map_size;
    size_t offset;
} rsb_huge;

/* Freed huge mappings kept for reuse, so that a program that allocates and
 * frees big blocks in a loop does not pay mmap/munmap and page faults each
 * time.  They stay registered with kind _CACHED (a second free of the old
 * pointer is still diagnosed) and are unmapped after the purge delay. */
#define RSB_HUGE_CACHE 8
#define RSB_HUGE_CACHE_MAX_BYTES ((size_t)256 << 20)

/* Freed page runs (LARGE spans) kept whole for the next request of the
 * same page count, so a program that allocates and frees a medium block in
 * a loop skips the merge, the split, the bins and the clock.  Hosted only;
 * at most RSB_LARGE_CACHE spans (RSB_LARGE_CACHE * 2 MiB); they stay LARGE
 * with RSB_SF_CACHED (a second free is still diagnosed), count as used
 * pages of their chunk and as free dirty memory in the statistics, and go
 * back to the page allocator at the next purge. */
#define RSB_LARGE_CACHE 4

/* Free spans are kept in size bins: exact page counts up to 32, then four
 * bins per doubling (so a search that starts one bin up is a good fit). */
#if RSB_FREESTANDING
#define RSB_FREE_BINS 76 /* bin_of(RSB_MAX_REGION_PAGES) + 1 */
#else
#define RSB_FREE_BINS 192
#endif
#define RSB_FREE_WORDS ((RSB_FREE_BINS + 63) / 64)

struct rsb_cache;

typedef struct rsb_arena {
    /* Read on every malloc/free; written once at init. */
    struct rsb_cache *caches;
    uint32_t ncaches;            /* power of two */
    uint32_t ready;              /* 1 once init has finished */
    uint32_t fast;               /* ready and no option needs the generic path */
    uint32_t junk;               /* hosted RSBMALLOC_JUNK: fill freed page runs */
    uint64_t key;                /* random: double-free marker = key ^ address */
    uint64_t link_key;           /* random: RSB_HARDEN free-list link encoding */

    /* Everything below: protected by `lock`. */
    rsb_lock lock __attribute__((aligned(RSB_CACHELINE)));
    rsb_span *free_bins[RSB_FREE_BINS];
    uint64_t free_map[RSB_FREE_WORDS];
    rsb_span *dirty_head, *dirty_tail; /* FREE spans with RSB_SF_DIRTY, oldest first */
    rsb_chunk *chunks;
    uint32_t nchunks;
    int32_t purge_delay_ms;      /* -1: never purge */
    uint64_t next_purge_ms;
    size_t mapped;               /* bytes of chunks (huge blocks: huge_mapped) */
    size_t dirty_bytes;          /* bytes in DIRTY free spans */
    size_t large_bytes;          /* bytes in LARGE spans */
    uint64_t purges;
    /* Huge blocks: updated atomically, no lock. */
    size_t huge_mapped;          /* includes the huge cache */
    size_t huge_count;
    rsb_huge *huge_cache[RSB_HUGE_CACHE]; /* arena lock */
    size_t huge_cached_bytes;
#if !RSB_FREESTANDING
    /* Freed LARGE spans kept whole (RSB_SF_CACHED), oldest first. */
    rsb_span *large_cache[RSB_LARGE_CACHE];
    uint32_t large_cached;       /* entries in use */
    uint32_t large_cache_puts;   /* puts since the last purge check */
    size_t large_cached_bytes;
#endif
    /* Freestanding: the single region chunk; hosted: NULL. */
    rsb_chunk *region;
} rsb_arena;

/* --- lookup ------------------------------------------------------------ */

#if !RSB_FREESTANDING
/* Registry: one byte per chunk-aligned address below 2^47 saying what is
 * mapped there (a byte, not a bit, so that free's fast path tests "a page
 * chunk" with one compare and never reads a huge block's header). */
#define RSB_ADDR_BITS 47
#define RSB_REGISTRY_ENTRIES ((uintptr_t)1 << (RSB_ADDR_BITS - RSB_CHUNK_SHIFT))
enum { RSB_REG_NONE = 0, RSB_REG_PAGES = 1, RSB_REG_HUGE = 2 };
extern uint8_t rsb_registry[RSB_REGISTRY_ENTRIES];
/* Where the header covering block pointer p would be (see the top). */
RSB_INLINE uintptr_t rsb_header_base(const void *p) {
    return ((uintptr_t)p - 1) & ~(uintptr_t)(RSB_CHUNK_SIZE - 1);
}
RSB_INLINE unsigned rsb_registry_get(uintptr_t base) {
    uintptr_t i = base >> RSB_CHUNK_SHIFT;
    if (unlikely(i >= RSB_REGISTRY_ENTRIES)) return RSB_REG_NONE;
    return __atomic_load_n(&rsb_registry[i], __ATOMIC_RELAXED);
}
#endif

/* The header (chunk or huge) that covers block pointer p, or NULL if p is
 * not in memory this arena manages. */
RSB_INLINE void *rsb_header_of(const rsb_arena *a, const void *p) {
#if RSB_FREESTANDING
    const rsb_chunk *c = a->region;
    uintptr_t off = (uintptr_t)p - (uintptr_t)c->base;
    return off < ((uintptr_t)c->npages << RSB_PAGE_SHIFT) ? (void *)c : NULL;
#else
    (void)a;
    uintptr_t base = rsb_header_base(p);
    if (rsb_registry_get(base) == RSB_REG_NONE) return NULL;
    if (base == 0) __builtin_unreachable(); /* the registry never holds address 0 */
    return (void *)base;
#endif
}

/* The page chunk (never a huge header) that covers p, or NULL. */
RSB_INLINE rsb_chunk *rsb_pages_chunk_of(const rsb_arena *a, const void *p) {
#if RSB_FREESTANDING
    return (rsb_chunk *)rsb_header_of(a, p); /* the region is the only chunk */
#else
    (void)a;
    uintptr_t base = rsb_header_base(p);
    if (rsb_registry_get(base) != RSB_REG_PAGES) return NULL;
    if (base == 0) __builtin_unreachable();
    return (rsb_chunk *)base;
#endif
}

/* The live span holding p inside chunk c, or NULL if p is in no live span
 * (metadata page, interior of a free or large span, beyond the end). */
RSB_INLINE rsb_span *rsb_span_of(const rsb_chunk *c, const void *p) {
    uintptr_t idx = ((uintptr_t)p - (uintptr_t)c->base) >> RSB_PAGE_SHIFT;
    if (unlikely(idx >= c->npages)) return NULL;
    uint32_t h = c->pages[idx].head;
    if (unlikely(h >= c->npages)) return NULL;
    const rsb_span *s = &c->pages[h];
    if (unlikely(s->head != h || s->kind == RSB_SPAN_DEAD || idx - h >= s->npages)) return NULL;
    return (rsb_span *)s;
}

/* Hot-path lookup of the span that may hold p, without validation: the
 * descriptor named by p's page.  Sound to use when the result's kind is
 * SLAB and p lies within [start, start + npages pages): a descriptor whose
 * kind is not DEAD is always a live head (heads that stop being heads are
 * set DEAD), and every page of a slab names its head.  Hosted: p's page
 * index is at most RSB_CHUNK_PAGES; the descriptor past the last one lies
 * in the metadata page and reads as DEAD. */
RSB_INLINE rsb_span *rsb_span_guess(const rsb_chunk *c, const void *p) {
#if RSB_FREESTANDING
    uintptr_t idx = ((uintptr_t)p - (uintptr_t)c->base) >> RSB_PAGE_SHIFT;
#else
    uintptr_t idx = ((uintptr_t)p - (uintptr_t)c) >> RSB_PAGE_SHIFT; /* hosted: base == c */
#endif
    return (rsb_span *)&c->pages[c->pages[idx].head];
}

/* --- page allocator ------------------------------------------------------ */

/* Take a span of n pages and make it a SLAB (every page names its head) or
 * LARGE span; NULL if out of memory.  *zero tells whether every byte is zero. */
rsb_span *rsb_pages_alloc(rsb_arena *a, uint32_t n, uint8_t kind, bool *zero);
/* Grow LARGE span s to n pages with the free pages right after it; false if
 * they are not free. */
bool rsb_pages_grow(rsb_arena *a, rsb_span *s, uint32_t n);
/* Give a span (SLAB or LARGE) back; it is merged with free neighbours. */
void rsb_pages_free(rsb_arena *a, rsb_span *s);
/* Return free memory to the OS: purge dirty spans freed at least the purge
 * delay ago (all of them if `all`), unmap empty chunks.  Lock held. */
bool rsb_pages_purge(rsb_arena *a, bool all);
#if !RSB_FREESTANDING
/* A cached LARGE span of exactly n pages, made live again, or NULL. */
rsb_span *rsb_large_cache_take(rsb_arena *a, uint32_t n);
/* Free LARGE span s into the cache (the oldest entry may go to
 * rsb_pages_free to make room). */
void rsb_large_cache_put(rsb_arena *a, rsb_span *s);
#endif
/* Init arena bookkeeping. */
void rsb_pages_init(rsb_arena *a);
#if RSB_FREESTANDING
/* Make the caller's region the arena's only chunk: header c, descriptors
 * c->pages[0 .. npages-1], pages from base (all of them free, not zero). */
void rsb_pages_add_region(rsb_arena *a, rsb_chunk *c, char *base, uint32_t npages);
/* Cut LARGE span s after its first k pages (0 < k < npages): s keeps them,
 * the LARGE span returned has the rest (aligned page runs). */
rsb_span *rsb_pages_split(rsb_arena *a, rsb_span *s, uint32_t k);
#endif

#if !RSB_FREESTANDING
void *rsb_huge_alloc(rsb_arena *a, size_t size, size_t align, bool *zero);
void rsb_huge_free(rsb_arena *a, rsb_huge *h);
void *rsb_huge_realloc(rsb_arena *a, rsb_huge *h, size_t size);
static inline size_t rsb_huge_usable(const rsb_huge *h) { return h->map_size - h->offset; }
#endif

/* Self-check of every chunk (tests, RSB_DEBUG >= 2).  Lock held. */
void rsb_pages_check(rsb_arena *a);

#endif
