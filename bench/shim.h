/*
 * bench/shim.h — the allocator seam of the benchmark suite.
 *
 * Every workload allocates through these functions and nothing else, so one
 * binary measures either allocator:
 *
 *   rsb     rsbmalloc's prefixed API (rsb_malloc, rsb_free_sized, ...) linked
 *           into the benchmark; the process's own malloc stays untouched.
 *   system  the process's malloc/free/realloc/aligned_alloc: glibc, or
 *           whatever LD_PRELOAD put first (jemalloc, mimalloc, tcmalloc,
 *           librsbmalloc.so itself).
 *
 * The choice is made once at start-up (bench_select) and is a run-time
 * switch, not a compile-time one.  The functions live out of line in shim.c
 * on purpose: the compiler cannot see through them, so it cannot elide a
 * malloc/free pair or fold a benchmark loop, and every allocator pays the
 * same call overhead.
 *
 * The shim also reads the process's memory use (RSS) so that every workload
 * can report peak RSS next to its time.
 */
#ifndef RSB_BENCH_SHIM_H
#define RSB_BENCH_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bench_allocator {
    BENCH_SYSTEM = 0, /* the process's malloc (glibc or LD_PRELOADed)     */
    BENCH_RSB = 1,    /* rsbmalloc's rsb_* API, linked in                 */
} bench_allocator;

/* Select the allocator by name: "rsb" or "system".  Returns 0 on success,
 * -1 for an unknown name or "rsb" in a build without rsbmalloc.  Call it
 * before the first allocation and never again. */
int bench_select(const char *name);
/* Pick the allocator from the environment variable BENCH_ALLOCATOR, if set.
 * Returns 0 when unset or valid, -1 when invalid. */
int bench_select_from_env(void);
bench_allocator bench_current(void);
/* "rsb" or "system". */
const char *bench_allocator_name(void);
/* 1 if this binary has rsbmalloc's prefixed API linked in. */
int bench_have_rsb(void);
/* The shared object that provides the process's malloc symbol (dladdr), e.g.
 * "/lib/x86_64-linux-gnu/libjemalloc.so.2"; "(main program)" if malloc is
 * defined in the executable.  Tells which allocator "system" really is. */
const char *bench_malloc_provider(void);

/* The allocation API.  Sizes are what the caller asked for; bench_free and
 * bench_realloc take the block's current size so the rsb backend can use
 * sized deallocation (free_sized).  None returns NULL except on
 * exhaustion; callers treat NULL as fatal (bench_oom). */
void *bench_alloc(size_t size);
void bench_free(void *p, size_t size);
void *bench_realloc(void *p, size_t old_size, size_t new_size);
/* align: a power of two >= sizeof(void *).  Free with bench_free_aligned. */
void *bench_aligned(size_t align, size_t size);
void bench_free_aligned(void *p, size_t align, size_t size);

/* Print "bench: out of memory (<what>, <size> bytes)" and exit(2). */
void bench_oom(const char *what, size_t size) __attribute__((noreturn));

/* Memory use of this process in bytes, from /proc/self/status:
 * VmRSS (now) and VmHWM (peak since start or since the last reset).
 * 0 if unavailable. */
size_t bench_rss_now(void);
size_t bench_rss_peak(void);
/* Restart the peak: writes "5" to /proc/self/clear_refs so VmHWM becomes the
 * current RSS.  Returns 0 on success, -1 if the kernel refused (then
 * bench_rss_peak is the peak since process start: ru_maxrss semantics). */
int bench_rss_reset_peak(void);

#ifdef __cplusplus
}
#endif

#endif /* RSB_BENCH_SHIM_H */
