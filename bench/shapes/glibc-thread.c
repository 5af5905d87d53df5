/*
 * glibc-thread — threads replacing random blocks of a wide size range in a
 * private working set.
 *
 * Mirrors the shape of glibc's benchtests/bench-malloc-thread.c (the
 * glibc-thread row of mimalloc-bench): each thread keeps a working set of
 * 1024 blocks; each step frees a random one and allocates a new block whose
 * size comes from a precomputed table of sizes between 4 B and 32 KiB,
 * small sizes far more likely.  The threads never share blocks.
 *
 *   rsbshape-glibc-thread [-t THREADS] [-s SCALE] [--smoke]
 *
 * Self-check: every block is stamped with (thread, slot, generation) and
 * checked before it is freed.
 */
#include "shape.h"

#define WORKING_SET 1024
#define SIZES 8192

static struct shape sh;
static uint32_t sizes[SIZES];
static long steps_per_thread;

struct worker {
    int index;
};

struct slot {
    void *p;
    uint32_t size;
    uint32_t gen;
};

static uint64_t tag_of(int thread, uint32_t slot, uint32_t gen)
{
    return ((uint64_t)thread << 48) ^ ((uint64_t)slot << 32) ^ gen;
}

static void *worker(void *arg)
{
    int me = ((struct worker *)arg)->index;
    rng_t rng = rng_make((uint64_t)me + 100);
    struct slot *ws = shape_meta(&sh, sizeof *ws * WORKING_SET);
    for (long i = 0; i < steps_per_thread; i++) {
        uint64_t r = rng_next(&rng);
        uint32_t j = (uint32_t)(r & (WORKING_SET - 1));
        struct slot *s = &ws[j];
        if (s->p != NULL) {
            if (!shape_stamp_ok(s->p, s->size, tag_of(me, j, s->gen)))
                shape_fail(&sh, "thread %d slot %u corrupted", me, j);
            free(s->p);
        }
        s->size = sizes[(r >> 32) & (SIZES - 1)];
        s->gen++;
        s->p = shape_malloc(&sh, s->size);
        shape_stamp(s->p, s->size, tag_of(me, j, s->gen));
    }
    for (uint32_t j = 0; j < WORKING_SET; j++) {
        if (ws[j].p == NULL)
            continue;
        if (!shape_stamp_ok(ws[j].p, ws[j].size, tag_of(me, j, ws[j].gen)))
            shape_fail(&sh, "thread %d slot %u corrupted at the end", me, j);
        free(ws[j].p);
    }
    shape_meta_free(ws, sizeof *ws * WORKING_SET);
    return NULL;
}

int main(int argc, char **argv)
{
    shape_init(&sh, "glibc-thread", argc, argv, 2, "", NULL);
    rng_t rng = rng_make(4);
    for (int i = 0; i < SIZES; i++)
        sizes[i] = (uint32_t)rng_logsize(&rng, 4, 32768);
    steps_per_thread = shape_count(&sh, 12000000, 50000) / sh.threads;
    struct worker *w = shape_meta(&sh, sizeof *w * (size_t)sh.threads);
    for (int i = 0; i < sh.threads; i++)
        w[i].index = i;
    shape_run_threads(&sh, sh.threads, worker, w, sizeof *w);
    shape_meta_free(w, sizeof *w * (size_t)sh.threads);
    shape_ok(&sh, "steps=%ld", steps_per_thread * sh.threads);
    return 0;
}
