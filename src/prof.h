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
 * The fast paths (entry.h) are unchanged when profiling is off: malloc's
 * compares the size with rsb_gate.malloc_max instead of a constant.  When it
 * is on, that is 0, so every malloc takes its slow path (entry.c), which
 * counts the bytes.  A sampled block is allocated as a page run whatever
 * its size (as jemalloc promotes sampled blocks to a large class), so free's
 * fast path, which only ever sees slab blocks, needs no test at all: only
 * the frees of page runs and huge blocks (out of line already) look for a
 * record to forget.  The cost: a live sampled block below 64 KiB occupies a
 * 64 KiB page, about 1/8 of the sampled bytes at the default interval.
 *
 * Data (prof.c), all in memory mapped from the OS, under one spinlock
 * (prof.lock, a leaf: nothing else is locked while it is held, and the
 * unwinder runs without it):
 *   - records: a fixed table of live sampled blocks, open addressing with
 *     linear probing keyed by address (backward-shift deletion, no
 *     tombstones), and beside it a filter that free reads without the
 *     lock: per slot of a hash of the address, the number of records; 0
 *     means "no record can be there", so a free of an unsampled block takes
 *     the lock only when a record shares its slot (about live records /
 *     4096 of the time).  A record is inserted before malloc returns the
 *     block, so the thread that frees it sees the count through whatever
 *     passed it the pointer.
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

extern bool rsb_prof_active __attribute__((visibility("hidden"))); /* set once, at start-up */
extern __thread rsb_prof_tls rsb_prof_t __attribute__((tls_model("initial-exec")));

bool rsb_prof_decide(size_t size);
void rsb_prof_record(void *p, size_t size);
void rsb_prof_forget(void *p);

/* Count an allocation of size bytes: true if it is to be sampled (then the
 * caller allocates it as a page run, see below, and calls rsb_prof_record). */
RSB_INLINE bool rsb_prof_take(size_t size) {
    return (rsb_prof_t.left -= (int64_t)size) < 0 && rsb_prof_decide(size);
}

/* The filter free reads without the lock: per slot, the records of blocks
 * whose address hashes there (8 KiB). */
#define RSB_PROF_FILTER_BITS 12
extern uint16_t rsb_prof_filter[1 << RSB_PROF_FILTER_BITS] __attribute__((visibility("hidden")));
RSB_INLINE size_t rsb_prof_filter_slot(const void *p) {
    return (size_t)(((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull) >> (64 - RSB_PROF_FILTER_BITS));
}

/* p (maybe NULL) is about to be freed or moved by realloc: a page run, a
 * huge block, NULL or a bad pointer (slab blocks are never sampled). */
RSB_INLINE void rsb_prof_free(void *p) {
    if (unlikely(rsb_prof_active) && p &&
        __atomic_load_n(&rsb_prof_filter[rsb_prof_filter_slot(p)], __ATOMIC_RELAXED) != 0)
        rsb_prof_forget(p);
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
