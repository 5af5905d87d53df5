/*
 * The freestanding heap's state (include/rsbmalloc_heap.h is its API,
 * src/heap.c its code).  Private: included by src/heap.c and by the
 * benchmarks that look inside (bench/embedded/longest_path.c).
 *
 * A heap is two allocators over one region:
 *
 *   good fit  src/fit/fit.h: every block that a slab does not serve, split
 *             to the request rounded to 16 bytes (plus an 8-byte header);
 *   slabs     blocks of one size class with no per-block header, packed
 *             into one good-fit block (a "slab": tagged, RSB_FIT_TAG) of
 *             about RSB_HEAP_SLAB_WINDOWS windows, cut from the high end of
 *             the free block it comes from.  Classes: 16-byte steps
 *             up to 256 B, then four per doubling up to RSB_HEAP_SLAB_MAX
 *             (1 KiB by default): 24 classes.
 *
 * Windows.  The region is cut into windows of 1 << wshift bytes from
 * wbase, and map[w] says where slabs are: first = 1 + the granule (16
 * bytes) at which a slab starts in window w (0: none starts there), cover =
 * how many windows back the slab that covers the start of window w began
 * (0: none).  A slab spans at least one window, so at most one starts in a
 * window and it covers the rest of it.  free(p) finds p's slab, if any,
 * with one or two map loads; user data can never make a pointer look like
 * a slab block.
 *
 * When a class gets slabs.  A slab for a class with a few live blocks
 * wastes most of itself, which is what cost the old heap 12 % at random
 * sizes.  So a request of a slab class is served by the good fit (as any
 * other size) while the good fit holds fewer than bins[c].after live blocks
 * of that size (fit_live: 8 for the 16-byte classes, 32 for the wider
 * ones above 256 B); from then on, and for as long as it has slabs
 * (bins[c].slabs), the class takes a slab when it has none with room:
 * bins[c].cap blocks, which with the header fill about
 * RSB_HEAP_SLAB_WINDOWS windows (at least 16 blocks; at most an eighth of
 * a small heap).  When no free block is that big, half as many, and so on
 * while the slab still spans a window; then the good fit serves it.  Near
 * exhaustion (less than 8 slabs' worth, or an eighth of the heap, free) a
 * new slab is taken only if slabs already hold most of the heap.
 *
 * Slab layout: a 16-byte rsb_hslab header, cap = limit / size blocks, then
 * the 8-byte partial-list links (rsb_hlinks).
 * Blocks [0, left) were never handed out (they are taken from the top
 * down, so no block is ever "carved" in a loop); free blocks are a list
 * through their first word (the next block's offset from the slab / 16,
 * 0: none) and carry the double-free marker (key ^ address) in their second
 * word, cleared when handed out.
 *
 * Invariants between operations (rsb_heap_check):
 *   - the good fit's (fit.h);
 *   - a tagged good-fit block is a slab: its extent (header and blocks)
 *     lies inside the block and spans at least a window; map[] holds first
 *     for its start window and cover for each later window it reaches;
 *     every other map byte is 0;
 *     used + free-list length + left == cap; every listed block is a block
 *     boundary >= left and carries the marker;
 *   - bins[c].cur is &empty or a slab of class c; partial lists (first in,
 *     first out, partial_tail its last) the other slabs of class c with a
 *     free block or never-used blocks, none empty; bins[c].slabs counts the
 *     class's slabs and they add up to slabs;
 *     a slab has IN_BIN iff it is its bin's cur or on its partial list; a
 *     slab on no list is full;
 *   - fit_live[k] is the number of live untagged good-fit blocks whose
 *     usable size is of class k (fit_key; a request of class c checks the
 *     key of the block it would get, which is c or c + 1);
 *   - slab_bytes is the total size of the slabs' good-fit blocks; in_use
 *     is the sum of the usable sizes of the live blocks; reserves is set
 *     whenever some bin's cur is an empty slab.
 */
#ifndef RSB_HEAP_H
#define RSB_HEAP_H

#include "rsbmalloc_heap.h"
#include "fit/fit.h"

/* log2 of the largest window, the unit of the slab map (a slab is about
 * three).  A heap's own window (wshift) is smaller when the heap is: 1/256
 * to 1/512 of it, at least 512 bytes, so that a firmware heap of 64 KiB
 * gets slabs of 1.5 KiB, not 6. */
#ifndef RSB_HEAP_WINDOW_SHIFT
#define RSB_HEAP_WINDOW_SHIFT 11
#endif
#define RSB_HEAP_MIN_WINDOW_SHIFT 9
/* Largest slab class: 16..256 in 16-byte steps, or 512 or 1024. */
#ifndef RSB_HEAP_SLAB_MAX
#define RSB_HEAP_SLAB_MAX 1024
#endif
#define RSB_HEAP_CLASSES \
    (RSB_HEAP_SLAB_MAX <= 256 ? RSB_HEAP_SLAB_MAX / 16 : RSB_HEAP_SLAB_MAX == 512 ? 20 : 24)
/* Live good-fit blocks of a class before it takes slabs: classes of 16-byte
 * steps (up to 256 B), and the wider ones above, which hold more sizes each. */
