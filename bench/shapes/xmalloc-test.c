/*
 * xmalloc-test — producer threads allocate, consumer threads free.
 *
 * Mirrors the shape of xmalloc-test (Lever and Boreham, "malloc()
 * Performance in a Multithreaded Linux Environment", 2000; the
 * xmalloc-testN rows of mimalloc-bench): half of the threads allocate small
 * blocks and hand them over, the other half free them, so every block is
 * freed by a thread that did not allocate it.  Blocks travel in batches of
 * 128 through one mutex-protected queue of at most 64 batches; the batch
 * arrays are themselves allocated by the producer and freed by the consumer.
 *
 *   rsbshape-xmalloc-test [-t THREADS] [-s SCALE] [--smoke]
 *     THREADS is producers + consumers (even, >= 2)
 *
 * Self-check: every block carries a stamp of (producer, sequence number),
 * which the consumer checks before freeing it; the consumers count the
 * blocks and the sum of the sequence numbers, which must match what the
 * producers sent.
 */
#include "shape.h"

#define BATCH 128
#define QUEUE 64

struct item {
    void *p;
    uint32_t size;
    uint32_t producer;
    uint64_t seq;
};

struct batch {
    int n;
    struct item item[BATCH];
};

static struct shape sh;
static long per_producer; /* batches */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static struct batch *queue[QUEUE];
static int q_head, q_len;

struct role {
    int index;
    int producer;
    long blocks;
    uint64_t seq_sum;
};

static void put(struct batch *b)
{
    pthread_mutex_lock(&mu);
    while (q_len == QUEUE)
        pthread_cond_wait(&not_full, &mu);
    queue[(q_head + q_len++) % QUEUE] = b;
    pthread_cond_signal(&not_empty);
    pthread_mutex_unlock(&mu);
}

static struct batch *get(void)
{
    pthread_mutex_lock(&mu);
    while (q_len == 0)
        pthread_cond_wait(&not_empty, &mu);
    struct batch *b = queue[q_head];
    q_head = (q_head + 1) % QUEUE;
    q_len--;
    pthread_cond_signal(&not_full);
    pthread_mutex_unlock(&mu);
    return b;
}

static uint64_t tag_of(uint32_t producer, uint64_t seq)
{
    return ((uint64_t)producer << 56) ^ seq;
}

static void *run(void *arg)
{
    struct role *r = arg;
    if (r->producer) {
        rng_t rng = rng_make((uint64_t)r->index + 7);
        uint64_t seq = 0;
        for (long b = 0; b < per_producer; b++) {
            struct batch *bt = shape_malloc(&sh, sizeof *bt);
            bt->n = BATCH;
            for (int i = 0; i < BATCH; i++) {
                struct item *it = &bt->item[i];
                it->size = (uint32_t)rng_range(&rng, 8, 256);
                it->producer = (uint32_t)r->index;
                it->seq = seq++;
                it->p = shape_malloc(&sh, it->size);
                shape_stamp(it->p, it->size, tag_of(it->producer, it->seq));
                r->seq_sum += it->seq;
            }
            r->blocks += BATCH;
            put(bt);
        }
        return NULL;
    }
    for (;;) {
        struct batch *bt = get();
        if (bt->n == 0) { /* end of the stream */
            free(bt);
            return NULL;
        }
        for (int i = 0; i < bt->n; i++) {
            struct item *it = &bt->item[i];
            if (!shape_stamp_ok(it->p, it->size, tag_of(it->producer, it->seq)))
                shape_fail(&sh, "block %llu of producer %u corrupted",
                           (unsigned long long)it->seq, it->producer);
            r->seq_sum += it->seq;
            free(it->p);
        }
        r->blocks += bt->n;
        free(bt);
    }
}

static void *producers_then_stop(void *arg)
{
    /* Runs the producers, then sends one end marker per consumer. */
    struct role *p = arg;
    int n = sh.threads / 2;
    shape_run_threads(&sh, n, run, p, sizeof *p);
    for (int i = 0; i < n; i++) {
        struct batch *end = shape_malloc(&sh, sizeof *end);
        end->n = 0;
        put(end);
    }
    return NULL;
}

static void *consumers(void *arg)
{
    shape_run_threads(&sh, sh.threads / 2, run, arg, sizeof(struct role));
    return NULL;
}

int main(int argc, char **argv)
{
    shape_init(&sh, "xmalloc-test", argc, argv, 2, "", NULL);
    if (sh.threads < 2 || sh.threads % 2)
        shape_usage(&sh, "THREADS must be even: half producers, half consumers");
    int n = sh.threads / 2;
    long blocks = shape_count(&sh, 16000000, 50000);
    per_producer = blocks / BATCH / n;
    if (per_producer < 1)
        per_producer = 1;
    struct role *roles = shape_meta(&sh, sizeof *roles * (size_t)sh.threads);
    for (int i = 0; i < sh.threads; i++) {
        roles[i].index = i % n;
        roles[i].producer = i < n;
    }
    pthread_t pt, ct;
    if (pthread_create(&pt, NULL, producers_then_stop, roles) != 0 ||
        pthread_create(&ct, NULL, consumers, roles + n) != 0)
        shape_fail(&sh, "pthread_create failed");
    pthread_join(pt, NULL);
    pthread_join(ct, NULL);
    long made = 0, freed = 0;
    uint64_t sum_made = 0, sum_freed = 0;
    for (int i = 0; i < sh.threads; i++) {
        if (roles[i].producer) {
            made += roles[i].blocks;
            sum_made += roles[i].seq_sum;
        } else {
            freed += roles[i].blocks;
            sum_freed += roles[i].seq_sum;
        }
    }
    if (made != freed || sum_made != sum_freed)
        shape_fail(&sh, "%ld blocks sent, %ld freed", made, freed);
    shape_meta_free(roles, sizeof *roles * (size_t)sh.threads);
    shape_ok(&sh, "blocks=%ld", made);
    return 0;
}
