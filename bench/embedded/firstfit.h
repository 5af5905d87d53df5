/*
 * firstfit: a plain dlmalloc-style allocator written for the embedded
 * benchmarks as a floor baseline — one free list, first fit, boundary tags,
 * splitting and coalescing.  Not part of rsbmalloc; no error detection.
 */
#ifndef RSB_BENCH_FIRSTFIT_H
#define RSB_BENCH_FIRSTFIT_H

#include <stddef.h>

typedef struct ff_heap ff_heap;

ff_heap *ff_init(void *mem, size_t len);
void *ff_alloc(ff_heap *h, size_t size);
void *ff_alloc_aligned(ff_heap *h, size_t align, size_t size);
void *ff_realloc(ff_heap *h, void *p, size_t size);
void ff_free(ff_heap *h, void *p);
size_t ff_usable_size(const void *p);
/* Bytes in the largest free chunk's payload. */
size_t ff_largest_free(ff_heap *h);

#endif
