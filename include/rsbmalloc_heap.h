/*
 * rsbmalloc_heap.h — a heap over a caller-supplied region, for kernels and
 * bare-metal firmware (librsbmalloc_heap.a, built in every configuration of
 * the project and alone with `meson setup -Dfreestanding=true`).  No OS, no
 * libc: the library's objects reference no symbol outside themselves.
 *
 * Two allocators share the region (src/heap.h, src/fit/fit.h):
 *   - a two-level segregated good-fit allocator (TLSF's scheme) serves
 *     every block that a slab does not: it splits free memory to the request
 *     rounded up to 16 bytes, plus an 8-byte header, and merges a freed
 *     block with both neighbours at once;
 *   - slabs serve sizes up to 256 bytes (16-byte classes) with no per-block
 *     header, once the heap holds 16 live blocks of that size (until then
 *     those sizes are good-fit blocks too: a slab for two blocks would waste
 *     most of itself).  A slab is itself a good-fit block of whole windows
 *     (2 KiB on 64-bit targets, 512 B on 32-bit ones), which it returns when
 *     its last block is freed.
 * rsb_heap_init() puts, at the start of the region, the heap header, the
 * free lists (4 bytes per list: 32 per power of two up to the heap's size)
 * and a one-byte-per-window map; the rest is the pool.
 *
 * Build options (meson, see meson_options.txt): heap_window_shift (log2 of
 * the window, 9..16; 0 = the default) and heap_slab_max_shift (log2 of the
 * largest slab class, 4..8; 0 = 8, 256 B).  rsb_heap_stats() reports them.
 *
 * Bounded time, as o1heap states it: the worst case of every operation is a
 * fixed number of steps, none of which depends on the number of blocks, on
 * their sizes or on the size of the heap (no loop over blocks or lists).
 * The steps:
 *   search   find a free block: one count-leading-zeros for the list, at
 *            most two count-trailing-zeros on the two bitmaps;
 *   unlink / insert   take a free block off its list / put one on it (a
 *            bitmap bit set or cleared when the list empties or fills);
 *   release  give a slab back: at most M map entries cleared, then a
 *            good-fit free (at most 2 unlinks and 1 insert);
 * with, for the default build (src/heap.h), C = 24 slab classes, H = 4 slab
 * sizes tried, and M map entries per slab: a slab's extent is at most
 * 16 KiB + 16 B and a window at least 512 B, so M <= 34; M <= 10 with the
 * 2 KiB windows of heaps of 512 KiB and more:
 *   rsb_heap_alloc: a slab pop, else a switch to a queued slab (O(1)), else
 *     up to H slab attempts (a search each; the one that succeeds: 1 unlink,
 *     1 insert, M map entries set) and a good-fit search (1 unlink, 1
 *     insert).  When that finds nothing: C releases (every class's empty
 *     reserve slab) and one more search.  At most H + 2 = 6 searches and
 *     C = 24 releases.
 *   rsb_heap_alloc_aligned: at most 2 searches, 1 unlink, 2 inserts (the
 *     gap before the block and the rest after it), plus the C releases and
 *     2 searches again when nothing fits.
 *   rsb_heap_free: a slab block: a push, and when the slab empties 1
 *     release; a good-fit block: at most 2 unlinks (the free neighbours it
 *     merges with) and 1 insert.
 *   rsb_heap_realloc: in place (shrink, or growth into the free block
 *     after): 1 unlink, 1 insert; else an allocation, a copy of the block
 *     (the only step proportional to a size) and a free.
 *   rsb_heap_stats, rsb_heap_check: walk the heap (proportional to it);
 *     nothing else does.
 *   Measured (x86-64, gcc -O3, default layout; every worst case is built
 *   and run by bench/embedded/longest_path.c, and the test
 *   embedded-longest-bound fails above the bound in brackets): the longest
 *   allocation, 24 releases then a good-fit block, 4,204 instructions
 *   [5,500]; a failing allocation 283 [400]; the longest free, an emptied
 *   slab merged both ways, 302 [400]; the common paths: slab pop 33 [60],
 *   slab push 84 [120].  Table: freestanding/README-baremetal.md.
 *
 * Thread safety: none by default, and none needed on single-core firmware
 * that does not allocate from interrupt handlers.  Otherwise give each heap
 * a lock with rsb_heap_set_lock() (a mutex, or a function that masks
 * interrupts), or rsb_heap_use_spinlock() on targets with atomics.  Separate
 * heaps need no common lock.
 *
 * Errors: a pointer that was never returned by this heap, a pointer inside
 * a block, and a block freed twice are detected by rsb_heap_free,
 * rsb_heap_realloc and rsb_heap_usable_size and reported through the heap's
 * error hook (default: a trap instruction).  If the hook returns, the
 * operation is ignored (free does nothing, realloc returns NULL, usable_size
 * returns 0) and the heap is intact.  Allocation failure is never an error:
 * it returns NULL.  How: a slab block is recognised by the window map (which
 * user data cannot reach) and its position; a good-fit block by its header,
 * whose first word is a keyed check of its address and second word, and a
 * freed block by its state (a slab block carries a keyed marker while free).
 * Not detected: a write past the end of a block (one that reaches the next
 * header is caught by rsb_heap_check); a pointer whose 8 bytes before it
 * were made, by the program, equal to the keyed check (a chance of 2^-32
 * for arbitrary data); a second free of a block whose memory has meanwhile
 * been handed out again at the same address, which frees the new block.
 */
#ifndef RSBMALLOC_HEAP_H
#define RSBMALLOC_HEAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RSB_HEAP_API __attribute__((visibility("default")))
#else
#define RSB_HEAP_API
#endif

