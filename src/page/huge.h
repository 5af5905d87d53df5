/*
 * Huge blocks: sizes above RSB_RUN_MAX, each in a mapping of its own whose
 * chunk-aligned first bytes are an rsb_huge header (chunk.h), registered so
 * that free finds it.  Resident memory is reused rather than given back at
 * once, so that programs that allocate, fill and free big blocks in a loop,
 * or grow and shrink one buffer, do not pay mmap/munmap and a page fault per
 * page each time:
 *   - a freed mapping is kept as a spare (at most RSB_SPARE_HUGE of them,
 *     RSB_SPARE_HUGE_MAX_BYTES in all, each at most RSB_SPARE_HUGE_MAX_ONE),
 *     still registered, with kind RSB_HDR_HUGE_SPARE (a second free of the
 *     old pointer is still diagnosed); a request takes the smallest spare
 *     that fits, or grows the largest smaller one in place or by mremap
 *     (its resident pages move with it, nothing is copied);
 *   - a block that shrinks keeps its pages past the new end as slack, and a
 *     spare bigger than the request keeps the difference as slack;
 *   - spares and slack are unmapped after the purge delay (and by trim).
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
RSB_INLINE size_t rsb_huge_usable(const rsb_huge *h) { return h->end - h->offset; }
/* Bytes of live huge blocks (their mappings, spares excluded). */
size_t rsb_huge_in_use(const rsb_pages *pg);

#endif
