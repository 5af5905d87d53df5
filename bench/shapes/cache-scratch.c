/*
 * cache-scratch — passive false sharing.
 *
 * Mirrors the shape of Hoard's cache-scratch benchmark (Berger et al.,
 * ASPLOS 2000; the cache-scratchN rows of mimalloc-bench): the main thread
 * allocates one small object per thread, all in a row, and hands object i
 * to thread i, which frees it at once.  Then every thread repeatedly
 * allocates a small object, writes it many times and frees it.  An
 * allocator that gives the freed object (or its cache-line neighbours)
 * back to the thread that freed it places the threads' hot objects in one
 * cache line; one that serves each thread from its own memory does not.
 *
 *   rsbshape-cache-scratch [-t THREADS] [-s SCALE] [--smoke]
 *
 * Self-check: the handed-over objects carry a stamp checked before they are
 * freed; after its writes each thread reads its object back.
 */
#include "shape.h"

#define OBJ 8
#define WRITES 2000

static struct shape sh;
static long iters_per_thread;
static pthread_barrier_t start;

struct worker {
    int index;
    unsigned char *gift;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    if (!shape_stamp_ok(w->gift, OBJ, (uint64_t)w->index))
        shape_fail(&sh, "handed-over object %d corrupted", w->index);
    free(w->gift);
    pthread_barrier_wait(&start);
    for (long i = 0; i < iters_per_thread; i++) {
        volatile unsigned char *p = shape_malloc(&sh, OBJ);
        for (int b = 0; b < OBJ; b++)
            p[b] = (unsigned char)b;
        for (int k = 0; k < WRITES; k++)
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
    shape_init(&sh, "cache-scratch", argc, argv, 1, "", NULL);
    iters_per_thread = shape_count(&sh, 50000, 2000) / sh.threads;
    struct worker *w = shape_meta(&sh, sizeof *w * (size_t)sh.threads);
    for (int i = 0; i < sh.threads; i++) {
        w[i].index = i;
        w[i].gift = shape_malloc(&sh, OBJ);
        shape_stamp(w[i].gift, OBJ, (uint64_t)i);
    }
    pthread_barrier_init(&start, NULL, (unsigned)sh.threads);
    shape_run_threads(&sh, sh.threads, worker, w, sizeof *w);
    pthread_barrier_destroy(&start);
    shape_meta_free(w, sizeof *w * (size_t)sh.threads);
    shape_ok(&sh, "iterations=%ld", iters_per_thread * sh.threads);
    return 0;
}
