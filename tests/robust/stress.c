/*
 * Randomized multi-thread stress with content checks, time-bounded.
 *
 *   stress/random       2..64 threads; sizes log-uniform 1 B..4 MiB; malloc,
 *                       calloc, memalign (16 B..4 MiB alignments), realloc
 *                       across classes; about 25% of the frees are remote
 *                       (the block goes through a shared exchange and is
 *                       freed, or reallocated, by whichever thread takes it).
 *   stress/fork_storm   threads allocate while the main thread forks again
 *                       and again; each child allocates in every class,
 *                       frees blocks inherited from the parent, checks
 *                       contents and exits; a child that hangs (a lock held
 *                       across fork) is killed by its alarm and fails.
 *   stress/thread_churn thousands of short-lived threads that allocate,
 *                       leave blocks behind for others to free, and exit
 *                       (thread-exit flush of the thread caches).
 *
 * Every block carries a fill pattern, checked before it is freed or
 * reallocated and by sampling while it lives.  At the end of each test all
 * blocks are freed and, after rsb_malloc_trim, nothing may be in use.
 *
 * Time: RSBT_STRESS_SECONDS (default 4) per test, split between the thread
 * counts; scripts/test-robust --long runs it for an hour.  Built twice: the
 * prefixed API (runs under ASan and TSan) and the libc names linked with
 * librsbmalloc.so (RSBT_LIBC; glibc's own allocations, thread start-up and
 * teardown, then go through rsbmalloc too).
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "robust.h"
#include "rsbmalloc.h"

#if RSBT_LIBC
#include <malloc.h>
#define A_malloc malloc
#define A_calloc calloc
#define A_realloc realloc
#define A_free free
#define A_memalign memalign
#define A_posix_memalign posix_memalign
#define A_usable malloc_usable_size
#else
#define A_malloc rsb_malloc
#define A_calloc rsb_calloc
#define A_realloc rsb_realloc
#define A_free rsb_free
#define A_memalign rsb_memalign
#define A_posix_memalign rsb_posix_memalign
#define A_usable rsb_malloc_usable_size
#endif

/* ---- failures from any thread ---------------------------------------------- */

