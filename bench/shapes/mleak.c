/*
 * mleak — a program that leaks steadily while it allocates.
 *
 * Mirrors the shape of mimalloc-bench's mleak rows: a loop that allocates
 * and frees small blocks (a ring of 1024 live blocks of 16..1024 B, the
 * oldest freed before each allocation) but never frees one allocation in
 * 100.  The leaked blocks pile up between live ones for the whole run, so
 * the heap grows and the free space is scattered among blocks that will
 * never go away.
 *
 *   rsbshape-mleak [-s SCALE] [--smoke]
 *
 * Self-check: the ring's blocks are checked before they are freed; the
 * leaked blocks' addresses are remembered in memory mapped outside the
 * allocator (so that bookkeeping does not change the allocation pattern),
 * and at the end every leaked block must still hold its stamp: memory that
 * was never freed must never be handed out again.
 */
#include "shape.h"

#define RING 1024
#define LEAK_EVERY 100

struct rec {
    void *p;
    uint32_t size;
    uint64_t tag;
};

int main(int argc, char **argv)
{
    struct shape sh;
    shape_init(&sh, "mleak", argc, argv, 1, "", NULL);
    long allocs = shape_count(&sh, 20000000, 100000);
    long nleaks = allocs / LEAK_EVERY + 1;
    struct rec *leak = shape_meta(&sh, sizeof *leak * (size_t)nleaks);
    struct rec ring[RING] = {{0}};
    rng_t rng = rng_make(9);
    long leaked = 0;
    size_t leaked_bytes = 0;
    for (long i = 0; i < allocs; i++) {
        struct rec r;
        r.size = (uint32_t)rng_logsize(&rng, 16, 1024);
        r.tag = (uint64_t)i;
        r.p = shape_malloc(&sh, r.size);
        shape_stamp(r.p, r.size, r.tag);
        if (i % LEAK_EVERY == LEAK_EVERY - 1) {
            leak[leaked++] = r;
            leaked_bytes += r.size;
            continue;
        }
        struct rec *old = &ring[i % RING];
        if (old->p != NULL) {
            if (!shape_stamp_ok(old->p, old->size, old->tag))
                shape_fail(&sh, "block %llu corrupted", (unsigned long long)old->tag);
            free(old->p);
        }
        *old = r;
    }
    for (long k = 0; k < leaked; k++)
        if (!shape_stamp_ok(leak[k].p, leak[k].size, leak[k].tag))
            shape_fail(&sh, "leaked block %llu was reused", (unsigned long long)leak[k].tag);
    for (int k = 0; k < RING; k++)
        if (ring[k].p != NULL)
            free(ring[k].p);
    shape_ok(&sh, "allocs=%ld leaked=%ld leaked_mib=%zu", allocs, leaked, leaked_bytes >> 20);
    return 0;
}
