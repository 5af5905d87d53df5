/*
 * The interposition layer: the public rsb_* functions (include/rsbmalloc.h)
 * and, compiled with RSB_OVERRIDE (librsbmalloc), the libc names as ELF
 * aliases of them, so an exported malloc costs no extra call.  This file
 * holds argument rules and errno, nothing else: each function is a call into
 * the entry points of src/entry.h (inline fast paths, out-of-line rest).
 * glibc's extras (mallinfo, malloc_info, ...) are in interpose/glibc.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h> /* libc's prototypes: the aliases below must match them */
#include <stdlib.h>

#include "entry.h"
#include "rsbmalloc.h"

static inline void *nomem(void) {
    errno = ENOMEM;
    return NULL;
}

/* The slow paths with errno, tail-called: the fast paths need no frame. */
static RSB_NOINLINE void *malloc_slow(size_t size) {
    void *p;
    if (unlikely(rsb_prof_active)) { /* heap profiling: every malloc comes here */
        p = rsb_entry_malloc_counted(size);
        if (likely(p != NULL)) return p;
        p = rsb_entry_malloc_prof(size);
    } else {
        p = rsb_entry_malloc_slow(size);
    }
    return likely(p != NULL) ? p : nomem();
}

static RSB_NOINLINE void *calloc_slow(size_t total) {
    void *p;
    if (unlikely(rsb_prof_active)) {
        p = rsb_entry_malloc_counted(total);
        if (likely(p != NULL)) return rsb_memset(p, 0, total);
        p = rsb_entry_calloc_prof(total);
    } else {
        p = rsb_entry_calloc_slow(total);
    }
    return likely(p != NULL) ? p : nomem();
}

RSB_API void *rsb_malloc(size_t size) {
    void *p = rsb_entry_malloc_fast(size);
    return likely(p != NULL) ? p : malloc_slow(size);
}

RSB_API void rsb_free(void *p) { rsb_entry_free(p); }

RSB_API void *rsb_calloc(size_t n, size_t size) {
    size_t total;
    if (unlikely(__builtin_mul_overflow(n, size, &total))) return nomem();
    void *p = rsb_entry_calloc_fast(total);
    return likely(p != NULL) ? p : calloc_slow(total);
}

RSB_API void *rsb_realloc(void *p, size_t size) {
    if (!p) return rsb_malloc(size);
    if (size == 0) { /* glibc semantics: free and return NULL */
        rsb_free(p);
        return NULL;
    }
    void *q = rsb_entry_realloc(p, size);
    return likely(q != NULL) ? q : nomem();
}

RSB_API void *rsb_reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (unlikely(__builtin_mul_overflow(n, size, &total))) return nomem();
    return rsb_realloc(p, total);
}

/* align: a power of two. */
static void *aligned(size_t align, size_t size) {
    void *p = rsb_entry_memalign(align, size);
    return likely(p != NULL) ? p : nomem();
}

/* POSIX: EINVAL unless a power of two and a multiple of sizeof(void *);
 * errno is not changed, *out only on success. */
RSB_API int rsb_posix_memalign(void **out, size_t alignment, size_t size) {
    if (!rsb_is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
    void *p = rsb_entry_memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

/* C17: the alignment must be a power of two; the size need not be a
 * multiple of it. */
RSB_API void *rsb_aligned_alloc(size_t alignment, size_t size) {
    if (!rsb_is_pow2(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(alignment, size);
}

/* glibc: a non-power-of-two alignment is rounded up. */
RSB_API void *rsb_memalign(size_t alignment, size_t size) {
    if (alignment > (SIZE_MAX >> 1) + 1) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(rsb_next_pow2(alignment), size);
}

RSB_API void *rsb_valloc(size_t size) {
    rsb_global_get(); /* the OS page size */
    return aligned(rsb_os_page, size);
}

/* pvalloc(0) returns one page. */
RSB_API void *rsb_pvalloc(size_t size) {
    rsb_global_get();
    size_t page = rsb_os_page;
    if (size > SIZE_MAX - page) return nomem();
    return aligned(page, size ? rsb_align_up(size, page) : page);
}

RSB_API size_t rsb_malloc_usable_size(const void *p) { return p ? rsb_entry_usable_size(p) : 0; }

RSB_API void rsb_free_sized(void *p, size_t size) {
    (void)size;
    rsb_free(p);
}

RSB_API void rsb_free_aligned_sized(void *p, size_t alignment, size_t size) {
    (void)alignment;
    (void)size;
    rsb_free(p);
}

RSB_API int rsb_malloc_trim(size_t pad) {
    (void)pad;
    return rsb_entry_trim() ? 1 : 0;
}

RSB_API void rsb_stats(rsb_stats_t *out) { rsb_entry_stats(out); }
RSB_API void rsb_stats_print(int fd) { rsb_entry_stats_print(fd); }
RSB_API int rsb_prof_dump(const char *path) {
    rsb_global_get();
    return rsb_prof_dump_now(path);
}

#if RSB_OVERRIDE
/* ---- libc names ----------------------------------------------------------- */
#define ALIAS(target) __attribute__((alias(#target), visibility("default"), used))
#define MALLOC_ALIAS(target) __attribute__((malloc, alias(#target), visibility("default"), used))

void *malloc(size_t) ALIAS(rsb_malloc);
void free(void *) ALIAS(rsb_free);
void *calloc(size_t, size_t) ALIAS(rsb_calloc);
void *realloc(void *, size_t) ALIAS(rsb_realloc);
void *reallocarray(void *, size_t, size_t) ALIAS(rsb_reallocarray);
int posix_memalign(void **, size_t, size_t) ALIAS(rsb_posix_memalign);
void *aligned_alloc(size_t, size_t) ALIAS(rsb_aligned_alloc);
void *memalign(size_t, size_t) ALIAS(rsb_memalign);
void *valloc(size_t) ALIAS(rsb_valloc);
void *pvalloc(size_t) ALIAS(rsb_pvalloc);
void cfree(void *) ALIAS(rsb_free);
size_t malloc_usable_size(void *) ALIAS(rsb_malloc_usable_size);
void free_sized(void *, size_t) ALIAS(rsb_free_sized);
void free_aligned_sized(void *, size_t, size_t) ALIAS(rsb_free_aligned_sized);
int malloc_trim(size_t) ALIAS(rsb_malloc_trim);

/* glibc-internal names: glibc routes some of its own allocations through
 * these, and a static link must not pull in libc's malloc.o. */
void *__libc_malloc(size_t) MALLOC_ALIAS(rsb_malloc);
void *__libc_calloc(size_t, size_t) MALLOC_ALIAS(rsb_calloc);
void *__libc_realloc(void *, size_t) ALIAS(rsb_realloc);
void __libc_free(void *) ALIAS(rsb_free);
void *__libc_memalign(size_t, size_t) MALLOC_ALIAS(rsb_memalign);
void *__libc_valloc(size_t) MALLOC_ALIAS(rsb_valloc);
void *__libc_pvalloc(size_t) MALLOC_ALIAS(rsb_pvalloc);
int __posix_memalign(void **, size_t, size_t) ALIAS(rsb_posix_memalign);
#endif