static atomic_int failed;
static atomic_int stop_workers;
static char fail_msg[512];
static pthread_mutex_t fail_mu = PTHREAD_MUTEX_INITIALIZER;

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...) {
    pthread_mutex_lock(&fail_mu);
    if (!atomic_exchange(&failed, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(fail_msg, sizeof fail_msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "stress: %s\n", fail_msg);
    }
    pthread_mutex_unlock(&fail_mu);
}

static double seconds_per_test(void) {
    const char *s = getenv("RSBT_STRESS_SECONDS");
    double v = s ? atof(s) : 4.0;
    return v > 0 ? v : 4.0;
}

/* ---- blocks ------------------------------------------------------------------- */

typedef struct blk {
    unsigned char *p;
    size_t size, align;
    unsigned fill;
} blk;

static _Atomic unsigned fill_seq;

static size_t pick_size(rb_rng *r) { return rb_log_uniform(r, 1, 4 * RB_MiB); }

static bool new_block(blk *b, rb_rng *r) {
    size_t size = pick_size(r);
    unsigned k = (unsigned)rb_below(r, 100);
    size_t align = 16;
    unsigned char *p;
    bool zero = false;
    if (k < 10) {
        p = A_calloc(1, size);
        zero = true;
    } else if (k < 16) {
        align = (size_t)16 << rb_below(r, 19); /* 16 B .. 4 MiB */
        p = A_memalign(align, size);
    } else if (k < 20) {
        align = (size_t)16 << rb_below(r, 13); /* 16 B .. 64 KiB */
        void *q = NULL;
        if (A_posix_memalign(&q, align, size) != 0) q = NULL;
        p = q;
    } else {
        p = A_malloc(size);
    }
    if (!p) {
        fail("allocation of %zu (align %zu) failed: errno %d", size, align, errno);
        return false;
    }
    if ((uintptr_t)p % align) fail("%p not aligned to %zu", (void *)p, align);
    if (A_usable(p) < size) fail("usable size %zu < %zu", (size_t)A_usable(p), size);
    if (zero && !rb_is_zero_sparse(p, size)) fail("calloc(%zu) not zeroed", size);
    b->p = p;
    b->size = size;
    b->align = align;
    b->fill = atomic_fetch_add_explicit(&fill_seq, 1, memory_order_relaxed);
    rb_fill_sparse(p, b->fill, size);
    return true;
}

static void check_block(const blk *b, const char *when) {
    size_t bad = rb_check_sparse(b->p, b->fill, b->size);
    if (bad != (size_t)-1)
        fail("%s: block %p of %zu (align %zu) corrupted at offset %zu", when, (void *)b->p, b->size, b->align,
             bad);
}

static void free_block(blk *b) {
    check_block(b, "before free");
    A_free(b->p);
    b->p = NULL;
}

/* realloc to a size in another class, maybe; contents kept. */
static void realloc_block(blk *b, rb_rng *r) {
    check_block(b, "before realloc");
    size_t ns = pick_size(r);
    unsigned char *q = A_realloc(b->p, ns);
    if (!q) {
        fail("realloc %zu -> %zu failed: errno %d", b->size, ns, errno);
        return;
    }
    size_t keep = b->size < ns ? b->size : ns;
    size_t bad = rb_check_sparse_n(q, b->fill, b->size, keep);
    if (bad != (size_t)-1) fail("realloc %zu -> %zu lost contents at %zu", b->size, ns, bad);
    if ((uintptr_t)q % 16) fail("realloc returned misaligned %p", (void *)q);
    b->p = q;
    b->size = ns;
    b->align = 16;
    rb_fill_sparse(q, b->fill, ns);
}

/* ---- the exchange: blocks change threads through it ---------------------- */

#define XSLOTS 256
typedef struct xslot {
    pthread_mutex_t mu;
    blk b;
} xslot;
static xslot xchg[XSLOTS];

static void xchg_init(void) {
    for (unsigned i = 0; i < XSLOTS; i++) {
        pthread_mutex_init(&xchg[i].mu, NULL);
        xchg[i].b.p = NULL;
    }
}

/* Put b in a slot; returns the block that was there (p NULL if none). */
static blk xchg_swap(unsigned i, blk b) {
    xslot *s = &xchg[i % XSLOTS];
    pthread_mutex_lock(&s->mu);
    blk old = s->b;
    s->b = b;
    pthread_mutex_unlock(&s->mu);
    return old;
}

static void xchg_drain(void) {
    for (unsigned i = 0; i < XSLOTS; i++) {
        blk none = {0};
        blk b = xchg_swap(i, none);
        if (b.p) free_block(&b);
    }
}

/* ---- the random workload of one thread -------------------------------------- */

#define TLIVE 48

typedef struct worker_arg {
    uint64_t seed;
    double until;
    unsigned long ops;
    unsigned live_max;
} worker_arg;

static void *random_worker(void *va) {
    worker_arg *a = va;
    rb_rng r;
    rb_seed(&r, a->seed);
    blk live[TLIVE] = {{0}};
    unsigned n = 0;
    unsigned live_max = a->live_max ? a->live_max : TLIVE;
    unsigned long ops = 0;
    while (!atomic_load_explicit(&failed, memory_order_relaxed)) {
        if ((ops & 63) == 0 && (rh_now() >= a->until || atomic_load(&stop_workers))) break;
        ops++;
        unsigned k = (unsigned)rb_below(&r, 100);
        if (n < live_max && (k < 50 || n == 0)) {
            if (new_block(&live[n], &r)) n++;
        } else if (k < 62) {
            realloc_block(&live[rb_below(&r, n)], &r);
        } else if (k < 65) {
            check_block(&live[rb_below(&r, n)], "while live");
        } else {
            /* free: 3 in 4 local, 1 in 4 through the exchange (remote) */
            unsigned i = (unsigned)rb_below(&r, n);
            blk b = live[i];
            live[i] = live[--n];
            if (rb_below(&r, 4) == 0) {
                blk got = xchg_swap((unsigned)rb_next(&r), b);
                if (got.p) {
                    /* Someone else's block: sometimes realloc it first. */
                    if (rb_below(&r, 4) == 0) realloc_block(&got, &r);
                    if (n < live_max)
                        live[n++] = got;
                    else
                        free_block(&got);
                }
            } else {
                free_block(&b);
            }
        }
    }
    for (unsigned i = 0; i < n; i++) free_block(&live[i]);
    a->ops = ops;
    return NULL;
}

static void check_no_leak(const char *test) {
#if RSBT_LIBC
    (void)test; /* libc and the test harness allocate through rsbmalloc too */
#else
    rsb_malloc_trim(0);
    rsb_stats_t st;
    rsb_stats(&st);
    if (st.in_use != 0) fail("%s: %zu bytes still in use after freeing everything", test, st.in_use);
#endif
}

static unsigned long run_random(unsigned nthreads, double seconds, uint64_t seed) {
    pthread_t *t = calloc(nthreads, sizeof *t);
    worker_arg *a = calloc(nthreads, sizeof *a);
    double until = rh_now() + seconds;
    for (unsigned i = 0; i < nthreads; i++) {
        a[i].seed = seed * 1000 + i + 1;
        a[i].until = until;
        /* Many threads on two cores: fewer live blocks each. */
        a[i].live_max = nthreads > 16 ? 12 : TLIVE;
        if (pthread_create(&t[i], NULL, random_worker, &a[i]) != 0) {
            fail("pthread_create");
            nthreads = i;
            break;
        }
    }
    unsigned long ops = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        ops += a[i].ops;
    }
    free(t);
    free(a);
    xchg_drain();
    return ops;
}

RH_TEST(stress, random) {
    static const unsigned counts[] = {2, 4, 8, 16, 64};
    unsigned nc = sizeof counts / sizeof counts[0];
    double per = seconds_per_test() / nc;
    for (unsigned i = 0; i < nc && !failed; i++) {
        unsigned long ops = run_random(counts[i], per, i + 1);
        fprintf(stderr, "stress-random: %2u threads, %.1f s: %lu operations\n", counts[i], per, ops);
    }
    check_no_leak("random");
    RH_CHECK(!failed, "%s", fail_msg);
}