#ifndef RSB_HEAP_SLAB_AFTER_NARROW
#define RSB_HEAP_SLAB_AFTER_NARROW 8
#endif
#ifndef RSB_HEAP_SLAB_AFTER
#define RSB_HEAP_SLAB_AFTER 32
#endif
/* A slab's blocks fill about this many windows (at least 16 blocks). */
#ifndef RSB_HEAP_SLAB_WINDOWS
#define RSB_HEAP_SLAB_WINDOWS 3
#endif
#ifndef RSB_HEAP_SLAB_MIN_BLOCKS
#define RSB_HEAP_SLAB_MIN_BLOCKS 16
#endif
#define RSB_HEAP_IN_BIN 0x8000u /* in rsb_hslab.limit */
/* rsb_heap_realloc keeps a moved block's address alignment up to this. */
#define RSB_HEAP_REALLOC_ALIGN 1024u

_Static_assert((RSB_HEAP_SLAB_MAX % 16 == 0 && RSB_HEAP_SLAB_MAX >= 16 && RSB_HEAP_SLAB_MAX <= 256) ||
                   RSB_HEAP_SLAB_MAX == 512 || RSB_HEAP_SLAB_MAX == 1024,
               "slab classes: 16-byte steps up to 256, then 512 or 1024");
_Static_assert(RSB_HEAP_WINDOW_SHIFT >= 9 && RSB_HEAP_WINDOW_SHIFT <= 11, "window of 512 B .. 2 KiB (first: 1 + a granule in a byte)");
_Static_assert((RSB_HEAP_SLAB_WINDOWS + 1) * ((size_t)1 << RSB_HEAP_WINDOW_SHIFT) < 32768 &&
                   RSB_HEAP_SLAB_MIN_BLOCKS * RSB_HEAP_SLAB_MAX < 32768,
               "a slab's limit fits 15 bits");

typedef struct rsb_hslab {
    uint16_t free;   /* first free block: offset from the slab / 16; 0: none */
    uint16_t size;   /* block size */
    uint16_t limit;  /* cap * size: the blocks end at 16 + limit; bit 15: IN_BIN */
    uint16_t used;   /* blocks handed out and not freed */
    uint16_t left;   /* blocks [0, left) never handed out */
    uint16_t spare[3];
} rsb_hslab;
/* The partial-list links of a slab (offsets, good-fit base, of slabs; 0:
 * none) live after its last block, in the 8 bytes that rounding its extent
 * (16 + limit, a multiple of 16) plus the 8-byte header up to a good-fit
 * block size leaves anyway: rsb_slab_links.  Only the slow paths use them. */
typedef struct rsb_hlinks {
    uint32_t next, prev;
} rsb_hlinks;
_Static_assert(sizeof(rsb_hslab) == 16, "slab header");

typedef struct rsb_hbin {
    rsb_hslab *cur;      /* a slab of this class, or &heap->empty */
    uint32_t partial;    /* first slab on the partial list, 0: none */
    uint32_t partial_tail; /* its last slab (new ones queue there: FIFO, so a
                              slab gathers frees while it waits) */
    uint16_t size;       /* block size of the class */
    uint16_t cap;        /* blocks of a new slab */
    uint8_t after;       /* live good-fit blocks of the class before it takes a slab */
    uint32_t slabs;      /* slabs of this class: while it has any, it takes new ones */
} rsb_hbin;

typedef struct rsb_hwin {
    uint8_t first;       /* 1 + granule in the window where a slab starts; 0: none */
    uint8_t cover;       /* windows back to the start of the slab over this window's start; 0: none */
} rsb_hwin;

struct rsb_heap {
    rsb_fit fit;
    char *lo;                    /* first payload address of the pool */
    size_t span;                 /* user pointers lie in [lo, lo + span) */
    char *wbase;                 /* window 0: lo rounded down to a window */
    uint32_t wshift;             /* log2 of this heap's window */
    rsb_hwin *map;               /* one entry per window from wbase */
    size_t max_request;          /* larger requests can never succeed */
    uint32_t key;                /* slab blocks' double-free marker: key ^ address */
    uint32_t slabs;              /* live slabs */
    uint32_t reserves;           /* nonzero: a bin's cur may be an empty slab (release_reserves) */
    size_t slab_bytes;           /* their good-fit blocks' sizes */
    rsb_hbin bins[RSB_HEAP_CLASSES + 1]; /* bins[0] unused: size 0 is class 1 */
    uint32_t magic[RSB_HEAP_SLAB_MAX / 16 + 1]; /* [size / 16]: ceil(2^31 / (size / 16)) */
    /* Live good-fit blocks by the class of their usable size (fit_key);
     * RSB_HEAP_CLASSES + 1: usable sizes just above the largest class. */
    uint32_t fit_live[RSB_HEAP_CLASSES + 2];
    /* [(n + 15) / 16]: the class of n bytes; one entry more, for fit_live. */
    uint8_t class_of[RSB_HEAP_SLAB_MAX / 16 + 2];
    rsb_hslab empty;             /* the sentinel of a bin without slab: nothing free, nothing left */
    size_t in_use, peak, capacity, region_len;
    uint64_t allocs, frees, failures;
    rsb_heap_lock_fn lock, unlock;
    void *lock_ctx;
    rsb_heap_error_fn on_error;
    void *error_ctx;
    int spin;                    /* the built-in spinlock's word */
};

#endif
