/*
 * mstress — threads that allocate, keep, trade and free objects of every size.
 *
 * Mirrors the shape of mimalloc's stress test (test/test-stress.c, the
 * mstress row of mimalloc-bench): in each of several iterations a fresh team
 * of threads is started; each thread allocates objects (mostly small, a few
 * up to 512 KiB), keeps some, frees others at random, and swaps objects with
 * a global transfer table, so objects migrate between threads and outlive
 * the thread that allocated them.  The threads exit at the end of each
 * iteration; what is in the transfer table then is freed by later threads.
 *
 *   rsbshape-mstress [-t THREADS] [-s SCALE] [--smoke]
 *
 * Self-check: an object carries its size, a unique id and a check byte of
 * both; its holder remembers the id (a thread that takes an object from the
 * transfer table reads the id and checks the object), and whoever frees it
 * verifies it first.  The number of objects left at the end must equal the
 * allocations minus the frees.
 */
#include "shape.h"

#include <stdatomic.h>

#define TRANSFER 1024
#define LOCAL 2048
#define MAGIC 0x6d73747265737321ull

static struct shape sh;
static _Atomic(uint64_t *) transfer[TRANSFER];
static long ops_per_thread;
static atomic_long allocs, frees;

static size_t obj_size(rng_t *r)
{
    uint32_t c = rng_below(r, 100);
    if (c < 93)
        return rng_logsize(r, 16, 512);
    if (c < 99)
        return rng_logsize(r, 513, 16384);
    return rng_logsize(r, 16385, 512 * 1024);
}

/* An object: its size in word 0, a unique id in word 1, and a check byte
 * of both at the end.  The holder remembers the id it expects. */
struct held {
    uint64_t *o;
    uint64_t id;
};

static uint8_t check_byte(size_t n, uint64_t id)
{
    return (uint8_t)shape_mix(n ^ id ^ MAGIC);
}

static struct held obj_new(rng_t *r, uint64_t id)
{
    size_t n = obj_size(r);
    uint64_t *o = shape_malloc(&sh, n);
    o[0] = n;
    o[1] = id;
    if (n > 16)
        ((unsigned char *)o)[n - 1] = check_byte(n, id);
    return (struct held){o, id};
}

static int obj_ok(const uint64_t *o, uint64_t id)
{
    size_t n = o[0];
    return n >= 16 && n <= 512 * 1024 && o[1] == id &&
           (n <= 16 || ((const unsigned char *)o)[n - 1] == check_byte(n, id));
}

static void obj_free(struct held h)
{
    if (h.o == NULL)
        return;
    if (!obj_ok(h.o, h.id))
        shape_fail(&sh, "object %p corrupted (size word %zu)", (void *)h.o, (size_t)h.o[0]);
    free(h.o);
}

/* Trade with the transfer table: ours goes in, whatever was there comes
 * out; the id of an incoming object is read from it (and checked). */
static struct held trade(struct held h, uint32_t slot)
{
    uint64_t *o = atomic_exchange(&transfer[slot], h.o);
    struct held in = {o, o ? o[1] : 0};
    if (o != NULL && !obj_ok(o, in.id))
        shape_fail(&sh, "object %p corrupted in transfer", (void *)o);
    return in;
}

struct worker {
    int index;
    int iter;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    rng_t rng = rng_make((uint64_t)w->iter * 1000003u + (uint64_t)w->index);
    uint64_t next_id = ((uint64_t)w->iter << 48) | ((uint64_t)w->index << 32);
    struct held *local = shape_meta(&sh, sizeof *local * LOCAL);
    long a = 0, f = 0;
    for (long i = 0; i < ops_per_thread; i++) {
        uint32_t c = rng_below(&rng, 100);
        uint32_t j = rng_below(&rng, LOCAL);
        if (c < 10) {
            local[j] = trade(local[j], rng_below(&rng, TRANSFER));
        } else if (c < 60) {
            if (local[j].o != NULL) {
                obj_free(local[j]);
                f++;
            }
            local[j] = obj_new(&rng, next_id++);
            a++;
        } else if (local[j].o != NULL) {
            obj_free(local[j]);
            local[j].o = NULL;
            f++;
        }
    }
    /* Leave a quarter behind in the transfer table for the next team, free
     * the rest. */
    for (uint32_t j = 0; j < LOCAL; j++) {
        if (local[j].o == NULL)
            continue;
        if (rng_below(&rng, 4) == 0)
            local[j] = trade(local[j], rng_below(&rng, TRANSFER));
        if (local[j].o != NULL) {
            obj_free(local[j]);
            f++;
        }
    }
    shape_meta_free(local, sizeof *local * LOCAL);
    atomic_fetch_add(&allocs, a);
    atomic_fetch_add(&frees, f);
    return NULL;
}

int main(int argc, char **argv)
{
    shape_init(&sh, "mstress", argc, argv, 2, "", NULL);
    int iters = sh.smoke ? 3 : 20;
    ops_per_thread = shape_count(&sh, 8000000, 60000) / iters / sh.threads;
    struct worker *w = shape_meta(&sh, sizeof *w * (size_t)sh.threads);
    for (int it = 0; it < iters; it++) {
        for (int i = 0; i < sh.threads; i++) {
            w[i].index = i;
            w[i].iter = it;
        }
        shape_run_threads(&sh, sh.threads, worker, w, sizeof *w);
    }
    long left = 0;
    for (int j = 0; j < TRANSFER; j++) {
        struct held h = trade((struct held){NULL, 0}, (uint32_t)j);
        if (h.o != NULL) {
            obj_free(h);
            left++;
        }
    }
    shape_meta_free(w, sizeof *w * (size_t)sh.threads);
    if (atomic_load(&allocs) != atomic_load(&frees) + left)
        shape_fail(&sh, "%ld allocated, %ld freed", (long)atomic_load(&allocs),
                   (long)atomic_load(&frees) + left);
    shape_ok(&sh, "iterations=%d allocs=%ld", iters, (long)atomic_load(&allocs));
    return 0;
}