/* ---- fork storm ----------------------------------------------------------------- */

static void child_work(blk *inherited, unsigned ninh) {
    alarm(20);
    rb_rng r;
    rb_seed(&r, (uint64_t)getpid());
    /* Blocks the parent's main thread owned at the fork are ours now. */
    for (unsigned i = 0; i < ninh; i++) {
        if (rb_check_sparse(inherited[i].p, inherited[i].fill, inherited[i].size) != (size_t)-1) _exit(11);
        A_free(inherited[i].p);
    }
    blk b[32];
    for (int round = 0; round < 4; round++) {
        for (unsigned i = 0; i < 32; i++) {
            size_t s = i < 24 ? rb_log_uniform(&r, 1, RB_SMALL_MAX) : rb_log_uniform(&r, RB_SMALL_MAX, 4 * RB_MiB);
            b[i].p = A_malloc(s);
            if (!b[i].p) _exit(12);
            b[i].size = s;
            b[i].fill = i + 7;
            rb_fill_sparse(b[i].p, b[i].fill, s);
        }
        for (unsigned i = 0; i < 32; i++) {
            if (rb_check_sparse(b[i].p, b[i].fill, b[i].size) != (size_t)-1) _exit(13);
            A_free(b[i].p);
        }
    }
    _exit(0);
}

RH_TEST(stress, fork_storm) {
    unsigned nthreads = 4;
    pthread_t t[4];
    worker_arg a[4];
    double seconds = seconds_per_test();
    double until = rh_now() + seconds;
    for (unsigned i = 0; i < nthreads; i++) {
        a[i] = (worker_arg){.seed = 500 + i, .until = until + 5, .live_max = 24};
        RH_CHECK(pthread_create(&t[i], NULL, random_worker, &a[i]) == 0, "pthread_create");
    }
    rb_rng r;
    rb_seed(&r, 99);
    unsigned forks = 0, hung = 0, bad = 0;
    while (rh_now() < until && !failed) {
        blk inh[8];
        for (unsigned i = 0; i < 8; i++) new_block(&inh[i], &r);
        pid_t pid = fork();
        if (pid < 0) {
            fail("fork: errno %d", errno);
            break;
        }
        if (pid == 0) child_work(inh, 8);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
        forks++;
        if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
            hung++;
            fail("fork storm: child %u hung (killed by its 20 s alarm): a lock held across fork?", forks);
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad++;
            fail("fork storm: child %u: %s %d", forks, WIFEXITED(st) ? "exit status" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        }
        for (unsigned i = 0; i < 8; i++) free_block(&inh[i]);
    }
    atomic_store(&stop_workers, 1);
    for (unsigned i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
    atomic_store(&stop_workers, 0);
    xchg_drain();
    fprintf(stderr, "stress-fork: %u forks while %u threads allocated, %u hung, %u failed\n", forks, nthreads, hung,
            bad);
    check_no_leak("fork_storm");
    RH_CHECK(!failed, "%s", fail_msg);
    RH_CHECK(forks >= 3, "only %u forks", forks);
}

/* ---- thread churn ---------------------------------------------------------------- */

static void *churn_thread(void *va) {
    uint64_t seed = (uint64_t)(uintptr_t)va;
    rb_rng r;
    rb_seed(&r, seed);
    blk b[16];
    unsigned n = 0;
    for (unsigned i = 0; i < 16; i++) {
        if (!new_block(&b[n], &r)) break;
        if (b[n].size > 256 * RB_KiB && rb_below(&r, 2)) { /* fewer big ones */
            free_block(&b[n]);
            continue;
        }
        n++;
    }
    /* Half stay behind, in the exchange, for other (later) threads. */
    for (unsigned i = 0; i < n; i++) {
        if (i & 1) {
            blk got = xchg_swap((unsigned)rb_next(&r), b[i]);
            if (got.p) free_block(&got);
        } else {
            free_block(&b[i]);
        }
    }
    return NULL;
}

RH_TEST(stress, thread_churn) {
    double until = rh_now() + seconds_per_test();
    unsigned long created = 0;
    uint64_t seed = 1;
    while (rh_now() < until && !failed) {
        pthread_t t[16];
        unsigned k = 0;
        for (; k < 16; k++)
            if (pthread_create(&t[k], NULL, churn_thread, (void *)(uintptr_t)seed++) != 0) break;
        for (unsigned i = 0; i < k; i++) pthread_join(t[i], NULL);
        created += k;
        if (k == 0) fail("pthread_create failed");
    }
    xchg_drain();
    fprintf(stderr, "stress-churn: %lu short-lived threads\n", created);
    check_no_leak("thread_churn");
    RH_CHECK(!failed, "%s", fail_msg);
    RH_CHECK(created >= 64, "only %lu threads", created);
}

int main(int argc, char **argv) {
    xchg_init();
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--seconds") == 0) setenv("RSBT_STRESS_SECONDS", argv[i + 1], 1);
    return rh_main(argc, argv);
}
