/*
 * Multi-thread stress with content checks.
 *
 * Every block is filled with a pattern derived from its address and size
 * (rsbtest.h) and verified before it is freed or reallocated, so a block
 * handed out twice, an overlap, a lost realloc copy or a stray write by the
 * allocator shows up as a pattern mismatch with the exact offset.
 *
 * Sizes span tiny, small classes, the largest small class, medium page runs
 * and huge mappings; blocks travel between threads through a shared exchange
 * array (cross-thread free and cross-thread realloc) and through a ring
 * pipeline where each hop reallocs into another class.
 *
 * RSBT_STRESS_SCALE (env, default 1.0) scales the number of operations.
 */
#include "rsbtest.h"
#include "rsbtest_mt.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>

/* ------------------------------------------------------------ failures -- */


static _Thread_local size_t t_size_limit;   /* 0: the full size mix */

static size_t pick_size(uint64_t *r)
{
    if (t_size_limit)
        return rnd(r) % t_size_limit;
    uint64_t k = rnd(r) % 1000;
    if (k < 600)
        return rnd(r) % 257;                          /* tiny and small, incl. 0 */
    if (k < 850)
        return 257 + rnd(r) % (16 * KiB);             /* small classes */
    if (k < 950)
        return 16 * KiB + rnd(r) % (240 * KiB + 1);   /* up to the largest class */
    if (k < 990)
        return 256 * KiB + 1 + rnd(r) % (2 * MiB - 256 * KiB);   /* medium */
    return 2 * MiB + 1 + rnd(r) % (6 * MiB);          /* huge (mmap) */
}

/* --------------------------------------------------------------- blocks -- */

struct blk {
    unsigned char *p;
    size_t n;
    uint64_t seed;
};

static int blk_verify(const struct blk *b, const char *when)
{
    size_t bad = 0;
    if (!b->p)
        return 0;
    if (rsbt_check(b->p, b->n, b->n, b->seed, &bad)) {
        fail("%s: block %p of %zu bytes corrupted at offset %zu (byte %#x, want %#x)", when, (void *)b->p,
             b->n, bad, b->p[bad], rsbt_byte_at(b->seed, bad));
        return -1;
    }
    return 0;
}

static int blk_set(struct blk *b, void *p, size_t n, const char *what)
{
    if (!p) {
        fail("%s(%zu) returned NULL (errno %d)", what, n, errno);
        return -1;
    }
    if ((uintptr_t)p & 15) {
        fail("%s(%zu) returned %p: not 16-aligned", what, n, p);
        return -1;
    }
    size_t us = T_usable(p);
    if (us < n) {
        fail("%s(%zu) = %p has usable size %zu", what, n, p, us);
        return -1;
    }
    b->p = p;
    b->n = n;
    b->seed = rsbt_seed(p, n);
    rsbt_fill(p, n, b->seed);
    return 0;
}

static int blk_alloc(struct blk *b, uint64_t *r)
{
    size_t n = pick_size(r);
    uint64_t how = rnd(r) % 16;
    void *p;
    if (how < 10)
        return blk_set(b, T(malloc)(n), n, "malloc");
    if (how < 13) {
        p = T(calloc)(1, n);
        if (p) {
            const unsigned char *c = p;
            size_t lim = n < 4096 ? n : 4096;
            for (size_t i = 0; i < lim; i++)
                if (c[i]) {
                    fail("calloc(1, %zu) = %p: byte %zu is %#x", n, p, i, c[i]);
                    return -1;
                }
            if (n && c[n - 1]) {
                fail("calloc(1, %zu) = %p: last byte is %#x", n, p, c[n - 1]);
                return -1;
            }
        }
        return blk_set(b, p, n, "calloc");
    }
    size_t al = (size_t)16 << (rnd(r) % 9);          /* 16 .. 4096 */
    if (how == 15)
        al = (size_t)64 * KiB << (rnd(r) % 6);      /* 64 KiB .. 2 MiB */
    p = T(aligned_alloc)(al, n);
    if (p && ((uintptr_t)p & (al - 1))) {
        fail("aligned_alloc(%zu, %zu) = %p misaligned", al, n, p);
        return -1;
    }
    return blk_set(b, p, n, "aligned_alloc");
}

