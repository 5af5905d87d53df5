/* Statistics: gathered on demand by walking the metadata (nothing is
 * counted on the hot path but the per-cache malloc counter taken in the slow
 * path), reported as a struct or as a text table written with write(2). */
#ifndef RSB_STATS_H
#define RSB_STATS_H

#include "../include/rsbmalloc.h"
#include "cache.h"

typedef struct rsb_class_stats {
    uint32_t slabs;
    uint64_t used, capacity; /* blocks */
} rsb_class_stats;

/* Snapshot; takes every lock (rsb_lock_all).  per_class may be NULL. */
void rsb_stats_collect(rsb_allocator *a, rsb_stats_t *out, rsb_class_stats *per_class);
void rsb_stats_report(rsb_allocator *a, int fd);

#endif
