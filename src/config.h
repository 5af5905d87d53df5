/*
 * Build knobs, all in one place.  Each is set by a meson option.
 *
 *   RSB_DEBUG        0: release — only the cheap, always-on checks (double
 *                       free marker, ownership of freed pointers).
 *                    1: internal asserts (RSB_ASSERT, src/debug.h) at every
 *                       state change of the page allocator, slabs, caches
 *                       and thread caches.
 *                    2: also the whole-structure checks after operations
 *                       (rsb_pages_check, rsb_cache_check, rsb_tc_check walk
 *                       every chunk, bin and list; RSB_EXPENSIVE).  The unit
 *                       tests are built at this level.
 *   RSB_PAGE_SHIFT   log2 of the allocator page: the unit of spans.  Hosted
 *                    default 16 (64 KiB): a multiple of every OS page size in
 *                    use (4K, 16K, 64K), so purging whole allocator pages
 *                    always hands whole OS pages to madvise.
 *   RSB_CHUNK_SHIFT  log2 of a hosted chunk: an aligned mmap reservation
 *                    whose first page holds the page descriptors of the rest.
 *   RSB_FREESTANDING 1 for the no-libc region build (librsbmalloc_heap.a:
 *                    src/heap.c over src/fit/ and src/os/region.c).  It
 *                    selects rsb_memset/rsb_memcpy (src/util.h) and the
 *                    thread id (src/os/os.h); no .c file tests it.
 *   RSB_HARDEN       1: free-list links are encoded with a secret and
 *                       checked on every allocation (src/slab.h).  The
 *                       double-free marker and the ownership check of freed
 *                       pointers are always on.
 *   RSB_VALGRIND     1: tell memcheck about blocks via client requests
 *                    (src/track.h).
 *   RSB_FAULT_INJECTION 1: test builds may make the OS layer fail on demand.
 *   RSB_OVERRIDE     1 while compiling interpose/ for librsbmalloc: export
 *                    the libc names as aliases.
 */
#ifndef RSB_CONFIG_H
#define RSB_CONFIG_H

#ifndef RSB_DEBUG
#define RSB_DEBUG 0
#endif
#ifndef RSB_PAGE_SHIFT
#define RSB_PAGE_SHIFT 16
#endif
#ifndef RSB_CHUNK_SHIFT
#define RSB_CHUNK_SHIFT 22
#endif
#ifndef RSB_FREESTANDING
#define RSB_FREESTANDING 0
#endif
#ifndef RSB_HARDEN
#define RSB_HARDEN 0
#endif
#ifndef RSB_VALGRIND
#define RSB_VALGRIND 0
#endif
#ifndef RSB_FAULT_INJECTION
#define RSB_FAULT_INJECTION 0
#endif

#define RSB_PAGE_SIZE ((size_t)1 << RSB_PAGE_SHIFT)
#define RSB_CHUNK_SIZE ((size_t)1 << RSB_CHUNK_SHIFT)
/* Pages per hosted chunk, including page 0 (metadata). */
#define RSB_CHUNK_PAGES (RSB_CHUNK_SIZE >> RSB_PAGE_SHIFT)

/* Bytes of never-used blocks a slab hands out at a time: one OS page (only
 * touched memory becomes resident). */
#define RSB_CARVE_BYTES 4096

/* Minimum alignment of every block. */
#define RSB_ALIGN 16

/* Sizes above RSB_SMALL_MAX (size_classes.h) are page runs up to
 * RSB_RUN_MAX; above that, huge blocks are mapped one by one. */
#define RSB_RUN_MAX ((size_t)2 << 20)

/* Spare page runs: freed page runs kept whole for the next request of the
 * same page count (src/page/pages.c). */
#define RSB_SPARE_RUNS 4
/* Spare huge mappings (src/page/huge.c): at most this many, this many bytes
 * in all (the most glibc keeps above its heap top by default: twice its
 * largest mmap threshold), each at most this big. */
#define RSB_SPARE_HUGE 8
#define RSB_SPARE_HUGE_MAX_BYTES ((size_t)64 << 20)
#define RSB_SPARE_HUGE_MAX_ONE ((size_t)32 << 20)

/* Shared caches: a power of two, at least 4 x CPUs, within these bounds. */
#define RSB_MIN_CACHES 8
#define RSB_MAX_CACHES 256

/* RSBMALLOC_JUNK: new blocks are filled with RSB_JUNK_ALLOC, freed ones
 * (past the two words the allocator keeps in a free block) with
 * RSB_JUNK_FREE. */
#define RSB_JUNK_ALLOC 0xAB
#define RSB_JUNK_FREE 0xDF

/* Free pages are returned to the OS after this many milliseconds (default). */
#define RSB_DEFAULT_PURGE_DELAY_MS 100

#endif
