/*
 * alloc-test — a large random live set with a power-law size mix, whose
 * blocks are written and read.
 *
 * Mirrors the shape of alloc-test (the alloc-test1 and alloc-testN rows of
 * mimalloc-bench, from the ithare.com allocator tests): every thread keeps
 * 8192 live blocks whose sizes follow a 1/size law between 8 B and 16 KiB
 * (about 2.2 KiB on average, ~18 MiB live per thread) and replaces a random
 * one at each step.  Unlike glibc-thread, each new block's first 64 bytes are
 * written and read back when it is freed, so the cache behaviour of where
 * the allocator places blocks counts too.  The total work is split over the
 * threads.
 *
 *   rsbshape-alloc-test [-t THREADS] [-s SCALE] [--smoke]
 *
 * Self-check: the bytes written into a block are summed when it is freed
 * and compared with the sum written.
 */
#include "shape.h"

#define LIVE 8192

static struct shape sh;
static long steps_per_thread;

struct worker {
    int index;
};

struct slot {
    unsigned char *p;
    uint32_t size;
    uint32_t sum;
};

static uint32_t fill(unsigned char *p, size_t n, uint64_t seed)
{
    size_t m = n < 64 ? n : 64;
    uint32_t sum = 0;
    for (size_t i = 0; i < m; i++) {
        p[i] = (unsigned char)(seed + i * 131);
        sum += p[i];
    }
    return sum;
}

static uint32_t sum_of(const unsigned char *p, size_t n)
{
    size_t m = n < 64 ? n : 64;
    uint32_t sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += p[i];
    return sum;
}

static void *worker(void *arg)
{
    int me = ((struct worker *)arg)->index;
    rng_t rng = rng_make((uint64_t)me + 31);
    struct slot *live = shape_meta(&sh, sizeof *live * LIVE);
    for (uint32_t j = 0; j < LIVE; j++) {
        live[j].size = (uint32_t)rng_logsize(&rng, 8, 16384);
        live[j].p = shape_malloc(&sh, live[j].size);
        live[j].sum = fill(live[j].p, live[j].size, j);
    }
    for (long i = 0; i < steps_per_thread; i++) {
        uint32_t j = rng_below(&rng, LIVE);
        struct slot *s = &live[j];
        if (sum_of(s->p, s->size) != s->sum)
            shape_fail(&sh, "thread %d slot %u: contents changed", me, j);
        free(s->p);
        s->size = (uint32_t)rng_logsize(&rng, 8, 16384);
        s->p = shape_malloc(&sh, s->size);
        s->sum = fill(s->p, s->size, (uint64_t)i);
    }
    for (uint32_t j = 0; j < LIVE; j++) {
        if (sum_of(live[j].p, live[j].size) != live[j].sum)
            shape_fail(&sh, "thread %d slot %u: contents changed", me, j);
        free(live[j].p);
    }
    shape_meta_free(live, sizeof *live * LIVE);
    return NULL;
}

int main(int argc, char **argv)
{
    shape_init(&sh, "alloc-test", argc, argv, 1, "", NULL);
    steps_per_thread = shape_count(&sh, 5000000, 20000) / sh.threads;
    struct worker *w = shape_meta(&sh, sizeof *w * (size_t)sh.threads);
    for (int i = 0; i < sh.threads; i++)
        w[i].index = i;
    shape_run_threads(&sh, sh.threads, worker, w, sizeof *w);
    shape_meta_free(w, sizeof *w * (size_t)sh.threads);
    shape_ok(&sh, "steps=%ld", steps_per_thread * sh.threads);
    return 0;
}
