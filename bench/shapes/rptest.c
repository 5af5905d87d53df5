/*
 * rptest — rpmalloc's benchmark shape: loops of allocations of a skewed size
 * mix, a share of every loop's blocks freed by another thread, and threads
 * that come and go.
 *
 * Mirrors the shape of rpmalloc's benchmark program (mjansson/rpmalloc-
 * benchmark, the rptestN rows of mimalloc-bench): each thread runs loops;
 * in every loop it allocates a set of blocks (16 B .. 16000 B, small sizes
 * far more likely), frees the set of the loop before in a scrambled order,
 * and passes one block in eight to the next thread, which frees it.  After a
 * number of loops all threads exit and a new team starts (thread churn); a
 * dead thread's blocks are still being freed by the others.
 *
 *   rsbshape-rptest [-t THREADS] [-s SCALE] [--smoke]
 *
 * Self-check: every block carries a stamp of (thread, loop, index) checked
 * by whoever frees it, and the number of blocks freed must equal the number
 * allocated.
 */
#include "shape.h"

#include <stdatomic.h>

#define SET 256   /* blocks allocated per loop */
#define SHARE 8   /* one block in SHARE goes to the next thread */
#define SIZES 8192

struct block {
    void *p;
    uint32_t size;
    uint64_t tag;
};

/* A batch of blocks handed to another thread: a singly linked list. */
struct parcel {
    struct parcel *next;
    int n;
    struct block b[SET / SHARE];
};

struct mailbox {
    pthread_mutex_t mu;
    struct parcel *head;
} __attribute__((aligned(64)));

static struct shape sh;
static struct mailbox *box;
static uint32_t sizes[SIZES];
static long loops_per_cycle;
static atomic_long allocated, freed;

struct worker {
    int index;
    int cycle;
};

static void check_free(const struct block *b)
{
    if (!shape_stamp_ok(b->p, b->size, b->tag))
        shape_fail(&sh, "block with tag %llx corrupted", (unsigned long long)b->tag);
    free(b->p);
}

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b != 0) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static long drain(struct mailbox *m)
{
    pthread_mutex_lock(&m->mu);
    struct parcel *p = m->head;
    m->head = NULL;
    pthread_mutex_unlock(&m->mu);
    long n = 0;
    while (p != NULL) {
        struct parcel *next = p->next;
        for (int i = 0; i < p->n; i++)
            check_free(&p->b[i]);
        n += p->n;
        free(p);
        p = next;
    }
    return n;
}

static void *worker(void *arg)
{
    struct worker *w = arg;
    rng_t rng = rng_make((uint64_t)w->cycle * 7919u + (uint64_t)w->index + 1);
    struct block *prev = shape_meta(&sh, sizeof *prev * SET);
    struct block *cur = shape_meta(&sh, sizeof *cur * SET);
    int nprev = 0;
    long a = 0, f = 0;
    for (long loop = 0; loop < loops_per_cycle; loop++) {
        int ncur = 0;
        struct parcel *out = shape_malloc(&sh, sizeof *out);
        out->n = 0;
        for (int i = 0; i < SET; i++) {
            struct block b;
            b.size = sizes[rng_below(&rng, SIZES)];
            b.tag = ((uint64_t)w->index << 48) ^ ((uint64_t)w->cycle << 40) ^
                    ((uint64_t)loop << 12) ^ (uint64_t)i;
            b.p = shape_malloc(&sh, b.size);
            shape_stamp(b.p, b.size, b.tag);
            if (i % SHARE == 0)
                out->b[out->n++] = b;
            else
                cur[ncur++] = b;
        }
        a += SET;
        struct mailbox *m = &box[(w->index + 1) % sh.threads];
        pthread_mutex_lock(&m->mu);
        out->next = m->head;
        m->head = out;
        pthread_mutex_unlock(&m->mu);
        /* Free the previous loop's blocks in a scrambled order. */
        if (nprev > 0) {
            uint32_t n = (uint32_t)nprev;
            uint32_t at = rng_below(&rng, n);
            uint32_t step = 1 + rng_below(&rng, n);
            while (gcd(step, n) != 1)
                step++;
            for (uint32_t k = 0; k < n; k++, at = (at + step) % n)
                check_free(&prev[at]);
            f += nprev;
        }
        struct block *t = prev;
        prev = cur;
        cur = t;
        nprev = ncur;
        f += drain(&box[w->index]);
    }
    for (int k = 0; k < nprev; k++)
        check_free(&prev[k]);
    f += nprev;
    shape_meta_free(prev, sizeof *prev * SET);
    shape_meta_free(cur, sizeof *cur * SET);
    atomic_fetch_add(&allocated, a);
    atomic_fetch_add(&freed, f);
    return NULL;
}

int main(int argc, char **argv)
{
    shape_init(&sh, "rptest", argc, argv, 2, "", NULL);
    int cycles = sh.smoke ? 2 : 10;
    loops_per_cycle = shape_count(&sh, 6000000, 30000) / SET / cycles / sh.threads;
    if (loops_per_cycle < 1)
        loops_per_cycle = 1;
    /* Sizes 16..16000, weighted towards small: a log-uniform draw. */
    rng_t rng = rng_make(12345);
    for (int i = 0; i < SIZES; i++)
        sizes[i] = (uint32_t)rng_logsize(&rng, 16, 16000);
    box = shape_meta(&sh, sizeof *box * (size_t)sh.threads);
    for (int i = 0; i < sh.threads; i++) {
        pthread_mutex_init(&box[i].mu, NULL);
        box[i].head = NULL;
    }
    struct worker *w = shape_meta(&sh, sizeof *w * (size_t)sh.threads);
    for (int c = 0; c < cycles; c++) {
        for (int i = 0; i < sh.threads; i++) {
            w[i].index = i;
            w[i].cycle = c;
        }
        shape_run_threads(&sh, sh.threads, worker, w, sizeof *w);
    }
    long left = 0;
    for (int i = 0; i < sh.threads; i++)
        left += drain(&box[i]);
    shape_meta_free(w, sizeof *w * (size_t)sh.threads);
    shape_meta_free(box, sizeof *box * (size_t)sh.threads);
    if (atomic_load(&allocated) != atomic_load(&freed) + left)
        shape_fail(&sh, "%ld blocks allocated, %ld freed", (long)atomic_load(&allocated),
                   (long)atomic_load(&freed) + left);
    shape_ok(&sh, "cycles=%d blocks=%ld", cycles, (long)atomic_load(&allocated));
    return 0;
}
