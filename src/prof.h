/*
 * Heap profiling (hosted, RSBMALLOC_PROF=1; built when libunwind is found,
 * meson option `prof`).  Allocations are sampled as a Poisson process over
 * the bytes allocated: each thread counts down the bytes until its next
 * sample (rsb_prof_tls.left), drawn from an exponential distribution of
 * mean RSBMALLOC_PROF_SAMPLE (512 KiB), so a block of s bytes is sampled
 * with probability 1 - exp(-s/R) whatever came before it (as jemalloc and
 * gperftools do).  A sampled block's call stack is recorded until the block
 * is freed; a dump writes the live records as a gperftools heap profile
 * ("heap profile: ... @ heapprofile", read by google-pprof) and as collapsed
 * stacks for flame graphs, each record weighted 1/(1 - exp(-s/R)).
 *
 * The fast paths (entry.h) are unchanged when profiling is off: they
 * compare against rsb_gate's two bounds instead of two constants.  When it
 * is on, the bounds are 0, so every malloc and free takes its slow path
 * (entry.c), which counts the bytes and looks for a record to forget.
 *
 * Data (prof.c), all in memory mapped from the OS, under one spinlock
 * (prof.lock, a leaf: nothing else is locked while it is held, and the
 * unwinder runs without it):
 *   - records: a fixed table of live sampled blocks, open addressing with
 *     linear probing keyed by address (backward-shift deletion, no
 *     tombstones), and beside it a count per home slot that free reads
 *     without the lock: 0 means "no record can be there", so a free of an
 *     unsampled block takes the lock only when another record shares its
 *     home slot.  A record is inserted before malloc returns the block, so
 *     the thread that frees it sees the count through whatever passed it
 *     the pointer.
 *   - stacks: a fixed table of distinct call stacks, deduplicated by a hash
 *     of their return addresses, with the sampled allocations of each
 *     (estimated count and bytes, for the "allocated" columns).
 * Full tables drop samples (counted; a dump reports it on stderr).
 *
 * Thread-local: bytes until the next sample, a random state, and "in the
 * profiler": an allocation made while this thread unwinds or writes a dump
 * is served unsampled.
 */
#ifndef RSB_PROF_H
#define RSB_PROF_H

#include "util.h"

typedef struct rsb_prof_tls {
    int64_t left;    /* bytes until the next sample; < 0: sample now */
    uint64_t rng;    /* xorshift state, 0 until the thread's first sample */
    uint8_t busy;    /* in the profiler */
} rsb_prof_tls;

extern bool rsb_prof_active; /* set once, at start-up */
extern __thread rsb_prof_tls rsb_prof_t __attribute__((tls_model("initial-exec")));

void rsb_prof_sample(void *p, size_t size);
void rsb_prof_forget(void *p);

/* A block of size bytes was allocated at p (NULL: nothing was). */
RSB_INLINE void rsb_prof_alloc(void *p, size_t size) {
    if (unlikely(rsb_prof_active) && p && (rsb_prof_t.left -= (int64_t)size) < 0) rsb_prof_sample(p, size);
}
/* p (maybe NULL) is about to be freed or moved by realloc. */
RSB_INLINE void rsb_prof_free(void *p) {
    if (unlikely(rsb_prof_active) && p) rsb_prof_forget(p);
}

/* From the library constructor, once the allocator is ready: read the
 * options; with RSBMALLOC_PROF=1 map the tables, warm up the unwinder, set
 * the SIGUSR2 handler if asked, then turn sampling on (rsb_gate). */
void rsb_prof_start(void);
/* At exit: the final dump. */
void rsb_prof_exit(void);
/* fork(): the profiler's lock (before the allocator's, see init.c). */
void rsb_prof_lock(void);
void rsb_prof_unlock(void);
void rsb_prof_reset(void);
/* Write a dump: to path (and path with ".heap" replaced by, or else
 * followed by, ".collapsed"), or to the next <prefix>.<pid>.<seq>.heap.
 * 0 on success, -1 if profiling is off or a file cannot be written. */
int rsb_prof_dump_now(const char *path);

#endif
