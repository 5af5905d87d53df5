/*
 * oversub — many more threads than cores, each replacing blocks of its own.
 *
 * T threads (16, 64 or 256 on the 2-core reference machine; 2 as the
 * reference) each keep about 100 live blocks of 16..1024 B and replace a
 * random one at each step; a fixed total number of steps is split over the
 * threads, and all threads start together (a barrier), so with T far above
 * the core count the scheduler preempts threads in the middle of malloc
 * and free.  An allocator whose lock holder can be preempted makes every
 * other thread wait for it; one that spins instead of sleeping wastes the
 * core the holder needs.  The shape of the "threads on 2 cores" workloads
 * that users run when they compare allocators on small machines.
 *
 *   rsbshape-oversub [-t THREADS] [-s SCALE] [--smoke]
 *
 * Self-check: every block is stamped with (thread, slot, generation) and
 * checked before it is freed.
 */
#include "shape.h"

#define LIVE 100

static struct shape sh;
static long steps_per_thread;
static pthread_barrier_t start;

struct worker {
    int index;
};

struct slot {
    void *p;
    uint32_t size;
    uint32_t gen;
};

static uint64_t tag_of(int t, uint32_t j, uint32_t gen)
{
    return ((uint64_t)t << 44) ^ ((uint64_t)j << 32) ^ gen;
}

static void *worker(void *arg)
{
    int me = ((struct worker *)arg)->index;
    rng_t rng = rng_make((uint64_t)me * 31 + 17);
    struct slot live[LIVE];
    for (uint32_t j = 0; j < LIVE; j++) {
        live[j].size = (uint32_t)rng_range(&rng, 16, 1024);
        live[j].gen = 0;
        live[j].p = shape_malloc(&sh, live[j].size);
        shape_stamp(live[j].p, live[j].size, tag_of(me, j, 0));
    }
    pthread_barrier_wait(&start);
    for (long i = 0; i < steps_per_thread; i++) {
        uint32_t j = rng_below(&rng, LIVE);
        struct slot *s = &live[j];
        if (!shape_stamp_ok(s->p, s->size, tag_of(me, j, s->gen)))
            shape_fail(&sh, "thread %d slot %u corrupted", me, j);
        free(s->p);
        s->size = (uint32_t)rng_range(&rng, 16, 1024);
        s->gen++;
        s->p = shape_malloc(&sh, s->size);
        shape_stamp(s->p, s->size, tag_of(me, j, s->gen));
    }
    for (uint32_t j = 0; j < LIVE; j++) {
        if (!shape_stamp_ok(live[j].p, live[j].size, tag_of(me, j, live[j].gen)))
            shape_fail(&sh, "thread %d slot %u corrupted at the end", me, j);
        free(live[j].p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    shape_init(&sh, "oversub", argc, argv, 64, "", NULL);
    steps_per_thread = shape_count(&sh, 16000000, 64000) / sh.threads;
    pthread_barrier_init(&start, NULL, (unsigned)sh.threads);
    struct worker *w = shape_meta(&sh, sizeof *w * (size_t)sh.threads);
    for (int i = 0; i < sh.threads; i++)
        w[i].index = i;
    shape_run_threads(&sh, sh.threads, worker, w, sizeof *w);
    shape_meta_free(w, sizeof *w * (size_t)sh.threads);
    pthread_barrier_destroy(&start);
    shape_ok(&sh, "ops=%ld", steps_per_thread * sh.threads);
    return 0;
}
