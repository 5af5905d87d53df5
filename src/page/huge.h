/*
 * Huge blocks: sizes above RSB_RUN_MAX, each in a mapping of its own whose
 * chunk-aligned first bytes are an rsb_huge header (chunk.h), registered so
 * that free finds it.  Freed mappings are kept as spares (at most
 * RSB_SPARE_HUGE, RSB_SPARE_HUGE_MAX_BYTES in all), so that a program that
 * allocates and frees big blocks in a loop does not pay mmap/munmap and
 * page faults each time; they stay registered with kind RSB_HDR_HUGE_SPARE
 * (a second free of the old pointer is still diagnosed) and are unmapped
 * after the purge delay.  Without an OS (a region) every huge request fails.
 *
 * No lock is needed but the page lock around the spare list.
 */
#ifndef RSB_HUGE_H
#define RSB_HUGE_H

#include "pages.h"

/* Hook the spares into the page allocator's purge. */
void rsb_huge_init(rsb_pages *pg);
/* A block of size bytes aligned to align (0: RSB_ALIGN); NULL if the OS
 * refuses.  *zero tells whether every byte is zero. */
void *rsb_huge_alloc(rsb_pages *pg, size_t size, size_t align, bool *zero);
void rsb_huge_free(rsb_pages *pg, rsb_huge *h);
/* Resize without copying: in place, or by moving the pages to a new
 * chunk-aligned reservation (mremap).  NULL, block intact, if neither works. */
void *rsb_huge_realloc(rsb_pages *pg, rsb_huge *h, size_t size);
RSB_INLINE void *rsb_huge_block(const rsb_huge *h) { return (char *)h + h->offset; }
RSB_INLINE size_t rsb_huge_usable(const rsb_huge *h) { return h->map_size - h->offset; }
/* Bytes of live huge blocks (their mappings, spares excluded). */
size_t rsb_huge_in_use(const rsb_pages *pg);

#endif
