/*
 * The page allocator: spans of pages carved from chunks, merged when freed,
 * returned to the OS after the purge delay; spare page runs; the counters
 * of huge mappings.  One rsb_pages per allocator, behind one spinlock.
 *
 * Free spans are kept in buckets by page count: exact counts up to 32, then
 * four buckets per doubling, so a search that starts one bucket up is a good
 * fit.  (A "bin" is something else: a cache's slabs of one size class.)
 */
#ifndef RSB_PAGES_H
#define RSB_PAGES_H

#include "../spinlock.h"
#include "chunk.h"
#include "registry.h"

#define RSB_BUCKETS 192
#define RSB_BUCKET_WORDS ((RSB_BUCKETS + 63) / 64)

/*
 * Invariants (page lock held; rsb_pages_check verifies them all):
 *   - every FREE span is in the bucket of its page count, and its bit in
 *     bucket_map is set iff that bucket is not empty; no two FREE spans are
 *     adjacent (they merge when freed);
 *   - a FREE span has RSB_SF_DIRTY iff it is on the dirty list (hosted); the
 *     list is ordered by freed_ms; dirty_bytes is its total size; a span
 *     whose purge failed leaves the list with RSB_SF_STALE instead (its bytes
 *     are not known to be zero);
 *   - run_bytes is the size of the live (not spare) page runs;
 *   - spare_runs[0 .. nspare_runs) are RUN spans with RSB_SF_SPARE, oldest
 *     first, spare_run_bytes in all; they count as used pages of their chunk;
 *   - next_purge_ms is UINT64_MAX iff there is nothing to purge later.
 * huge_mapped and huge_count are updated with atomics, without the lock.
 */
typedef struct rsb_pages {
    rsb_lock lock;
    int32_t purge_delay_ms;      /* -1: never purge */
    uint64_t next_purge_ms;
    rsb_span *buckets[RSB_BUCKETS];
    uint64_t bucket_map[RSB_BUCKET_WORDS];
    rsb_span *dirty_head, *dirty_tail; /* FREE spans with RSB_SF_DIRTY, oldest first */
    rsb_chunk *chunks;
    uint32_t nchunks;
    uint32_t nspare_runs;
    size_t mapped;               /* bytes of chunks (huge blocks: huge_mapped) */
    size_t dirty_bytes;
    size_t run_bytes;
    uint64_t purges;             /* madvise/munmap calls that gave memory back */
    rsb_span *spare_runs[RSB_SPARE_RUNS];
    uint32_t spare_run_puts;     /* puts since the last purge check */
    size_t spare_run_bytes;
    /* Huge blocks (src/page/huge.c). */
    size_t huge_mapped;          /* atomic; includes the spare mappings */
    size_t huge_count;           /* atomic; live huge blocks */
    struct rsb_huge *spare_huge[RSB_SPARE_HUGE]; /* page lock */
    size_t spare_huge_bytes;     /* page lock; read without it by stats */
    struct rsb_huge *slack_huge[RSB_SPARE_HUGE]; /* live blocks with pages past their end */
    uint32_t nslack_huge;        /* entries of slack_huge in use */
    /* Set by rsb_huge_init: give back spare huge mappings freed at least the
     * purge delay ago (all if `all`) as part of a purge. */
    bool (*expire_huge)(struct rsb_pages *pg, bool all, uint32_t now_ms);
} rsb_pages;

/* --- lookup ------------------------------------------------------------------ */

/* The header (chunk or huge) that covers block pointer p, or NULL if p is
 * not in memory these pages manage.  The header of the chunk or huge
 * mapping holding p is at (p - 1) rounded down to RSB_CHUNK_SIZE, because
 * every block starts strictly after its header and at most RSB_CHUNK_SIZE
 * bytes after it; the registry says whether we mapped it. */
RSB_INLINE uintptr_t rsb_header_base(const void *p) {
    return ((uintptr_t)p - 1) & ~(uintptr_t)(RSB_CHUNK_SIZE - 1);
}
RSB_INLINE void *rsb_header_of(const rsb_pages *pg, const void *p) {
    (void)pg;
    uintptr_t base = rsb_header_base(p);
    if (rsb_registry_get(base) == 0) return NULL;
    if (base == 0) __builtin_unreachable(); /* the registry never holds address 0 */
    return (void *)base;
}
/* The page chunk (never a huge header) that covers p, or NULL. */
RSB_INLINE rsb_chunk *rsb_pages_chunk_of(const rsb_pages *pg, const void *p) {
    (void)pg;
    uintptr_t base = rsb_header_base(p);
    if (rsb_registry_get(base) != RSB_HDR_PAGES) return NULL;
    if (base == 0) __builtin_unreachable();
    return (rsb_chunk *)base;
}

/* --- the page allocator (page lock held unless said otherwise) ---------------- */

void rsb_pages_init(rsb_pages *pg, int32_t purge_delay_ms);
/* Take a span of n pages and make it a SLAB (every page names its head) or
 * RUN span; NULL if out of memory.  *zero tells whether every byte is zero. */
rsb_span *rsb_pages_alloc(rsb_pages *pg, uint32_t n, uint8_t kind, bool *zero);
/* Grow page run s to n pages with the free pages right after it; false if
 * they are not free. */
bool rsb_pages_grow(rsb_pages *pg, rsb_span *s, uint32_t n);
/* Cut page run s after its first k pages (0 < k < npages): s keeps them,
 * the page run returned has the rest. */
rsb_span *rsb_pages_split(rsb_pages *pg, rsb_span *s, uint32_t k);
/* Give a span (SLAB or RUN) back; it is merged with free neighbours. */
void rsb_pages_free(rsb_pages *pg, rsb_span *s);
/* A page run of n pages: a spare one made live again, else a new one. */
rsb_span *rsb_run_alloc(rsb_pages *pg, uint32_t n, bool *zero);
/* Free page run s: kept as a spare (the oldest spare may go back to the
 * page allocator to make room), or given back at once if purging is
 * immediate.  False if s is already a spare (a double free). */
bool rsb_run_free(rsb_pages *pg, rsb_span *s);
/* Return free memory to the OS: purge dirty spans freed at least the purge
 * delay ago (all of them, and every spare, if `all`), unmap empty chunks
 * and expired spare huge mappings.  True if anything went back. */
bool rsb_pages_purge(rsb_pages *pg, bool all);
/* Self-check of every chunk, bucket and list (tests, RSB_EXPENSIVE). */
void rsb_pages_check(const rsb_pages *pg);

/* --- chunks (chunk_os.c) -------------------------------------------------------- */

/* A new chunk, its pages one FREE span in a bucket; NULL if out of memory. */
rsb_chunk *rsb_chunk_new(rsb_pages *pg);
/* Unmap an empty chunk (its one FREE span already out of the buckets). */
void rsb_chunk_release(rsb_pages *pg, rsb_chunk *c);
/* Make [first, npages) of c one FREE span and link c in. */
void rsb_chunk_add(rsb_pages *pg, rsb_chunk *c, char *base, uint32_t npages, uint32_t first);

/* Internal to the page layer (pages.c, huge.c): the purge clock. */
void rsb_pages_arm_purge(rsb_pages *pg);
void rsb_pages_maybe_purge(rsb_pages *pg);

#endif
