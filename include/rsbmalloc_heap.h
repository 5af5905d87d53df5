/*
 * rsbmalloc_heap.h — the rsbmalloc core over a caller-supplied region, for
 * kernels and bare-metal firmware (librsbmalloc_heap.a, built with
 * `meson setup -Dfreestanding=true`).  No OS, no libc: the library's objects
 * reference no symbol outside themselves.
 *
 * It is the same page allocator, size classes and bins as the hosted
 * librsbmalloc.  rsb_heap_init() lays out, at the start of the region, the
 * heap header (arena and one cache), then one page descriptor per page; the
 * rest of the region, from a page-aligned address, is the pages.  Blocks up
 * to the largest size class come from slabs (pages cut into blocks of one
 * class, no per-block header); bigger blocks are runs of whole pages.
 *
 * Build options (meson, see meson_options.txt): heap_page_shift,
 * heap_small_max_shift, heap_class_steps, heap_max_slab_pages,
 * heap_min_class.  The values a build uses are reported by rsb_heap_stats()
 * (page_size, classes, small_max).
 *
 * Bounded time.  No operation scans the heap or a list of blocks.
 *   rsb_heap_alloc: a class lookup and a pop; when the class's slab is used
 *     up, a switch to another slab of the class, or a new slab (a search of
 *     a 76-bit map of free-page bins, a split, at most heap_max_slab_pages
 *     descriptors written) and the carving of at most 512 bytes of blocks
 *     (32 links for 16-byte blocks).  Only when the heap is full: each class
 *     hands back the one empty slab it may keep, and each larger class is
 *     tried once — O(number of classes), independent of the heap size.
 *   rsb_heap_free: O(1); a slab or page run that becomes free is merged
 *     with at most its two neighbours.
 *   rsb_heap_realloc: O(1) in place, else an alloc, a copy of the block
 *     and a free.
 *   Measured with callgrind (x86-64, default layout, 32 classes): the
 *   longest alloc path is about 2,900 instructions (full heap: 31 empty
 *   slabs handed back, then a new slab carved), a failing alloc 1,300, the
 *   longest free 330; the common paths 65 (alloc) and 100 (free).  See
 *   freestanding/README-baremetal.md.
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
 * it returns NULL.  Not detected: a write past the end of a block; a free
 * of a block carved but never handed out (only a pointer forged at a block
 * boundary can be one); a second free of a block whose memory has meanwhile
 * been handed out again (after its whole slab was freed and reused), which
 * frees the new block.
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
    size_t capacity;     /* bytes of pages the heap manages (region minus metadata) */
    size_t in_use;       /* bytes in live blocks, counted at their block size */
    size_t peak;         /* highest in_use since init (never decreases) */
    size_t largest_free; /* the longest run of free pages, in bytes (an allocation
                            of that size gets it when it is the first free run of
                            its size bin, as the heap's only free run always is) */
    size_t free_pages;   /* bytes in all free pages (free blocks inside slabs excluded) */
    size_t overhead;     /* bytes of the region used for metadata and alignment */
    size_t small_max;    /* largest size class; bigger blocks are page runs */
    uint32_t page_size;  /* the heap's page, a build option */
    uint32_t classes;    /* number of size classes, a build option */
    uint64_t allocs;     /* successful allocations (realloc that moves counts one) */
    uint64_t frees;      /* blocks freed */
    uint64_t failures;   /* allocations that returned NULL (never decreases) */
} rsb_heap_stats_t;

typedef enum rsb_heap_error {
    RSB_HEAP_FOREIGN_POINTER = 1, /* not inside this heap's pages */
    RSB_HEAP_INVALID_POINTER = 2, /* inside the heap but not the start of a block */
    RSB_HEAP_DOUBLE_FREE = 3,     /* the start of a block that is not allocated */
} rsb_heap_error;

/* Error hook: called with the heap's lock released.  May return (the
 * operation is then ignored) or not (reset, longjmp, halt). */
typedef void (*rsb_heap_error_fn)(rsb_heap *h, rsb_heap_error err, const void *ptr, void *ctx);
typedef void (*rsb_heap_lock_fn)(void *ctx);

/* Make a heap of the region [mem, mem + len).  The region need not be
 * aligned: the heap header is placed at the next 64-byte boundary and the
 * pages at the next page boundary (a page-aligned region wastes least).  It
 * must stay valid and untouched by anything else while the heap is in use;
 * there is no destroy (stop using the heap and reuse the region).  At most
 * 65535 pages are used; the rest of a larger region is left alone.
 * Returns NULL if the region cannot hold the header and at least one page. */
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

/* Snapshot of the heap.  First hands the empty slabs each size class keeps
 * in reserve back to the page pool, so that after everything is freed
 * largest_free is back to its value right after rsb_heap_init. */
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
