/*
 * larson — a server whose worker threads free each other's memory.
 *
 * Mirrors the shape of Larson and Krishnan's server benchmark ("Memory
 * allocation for long-running server applications", ISMM 1998), the
 * larsonN rows of mimalloc-bench: every worker keeps a table of live blocks
 * of 16..512 B and replaces them one at a time.  Here the tables rotate
 * between the workers after each round (worker i works on table i + round),
 * and every slot of a table is replaced exactly once per round, so after the
 * first round every free is of a block that another thread allocated.
 *
 *   rsbshape-larson [-t THREADS] [-s SCALE] [--smoke]
 *
 * Self-check: every block carries a stamp derived from (table, slot, round);
 * the worker that frees it checks that stamp first.
 */
#include "shape.h"

#define SLOTS 4096 /* blocks per table (a power of two: see the sweep) */

struct slot {
    void *p;
    uint32_t size;
    uint32_t round;
};

static struct shape sh;
static struct slot *tables[4096];
static long rounds;
static pthread_barrier_t barrier;

struct worker {
    int index;
};

static uint64_t tag_of(int table, uint32_t slot, uint32_t round)
{
    return ((uint64_t)table << 48) ^ ((uint64_t)slot << 24) ^ round;
}

static void *worker(void *arg)
{
    int me = ((struct worker *)arg)->index;
    rng_t rng = rng_make((uint64_t)me + 1);
    for (long r = 0; r <= rounds; r++) {
        int t = (int)((me + r) % sh.threads);
        struct slot *tab = tables[t];
        /* A random odd stride over a power-of-two table visits every slot
         * once, in an order the allocator cannot predict. */
        uint32_t at = rng_below(&rng, SLOTS);
        uint32_t stride = rng_below(&rng, SLOTS) | 1;
        for (uint32_t k = 0; k < SLOTS; k++, at = (at + stride) & (SLOTS - 1)) {
            struct slot *s = &tab[at];
            if (s->p != NULL) {
                if (!shape_stamp_ok(s->p, s->size, tag_of(t, at, s->round)))
                    shape_fail(&sh, "table %d slot %u: block of round %u corrupted", t, at,
                               s->round);
                free(s->p);
            }
            s->size = (uint32_t)rng_range(&rng, 16, 512);
            s->round = (uint32_t)r;
            s->p = shape_malloc(&sh, s->size);
            shape_stamp(s->p, s->size, tag_of(t, at, s->round));
        }
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    shape_init(&sh, "larson", argc, argv, 2, "", NULL);
    long ops = shape_count(&sh, 12000000, 100000);
    rounds = ops / ((long)sh.threads * SLOTS);
    if (rounds < 2)
        rounds = 2;
    for (int t = 0; t < sh.threads; t++) {
        tables[t] = shape_meta(&sh, SLOTS * sizeof(struct slot));
    }
    pthread_barrier_init(&barrier, NULL, (unsigned)sh.threads);
    struct worker *w = shape_meta(&sh, sizeof *w * (size_t)sh.threads);
    for (int i = 0; i < sh.threads; i++)
        w[i].index = i;
    shape_run_threads(&sh, sh.threads, worker, w, sizeof *w);
    long live = 0;
    for (int t = 0; t < sh.threads; t++) {
        for (uint32_t j = 0; j < SLOTS; j++) {
            struct slot *s = &tables[t][j];
            if (!shape_stamp_ok(s->p, s->size, tag_of(t, j, s->round)))
                shape_fail(&sh, "table %d slot %u corrupted at the end", t, j);
            free(s->p);
            live++;
        }
        shape_meta_free(tables[t], SLOTS * sizeof(struct slot));
    }
    shape_meta_free(w, sizeof *w * (size_t)sh.threads);
    pthread_barrier_destroy(&barrier);
    shape_ok(&sh, "ops=%ld rounds=%ld live=%ld", (rounds + 1) * sh.threads * SLOTS, rounds,
             live);
    return 0;
}