typedef struct rsb_heap rsb_heap;

typedef struct rsb_heap_stats {
    size_t capacity;     /* the largest block right after init: the pool minus one header */
    size_t in_use;       /* bytes in live blocks, counted at their usable size */
    size_t peak;         /* highest in_use since init (never decreases) */
    size_t largest_free; /* the largest block rsb_heap_alloc can return now */
    size_t free_bytes;   /* bytes in free good-fit blocks, their headers included
                            (free blocks inside slabs excluded) */
    size_t slab_bytes;   /* bytes of the windows that slabs occupy */
    size_t overhead;     /* region bytes outside capacity: header, lists, window map, alignment */
    size_t small_max;    /* largest slab class; bigger blocks are always good-fit blocks */
    uint32_t window;     /* slab alignment and size unit, a build option */
    uint32_t classes;    /* slab classes: 16-byte steps up to small_max */
    uint32_t slabs;      /* slabs in the heap */
    uint64_t allocs;     /* successful allocations (realloc that moves counts one) */
    uint64_t frees;      /* blocks freed */
    uint64_t failures;   /* allocations that returned NULL (never decreases) */
} rsb_heap_stats_t;

typedef enum rsb_heap_error {
    RSB_HEAP_FOREIGN_POINTER = 1, /* not inside this heap's pool */
    RSB_HEAP_INVALID_POINTER = 2, /* inside the heap but not the start of a block */
    RSB_HEAP_DOUBLE_FREE = 3,     /* the start of a block that is not allocated */
} rsb_heap_error;

/* Error hook: called with the heap's lock released.  May return (the
 * operation is then ignored) or not (reset, longjmp, halt). */
typedef void (*rsb_heap_error_fn)(rsb_heap *h, rsb_heap_error err, const void *ptr, void *ctx);
typedef void (*rsb_heap_lock_fn)(void *ctx);

/* Make a heap of the region [mem, mem + len).  The region need not be
 * aligned: the heap header is placed at the next 64-byte boundary.  It must
 * stay valid and untouched by anything else while the heap is in use; there
 * is no destroy (stop using the heap and reuse the region).  At most 4 GiB
 * minus 4 KiB are used (block offsets are 32 bits); the rest of a larger
 * region is left alone.  Returns NULL if the region cannot hold the header
 * and one block of 24 bytes. */
RSB_HEAP_API rsb_heap *rsb_heap_init(void *mem, size_t len);

/* A block of at least size bytes, 16-byte aligned (size 0 gives a minimal
 * block), not zeroed.  NULL when the heap cannot satisfy it. */
RSB_HEAP_API void *rsb_heap_alloc(rsb_heap *h, size_t size);

/* As rsb_heap_alloc, aligned to align (a power of two).  NULL if align is
 * not a power of two, or when the heap cannot satisfy it. */
RSB_HEAP_API void *rsb_heap_alloc_aligned(rsb_heap *h, size_t align, size_t size);

/* Resize p (from this heap) keeping its contents up to the smaller size.
 * p == NULL: rsb_heap_alloc(h, size).  size == 0: frees p, returns NULL.
 * On failure returns NULL and p is unchanged and still allocated.  The
 * result keeps at least 16-byte alignment, not a larger one p was
 * allocated with. */
RSB_HEAP_API void *rsb_heap_realloc(rsb_heap *h, void *p, size_t size);

/* Give p back.  NULL is ignored; anything else not allocated from h is
 * reported through the error hook. */
RSB_HEAP_API void rsb_heap_free(rsb_heap *h, void *p);

/* Bytes usable at p (>= the size asked for); 0 for NULL. */
RSB_HEAP_API size_t rsb_heap_usable_size(rsb_heap *h, const void *p);

/* Snapshot of the heap.  First hands the empty slab each size class keeps
 * in reserve back to the good fit, so that after everything is freed
 * largest_free is back to capacity, its value right after rsb_heap_init. */
RSB_HEAP_API void rsb_heap_stats(rsb_heap *h, rsb_heap_stats_t *out);

/* Error hook for h (NULL: the default, a trap instruction). */
RSB_HEAP_API void rsb_heap_set_error_hook(rsb_heap *h, rsb_heap_error_fn fn, void *ctx);

/* Lock for h: lock(ctx) before and unlock(ctx) after each operation.  Both
 * NULL: no locking (the default). */
RSB_HEAP_API void rsb_heap_set_lock(rsb_heap *h, rsb_heap_lock_fn lock, rsb_heap_lock_fn unlock,
                                    void *ctx);

/* Use a built-in spinlock (test-and-test-and-set).  Returns 0, or -1 if the
 * target has no lock-free atomic int (then set a lock hook instead). */
RSB_HEAP_API int rsb_heap_use_spinlock(rsb_heap *h);

/* Walk every internal structure of h and check its invariants (tests,
 * debugging; time proportional to the heap).  An inconsistency calls the
 * panic hook.  Returns 0. */
RSB_HEAP_API int rsb_heap_check(rsb_heap *h);

/* Internal inconsistencies (only possible after memory corruption, or
 * compiled-in debug checks) are not recoverable: msg describes the problem,
 * then the program traps.  The hook, process-wide, runs first and should
 * not return (halt, reset, report). */
RSB_HEAP_API void rsb_heap_set_panic_hook(void (*fn)(const char *msg));

/* A short English name of an error ("double free"). */
RSB_HEAP_API const char *rsb_heap_error_name(rsb_heap_error err);

#ifdef __cplusplus
}
#endif

#endif