static int blk_free(struct blk *b, uint64_t *r, const char *when)
{
    if (blk_verify(b, when))
        return -1;
    if (b->p) {
        if (rnd(r) & 1)
            T(free)(b->p);
        else
            rsbt_free_sized(b->p, b->n);
    }
    b->p = NULL;
    return 0;
}

static int blk_realloc(struct blk *b, size_t m, const char *when)
{
    if (blk_verify(b, when))
        return -1;
    if (m == 0)
        m = 1;     /* realloc(p, 0) frees: tested in contract.c */
    void *q = T(realloc)(b->p, m);
    if (!q) {
        fail("%s: realloc(%p, %zu -> %zu) failed", when, (void *)b->p, b->n, m);
        return -1;
    }
    struct blk old = *b;
    size_t bad = 0;
    if (old.p && rsbt_check(q, old.n, m, old.seed, &bad)) {
        fail("%s: realloc %p (%zu) -> %p (%zu) lost data at offset %zu", when, (void *)old.p, old.n, q, m, bad);
        return -1;
    }
    return blk_set(b, q, m, "realloc");
}

/* ------------------------------------------------------- random worker -- */

#define XCHG 1024
static _Atomic(struct blk *) g_xchg[XCHG];

struct wargs {
    int id;
    long ops;
    int slots;
    size_t size_limit;
};

static void *worker(void *arg)
{
    struct wargs *a = arg;
    t_size_limit = a->size_limit;
    uint64_t r = 0x9e3779b97f4a7c15ull * (uint64_t)(a->id + 1) ^ (uint64_t)time(NULL);
    struct blk *s = T(calloc)((size_t)a->slots, sizeof *s);
    if (!s) {
        fail("calloc for slots failed");
        return NULL;
    }
    for (long op = 0; op < a->ops && !atomic_load_explicit(&g_failed, memory_order_relaxed); op++) {
        struct blk *b = &s[rnd(&r) % (uint64_t)a->slots];
        uint64_t k = rnd(&r) % 100;
        if (k < 40) {                                  /* allocate or free */
            if (b->p ? blk_free(b, &r, "free") : blk_alloc(b, &r))
                break;
        } else if (k < 65) {                           /* realloc across classes */
            if (blk_realloc(b, pick_size(&r), "realloc"))
                break;
        } else if (k < 80) {                           /* hand a block to another thread */
            struct blk *mine = NULL;
            if (b->p) {
                mine = T(malloc)(sizeof *mine);
                if (!mine) {
                    fail("malloc(node) failed");
                    break;
                }
                *mine = *b;
                b->p = NULL;
            }
            struct blk *theirs = atomic_exchange(&g_xchg[rnd(&r) % XCHG], mine);
            if (theirs) {
                *b = *theirs;
                T(free)(theirs);
                if (blk_verify(b, "received from another thread"))
                    break;
                /* use it here: realloc it or free it */
                if ((rnd(&r) & 3) == 0) {
                    if (blk_realloc(b, pick_size(&r), "realloc of a received block"))
                        break;
                } else if ((rnd(&r) & 3) == 0) {
                    if (blk_free(b, &r, "free of a received block"))
                        break;
                }
            }
        } else {                                       /* short-lived block */
            struct blk t = {0};
            if (blk_alloc(&t, &r) || blk_free(&t, &r, "short-lived"))
                break;
        }
    }
    for (int i = 0; i < a->slots; i++)
        if (s[i].p && blk_free(&s[i], &r, "final free"))
            break;
    T(free)(s);
    return NULL;
}

static void drain_xchg(void)
{
    uint64_t r = 1;
    for (int i = 0; i < XCHG; i++) {
        struct blk *t = atomic_exchange(&g_xchg[i], NULL);
        if (t) {
            blk_free(t, &r, "drain");
            T(free)(t);
        }
    }
}

static size_t stats_baseline(void)
{
    return rsbt_have_stats() ? rsbt_in_use() : 0;
}

static void check_no_leak(size_t base)
{
    if (!rsbt_have_stats())
        return;
    (void)T_trim(0);   /* drains pending cross-thread frees */
    size_t now = rsbt_in_use();
    cr_assert_leq(now, base + 256 * KiB,
                  "rsb_stats in_use %zu after every block was freed, %zu before: blocks (or their accounting) leaked",
                  now, base);
}

