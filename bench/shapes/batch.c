/*
 * batch — 10,000 allocations, then 10,000 frees, over and over.
 *
 * A parser that builds a tree and drops it, a request that allocates its
 * objects and frees them all at the end.  Sizes are those of a typical
 * program (70% 16..128 B, 25% 129..1024 B, 5% 1..8 KiB).  The allocator
 * must hand out many blocks in a row and then take them all back, which
 * thread caches that move blocks one at a time handle poorly.  The same
 * shape as the micro-benchmarks batch/{fifo,random}/10000, as a process of
 * its own.
 *
 *   rsbshape-batch [-m fifo|random] [-s SCALE] [--smoke]
 *     fifo    blocks are freed in the order they were allocated
 *     random  in a random order (one fixed permutation)
 *
 * Self-check: every block is stamped and checked before it is freed.
 */
#include "shape.h"

#define BATCH 10000

static size_t typical_size(rng_t *r)
{
    uint32_t c = rng_below(r, 100);
    if (c < 70)
        return rng_range(r, 16, 128);
    if (c < 95)
        return rng_range(r, 129, 1024);
    return rng_range(r, 1025, 8192);
}

int main(int argc, char **argv)
{
    struct shape sh;
    shape_init(&sh, "batch", argc, argv, 1, "fifo",
               "  -m fifo|random   the order of the frees");
    int random_order = strcmp(sh.mode, "random") == 0;
    if (!random_order && strcmp(sh.mode, "fifo") != 0)
        shape_usage(&sh, "  -m fifo|random");
    long rounds = shape_count(&sh, 600, 5);
    rng_t rng = rng_make(8);
    void **p = shape_meta(&sh, sizeof *p * BATCH);
    uint32_t *size = shape_meta(&sh, sizeof *size * BATCH);
    uint32_t *order = shape_meta(&sh, sizeof *order * BATCH);
    for (uint32_t i = 0; i < BATCH; i++)
        order[i] = i;
    if (random_order) {
        for (uint32_t i = BATCH - 1; i > 0; i--) {
            uint32_t j = rng_below(&rng, i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    for (long r = 0; r < rounds; r++) {
        for (uint32_t i = 0; i < BATCH; i++) {
            size[i] = (uint32_t)typical_size(&rng);
            p[i] = shape_malloc(&sh, size[i]);
            shape_stamp(p[i], size[i], (uint64_t)r << 20 | i);
        }
        for (uint32_t k = 0; k < BATCH; k++) {
            uint32_t i = order[k];
            if (!shape_stamp_ok(p[i], size[i], (uint64_t)r << 20 | i))
                shape_fail(&sh, "round %ld block %u corrupted", r, i);
            free(p[i]);
        }
    }
    shape_meta_free(p, sizeof *p * BATCH);
    shape_meta_free(size, sizeof *size * BATCH);
    shape_meta_free(order, sizeof *order * BATCH);
    shape_ok(&sh, "rounds=%ld allocs=%ld", rounds, rounds * BATCH);
    return 0;
}
