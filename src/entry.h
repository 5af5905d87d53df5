/*
 * The entry points of the process-wide allocator: what interpose/ calls for
 * every libc name.  The fast paths are inline here and take no lock, no
 * atomic instruction and no loop:
 *
 *   malloc  size <= RSB_CLASS_LUT_MAX: one table load for the class, one pop
 *           (none while the thread cache is off: rsb_tc_off is empty);
 *   free    rsb_free_begin's checks (a live slab, a block start, not already
 *           free: alloc.h), then a push on the thread cache.
 *
 * Everything else is out of line in entry.c: start-up, refills and
 * flushes, other sizes, frees of other caches' blocks, junk filling,
 * valgrind tracking.  Like the core, these return NULL on failure and leave
 * errno to interpose/.
 */
#ifndef RSB_ENTRY_H
#define RSB_ENTRY_H

#include "init.h"
#include "prof.h"
#include "thread_cache.h"
#include "track.h"

/* The largest size malloc's fast path serves: RSB_CLASS_LUT_MAX, or 0 while
 * heap profiling (src/prof.h) is on, so that every malloc takes the slow
 * path, where it counts the bytes until the next sample.  A compare with a
 * variable costs no more instructions than one with a constant, so the fast
 * path has no "is profiling on?" test.  (free needs none: sampled blocks
 * are page runs, which its fast path never frees inline.) */
typedef struct rsb_gate_t {
    size_t malloc_max;
} rsb_gate_t;
/* hidden: read RIP-relative in the compare itself, with no address load */
extern rsb_gate_t rsb_gate __attribute__((visibility("hidden")));
/* Set it to 0 (once, at start-up, with profiling on). */
void rsb_gate_slow(void);

void *rsb_entry_malloc_slow(size_t size);
/* The slow path while heap profiling is on: count size, sample or not. */
void *rsb_entry_malloc_prof(size_t size);

/* The fast path alone: a block, or NULL when the slow path must run (the
 * caller then tail-calls it, so the fast path needs no stack frame). */
RSB_INLINE void *rsb_entry_malloc_fast(size_t size) {
    if (likely(size <= rsb_gate.malloc_max)) return rsb_tc_pop(&rsb_global, rsb_tc, rsb_class_lut[(size + 15) >> 4]);
    return NULL;
}

/* With heap profiling on (rsb_gate sends every malloc to the slow path):
 * the fast path again, counting the bytes until the next sample; NULL when
 * the slow path must run (which counts them then). */
RSB_INLINE void *rsb_entry_malloc_counted(size_t size) {
    int64_t left = rsb_prof_t.left - (int64_t)size;
    if (likely(size <= RSB_CLASS_LUT_MAX) && likely(left >= 0)) {
        void *p = rsb_tc_pop(&rsb_global, rsb_tc, rsb_class_lut[(size + 15) >> 4]);
        if (likely(p != NULL)) rsb_prof_t.left = left;
        return p;
    }
    return NULL;
}

RSB_INLINE void *rsb_entry_malloc(size_t size) {
    void *p = rsb_entry_malloc_fast(size);
    if (likely(p != NULL)) return p;
    return unlikely(rsb_prof_active) ? rsb_entry_malloc_prof(size) : rsb_entry_malloc_slow(size);
}

/* Free's out-of-line paths: page runs; NULL, huge blocks, bad pointers.
 * Both forget p's heap-profile record first, if it has one. */
void rsb_entry_free_run(void *p, rsb_chunk *ch, rsb_allocator *a);
void rsb_entry_free_slow(void *p, rsb_allocator *a);

/* free without valgrind's quarantine (track.c frees through it too). */
RSB_INLINE void rsb_entry_free_now(void *p) {
    rsb_allocator *a = &rsb_global;
    unsigned cls;
    /* checks p; NULL: the slow path finished */
    const rsb_span *d = rsb_free_begin_with(a, p, &cls, rsb_entry_free_run, rsb_entry_free_slow);
    if (unlikely(d == NULL)) return;
    rsb_tc_push(a, rsb_tc, cls, (void **)p); /* rsb_tc_off: to the shared cache */
}

void rsb_entry_free_untracked(void *p);
RSB_INLINE void rsb_entry_free(void *p) {
    if (rsb_track_on()) {
        rsb_track_free(p, rsb_entry_free_untracked);
        return;
    }
    rsb_entry_free_now(p);
}

/* total = n * size, already checked for overflow. */
void *rsb_entry_calloc_slow(size_t total);
void *rsb_entry_calloc_prof(size_t total);
RSB_INLINE void *rsb_entry_calloc_fast(size_t total) {
    void *p = rsb_entry_malloc_fast(total);
    if (likely(p != NULL)) rsb_memset(p, 0, total);
    return p;
}
/* p a block, size > 0. */
void *rsb_entry_realloc(void *p, size_t size);
/* align a power of two. */
void *rsb_entry_memalign(size_t align, size_t size);
size_t rsb_entry_usable_size(const void *p);
bool rsb_entry_trim(void);
/* Statistics: the calling thread's cache goes back first, so its own frees
 * show; blocks in other threads' caches still count as in use. */
struct rsb_stats;
void rsb_entry_stats(struct rsb_stats *out);
void rsb_entry_stats_print(int fd);

#endif