static void run_random(int nthreads, long ops_per_thread, int slots, size_t size_limit)
{
    atomic_store(&g_failed, 0);
    size_t base = stats_baseline();
    pthread_t t[64];
    struct wargs a[64];
    long ops = (long)((double)ops_per_thread * scale());
    for (int i = 0; i < nthreads; i++) {
        a[i] = (struct wargs){i, ops, slots, size_limit};
        cr_assert_eq(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    drain_xchg();
    cr_assert(!atomic_load(&g_failed), "%s", g_msg);
    check_no_leak(base);
}

Test(stress, random_1_thread, .timeout = 60)
{
    run_random(1, 200000, 512, 0);
}

Test(stress, random_8_threads, .timeout = 90)
{
    run_random(8, 40000, 256, 0);
}

Test(stress, random_8_threads_small_only, .timeout = 60)
{
    /* Tight loop on a few small slots: maximal cache-lock and remote-free
     * traffic per byte. */
    run_random(8, 150000, 16, 1024);
}

/* -------------------------------------------------------- ring pipeline -- */

/*
 * N stages in a ring; stage i receives blocks from stage i-1 through a
 * bounded SPSC queue, verifies each block, reallocs it into a different size
 * (class change, medium and mmap range included) and passes it on.  After
 * HOPS hops a block is freed by whichever thread holds it.
 */
#define QCAP 256
struct msg {
    struct blk b;
    int hops;
};
struct spsc {
    _Atomic size_t head, tail;
    struct msg *slot[QCAP];
};

static struct spsc g_q[16];
static atomic_long g_live;     /* messages not yet freed */
static atomic_long g_freed;

struct pargs {
    int id, n;
    long inject;
};

static int q_push(struct spsc *q, struct msg *m)
{
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - atomic_load_explicit(&q->head, memory_order_acquire) == QCAP)
        return 0;
    q->slot[t % QCAP] = m;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return 1;
}

static struct msg *q_pop(struct spsc *q)
{
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&q->tail, memory_order_acquire))
        return NULL;
    struct msg *m = q->slot[h % QCAP];
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return m;
}

#define HOPS 6

static void *stage(void *arg)
{
    struct pargs *a = arg;
    struct spsc *in = &g_q[(a->id + a->n - 1) % a->n], *out = &g_q[a->id];
    uint64_t r = 0x51ed270b27ull * (uint64_t)(a->id + 7);
    long injected = 0;
    struct msg *pending = NULL;
    while (!atomic_load_explicit(&g_failed, memory_order_relaxed)) {
        int did = 0;
        if (pending) {
            if (q_push(out, pending))
                pending = NULL, did = 1;
        } else if (injected < a->inject && (rnd(&r) & 1)) {
            struct msg *m = T(malloc)(sizeof *m);
            if (!m) {
                fail("malloc(msg) failed");
                break;
            }
            memset(m, 0, sizeof *m);
            if (blk_alloc(&m->b, &r))
                break;
            injected++;
            pending = m;
            did = 1;
        }
        struct msg *m = q_pop(in);
        if (m) {
            did = 1;
            if (++m->hops >= HOPS) {
                if (blk_free(&m->b, &r, "pipeline free"))
                    break;
                T(free)(m);
                atomic_fetch_sub(&g_live, 1);
                atomic_fetch_add(&g_freed, 1);
            } else {
                if (blk_realloc(&m->b, pick_size(&r), "pipeline realloc"))
                    break;
                while (!q_push(out, m)) {
                    if (atomic_load_explicit(&g_failed, memory_order_relaxed))
                        return NULL;
                    /* out is full: keep draining in to avoid a ring deadlock */
                    struct msg *x = q_pop(in);
                    if (x) {
                        if (blk_free(&x->b, &r, "pipeline drain"))
                            return NULL;
                        T(free)(x);
                        atomic_fetch_sub(&g_live, 1);
                        atomic_fetch_add(&g_freed, 1);
                    } else {
                        sched_yield();
                    }
                }
            }
        }
        if (!did) {
            if (injected >= a->inject && !pending && atomic_load(&g_live) == 0)
                break;
            sched_yield();
        }
    }
    return NULL;
}

