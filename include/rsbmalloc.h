/*
 * rsbmalloc — public API.
 *
 * The prefixed functions below behave exactly like their libc namesakes and
 * can be used side by side with the system malloc when the program is linked
 * against librsbmalloc-prefixed.a (no interposition).  librsbmalloc.so / .a
 * additionally export the unprefixed libc names (malloc, free, ...).
 *
 * Common rules (every function):
 *   - Every pointer returned is aligned to at least 16 bytes.
 *   - Failure returns NULL (or an error number for rsb_posix_memalign) and
 *     never modifies the memory of an existing block.
 *   - errno: ENOMEM when the request cannot be satisfied (including sizes
 *     above PTRDIFF_MAX and multiplication overflow), EINVAL for an invalid
 *     alignment.  rsb_free never changes errno.
 *   - Thread safety: all functions are thread-safe.  None is async-signal-safe.
 *   - A detected double free or a free of a pointer rsbmalloc never returned
 *     aborts the process with a one-line message naming rsbmalloc and the address.
 */
#ifndef RSBMALLOC_H
#define RSBMALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RSBMALLOC_VERSION_MAJOR 0
#define RSBMALLOC_VERSION_MINOR 1
#define RSBMALLOC_VERSION_PATCH 0

#if defined(__GNUC__)
#define RSB_API __attribute__((visibility("default")))
#define RSB_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define RSB_API
#define RSB_MALLOC_ATTR
#endif

/* malloc(size).  size 0 returns a unique, freeable pointer. */
RSB_API RSB_MALLOC_ATTR void *rsb_malloc(size_t size);
/* calloc: zeroed memory; n*size overflow -> NULL, ENOMEM. */
RSB_API RSB_MALLOC_ATTR void *rsb_calloc(size_t n, size_t size);
/* realloc: NULL p acts as malloc; size 0 frees p and returns NULL (glibc
 * semantics); on failure returns NULL with ENOMEM and p is left intact. */
RSB_API void *rsb_realloc(void *p, size_t size);
/* reallocarray: realloc(p, n*size) with overflow -> NULL, ENOMEM, p intact. */
RSB_API void *rsb_reallocarray(void *p, size_t n, size_t size);
/* free: NULL is a no-op; errno preserved. */
RSB_API void rsb_free(void *p);
/* C23 free_sized / free_aligned_sized: size (and alignment) as requested. */
RSB_API void rsb_free_sized(void *p, size_t size);
RSB_API void rsb_free_aligned_sized(void *p, size_t alignment, size_t size);
/* posix_memalign: alignment must be a power of two and a multiple of
 * sizeof(void*), else returns EINVAL; returns ENOMEM if size is too large.
 * *out is written only on success; errno is not changed. */
RSB_API int rsb_posix_memalign(void **out, size_t alignment, size_t size);
/* aligned_alloc (C17): alignment must be a power of two (else NULL, EINVAL);
 * size need not be a multiple of alignment. */
RSB_API RSB_MALLOC_ATTR void *rsb_aligned_alloc(size_t alignment, size_t size);
/* memalign (glibc): a non-power-of-two alignment is rounded up. */
RSB_API RSB_MALLOC_ATTR void *rsb_memalign(size_t alignment, size_t size);
/* valloc / pvalloc: aligned to the running system's page size; pvalloc also
 * rounds size up to a whole page (pvalloc(0) returns one page). */
RSB_API RSB_MALLOC_ATTR void *rsb_valloc(size_t size);
RSB_API RSB_MALLOC_ATTR void *rsb_pvalloc(size_t size);
/* Usable size of a live block: >= the request, all writable, stable for the
 * block's lifetime.  0 for NULL. */
RSB_API size_t rsb_malloc_usable_size(const void *p);
/* Return unused memory to the OS now (drains pending cross-thread frees,
 * purges free pages).  Returns 1 if memory was released, else 0. */
RSB_API int rsb_malloc_trim(size_t pad);

/* Statistics (all byte counts are current values unless marked peak). */
typedef struct rsb_stats {
    size_t mapped;           /* address space mapped from the OS            */
    size_t resident_est;     /* mapped minus purged free pages (estimate)   */
    size_t in_use;           /* bytes in live blocks (usable sizes); blocks
                                held in other threads' caches (a few KiB
                                each) and cross-thread frees not yet drained
                                count as in use                             */
    size_t small_in_use;     /* ... of which in size-class slabs            */
    size_t large_in_use;     /* ... of which in page runs and huge mappings */
    size_t free_dirty;       /* free pages not yet returned to the OS       */
    size_t huge_count;       /* live huge (direct mmap) blocks              */
    uint64_t lock_contended; /* contended cache-lock acquisitions, total    */
    uint64_t purges;         /* madvise/munmap calls that returned memory   */
    unsigned caches;         /* number of thread caches                     */
    unsigned classes;        /* number of small size classes                */
} rsb_stats_t;

/* Fill *out with a consistent snapshot (takes every lock briefly; first
 * returns the calling thread's cache, so its own frees are reflected). */
RSB_API void rsb_stats(rsb_stats_t *out);
/* Write a human-readable report to file descriptor fd (no allocation). */
RSB_API void rsb_stats_print(int fd);

/* Heap profiling (RSBMALLOC_PROF=1, see rsbmalloc(3)): write a profile of
 * the live heap now, in the text format google-pprof reads, to path (and
 * collapsed stacks for flame graphs to path with ".heap" replaced by, or
 * else followed by, ".collapsed"), or, for NULL, to the next
 * $RSBMALLOC_PROF_PREFIX.<pid>.<seq>.heap (and .collapsed).  Returns 0, or
 * -1 when profiling is off or not built in, or a file cannot be written. */
RSB_API int rsb_prof_dump(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* RSBMALLOC_H */
