/*
 * cache-thrash — active false sharing.
 *
 * Mirrors the shape of Hoard's cache-thrash benchmark (Berger et al.,
 * "Hoard: A Scalable Memory Allocator for Multithreaded Applications",
 * ASPLOS 2000; the cache-thrashN rows of mimalloc-bench): every thread
 * repeatedly allocates one small object, writes it many times and frees
 * it.  An allocator that gives two threads objects in the same cache line
 * makes their writes fight over that line; one that keeps each thread's
 * objects apart costs nothing.  The total work is split over the threads,
 * which start together.
 *
 *   rsbshape-cache-thrash [-t THREADS] [-s SCALE] [--smoke]
 *
 * Self-check: after its writes each thread reads its object back, and the
 * value must be what it wrote.
 */
#include "shape.h"

#define OBJ 8         /* object size */
#define WRITES 2000   /* writes of each byte per allocation */

static struct shape sh;
static long iters_per_thread;
static pthread_barrier_t start;

struct worker {
    int index;
};

static void *worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start);
    for (long i = 0; i < iters_per_thread; i++) {
        volatile unsigned char *p = shape_malloc(&sh, OBJ);
        for (int b = 0; b < OBJ; b++)
            p[b] = (unsigned char)b;
        for (int w = 0; w < WRITES; w++)
            for (int b = 0; b < OBJ; b++)
                p[b] = (unsigned char)(p[b] + 1);
        for (int b = 0; b < OBJ; b++)
            if (p[b] != (unsigned char)(b + WRITES))
                shape_fail(&sh, "object %p byte %d: read %u", (void *)p, b, p[b]);
        free((void *)p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    shape_init(&sh, "cache-thrash", argc, argv, 1, "", NULL);
    iters_per_thread = shape_count(&sh, 50000, 2000) / sh.threads;
    struct worker *w = shape_meta(&sh, sizeof *w * (size_t)sh.threads);
    for (int i = 0; i < sh.threads; i++)
        w[i].index = i;
    pthread_barrier_init(&start, NULL, (unsigned)sh.threads);
    shape_run_threads(&sh, sh.threads, worker, w, sizeof *w);
    pthread_barrier_destroy(&start);
    shape_meta_free(w, sizeof *w * (size_t)sh.threads);
    shape_ok(&sh, "iterations=%ld", iters_per_thread * sh.threads);
    return 0;
}