static void run_pipeline(int n, long per_stage)
{
    atomic_store(&g_failed, 0);
    size_t base = stats_baseline();
    memset(g_q, 0, sizeof g_q);
    long inject = (long)((double)per_stage * scale());
    atomic_store(&g_live, (long)n * inject);
    atomic_store(&g_freed, 0);
    pthread_t t[16];
    struct pargs a[16];
    for (int i = 0; i < n; i++) {
        a[i] = (struct pargs){i, n, inject};
        cr_assert_eq(pthread_create(&t[i], NULL, stage, &a[i]), 0);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    cr_assert(!atomic_load(&g_failed), "%s", g_msg);
    cr_assert_eq(atomic_load(&g_freed), (long)n * inject, "pipeline freed %ld of %ld blocks",
                 atomic_load(&g_freed), (long)n * inject);
    check_no_leak(base);
}

Test(stress, pipeline_2_threads_realloc_each_hop, .timeout = 60)
{
    run_pipeline(2, 25000);
}

Test(stress, pipeline_8_threads_realloc_each_hop, .timeout = 90)
{
    run_pipeline(8, 8000);
}

/* --------------------------------------- huge realloc across threads -- */

/* Blocks grow through the mmap range in one thread and shrink back into the
 * small classes in another. */
#define ROW 12
static struct blk g_hand[8][ROW];
static pthread_barrier_t g_bar;

static void *grow_shrink(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t r = (uint64_t)id * 977 + 1;
    /* On a failure keep meeting the barriers (doing no work) so that the
     * other threads finish and the failure is reported, not a hang. */
    for (int round = 0; round < 4; round++) {
        /* phase 1: grow my row through medium into huge */
        for (int i = 0; i < ROW && !atomic_load(&g_failed); i++) {
            struct blk *b = &g_hand[id][i];
            size_t sz = (size_t)(1 + rnd(&r) % 64);
            if (!b->p && blk_set(b, T(malloc)(sz), sz, "malloc"))
                break;
            static const size_t steps[] = {1000, 70 * KiB, 400 * KiB, 3 * MiB, 9 * MiB};
            for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++)
                if (blk_realloc(b, steps[s] + rnd(&r) % 4096, "grow"))
                    break;
        }
        pthread_barrier_wait(&g_bar);
        /* phase 2: shrink the row of the next thread back to small */
        int other = (id + 1) % 8;
        for (int i = 0; i < ROW && !atomic_load(&g_failed); i++) {
            struct blk *b = &g_hand[other][i];
            static const size_t steps[] = {5 * MiB, 1 * MiB, 100 * KiB, 200, 24};
            for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++)
                if (blk_realloc(b, steps[s] - rnd(&r) % 16, "shrink"))
                    break;
            if ((round & 1) && !atomic_load(&g_failed))
                blk_free(b, &r, "free after shrink");
        }
        pthread_barrier_wait(&g_bar);
    }
    return NULL;
}

Test(stress, realloc_into_mmap_range_and_back_across_threads, .timeout = 90)
{
    atomic_store(&g_failed, 0);
    size_t base = stats_baseline();
    memset(g_hand, 0, sizeof g_hand);
    pthread_barrier_init(&g_bar, NULL, 8);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, grow_shrink, (void *)(intptr_t)i), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&g_bar);
    cr_assert(!atomic_load(&g_failed), "%s", g_msg);
    uint64_t r = 5;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < ROW; j++)
            blk_free(&g_hand[i][j], &r, "final");
    cr_assert(!atomic_load(&g_failed), "%s", g_msg);
    check_no_leak(base);
}

#if defined(RSBT_VARIANT_PRELOAD)
Test(preload, librsbmalloc_is_preloaded)
{
    /* Without this the preload variant would quietly test glibc. */
    cr_assert(rsbt_have_stats(), "rsb_stats is not resolvable: LD_PRELOAD of librsbmalloc.so did not take effect");
    void *p = malloc(17);
    cr_assert_not_null(p);
    cr_assert_eq(rsb_malloc_usable_size(p), malloc_usable_size(p));
    free(p);
}
#endif
