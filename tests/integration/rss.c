/*
 * Memory-bound and process-level tests:
 *   - producer/consumer: one thread allocates, another frees; GBs of traffic
 *     with a small live set must keep peak RSS (VmHWM) bounded;
 *   - thread churn: 20,000 short-lived threads one after another: RSS bounded;
 *   - fork() while 4 threads allocate: the child can allocate (no lock left
 *     held), 50 times, with a deadline per child.
 */
#include "rsbtest.h"
#include "rsbtest_mt.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>


static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Bound on the growth of peak RSS over the RSS at the start of a test. */
#define RSS_BOUND_KIB (64 * 1024L)

/* ---------------------------------------------------- producer/consumer -- */

#define RING 8192
static struct {
    _Atomic size_t head;
    char pad1[64];
    _Atomic size_t tail;
    char pad2[64];
    void *slot[RING];
} g_ring;
static atomic_int g_done;

struct pc_args {
    size_t min, max;   /* object sizes */
    size_t traffic;    /* bytes to allocate in total */
    size_t count;      /* out: objects produced / consumed */
};

/* Each object starts with its size; the rest holds the address/size pattern. */
static void *producer(void *arg)
{
    struct pc_args *a = arg;
    uint64_t r = 0x1234567;
    size_t bytes = 0, n = 0;
    while (bytes < a->traffic && !atomic_load_explicit(&g_failed, memory_order_relaxed)) {
        size_t sz = a->min + rnd(&r) % (a->max - a->min + 1);
        unsigned char *p = T(malloc)(sz);
        if (!p) {
            fail("producer: malloc(%zu) failed", sz);
            break;
        }
        memcpy(p, &sz, sizeof sz);
        rsbt_fill(p + 8, sz - 8, rsbt_seed(p, sz));
        size_t t = atomic_load_explicit(&g_ring.tail, memory_order_relaxed);
        while (t - atomic_load_explicit(&g_ring.head, memory_order_acquire) == RING) {
            if (atomic_load_explicit(&g_failed, memory_order_relaxed))
                goto out;
            sched_yield();
        }
        g_ring.slot[t % RING] = p;
        atomic_store_explicit(&g_ring.tail, t + 1, memory_order_release);
        bytes += sz;
        n++;
    }
out:
    a->count = n;
    atomic_store(&g_done, 1);
    return NULL;
}

static void *consumer(void *arg)
{
    struct pc_args *a = arg;
    size_t n = 0;
    for (;;) {
        size_t h = atomic_load_explicit(&g_ring.head, memory_order_relaxed);
        if (h == atomic_load_explicit(&g_ring.tail, memory_order_acquire)) {
            if (atomic_load(&g_done) && h == atomic_load(&g_ring.tail))
                break;
            sched_yield();
            continue;
        }
        unsigned char *p = g_ring.slot[h % RING];
        atomic_store_explicit(&g_ring.head, h + 1, memory_order_release);
        size_t sz, bad;
        memcpy(&sz, p, sizeof sz);
        if (sz < a->min || sz > a->max) {
            fail("consumer: object %p header says %zu bytes", (void *)p, sz);
            break;
        }
        if (rsbt_check(p + 8, sz - 8, sz - 8, rsbt_seed(p, sz), &bad)) {
            fail("consumer: object %p (%zu bytes) corrupted at offset %zu", (void *)p, sz, bad + 8);
            break;
        }
        T(free)(p);
        n++;
    }
    a->count = n;
    return NULL;
}

static void producer_consumer(size_t min, size_t max, size_t traffic)
{
    atomic_store(&g_failed, 0);
    atomic_store(&g_done, 0);
    atomic_store(&g_ring.head, 0);
    atomic_store(&g_ring.tail, 0);
    traffic = (size_t)((double)traffic * scale());
    int hwm_reset = rsbt_reset_hwm() == 0;
    long rss0 = rsbt_status_kb("VmRSS");
    cr_assert_gt(rss0, 0, "cannot read VmRSS");
    struct pc_args pa = {min, max, traffic, 0}, ca = {min, max, traffic, 0};
    pthread_t tp, tc;
    double t0 = now_s();
    cr_assert_eq(pthread_create(&tc, NULL, consumer, &ca), 0);
    cr_assert_eq(pthread_create(&tp, NULL, producer, &pa), 0);
    pthread_join(tp, NULL);
    pthread_join(tc, NULL);
    double el = now_s() - t0;
    long hwm = rsbt_status_kb("VmHWM"), rss1 = rsbt_status_kb("VmRSS");
    cr_assert(!atomic_load(&g_failed), "%s", g_msg);
    cr_assert_eq(pa.count, ca.count, "produced %zu, consumed %zu", pa.count, ca.count);
    cr_log_info("producer/consumer %zu..%zu B: %zu objects, %.0f MiB in %.2f s; RSS %ld -> %ld KiB, peak %ld KiB%s",
                min, max, pa.count, (double)traffic / (double)MiB, el, rss0, rss1, hwm,
                hwm_reset ? "" : " (VmHWM not resettable: peak since process start)");
    cr_assert_lt(hwm - rss0, RSS_BOUND_KIB,
                 "peak RSS grew by %ld KiB (bound %ld KiB) for a live set under %zu KiB: "
                 "cross-thread frees are not reused (RSS %ld -> peak %ld KiB)",
                 hwm - rss0, RSS_BOUND_KIB, (size_t)RING * max / 1024, rss0, hwm);
}

Test(rss, producer_consumer_small_objects, .timeout = 120)
{
    producer_consumer(16, 512, (size_t)1536 * MiB);
}

Test(rss, producer_consumer_larger_small_objects, .timeout = 120)
{
    /* RING * 4 KiB = 32 MiB worst-case live set: keep max at 2 KiB */
    producer_consumer(1024, 2048, (size_t)1536 * MiB);
}

/* --------------------------------------------------------- thread churn -- */

struct churn_arg {
    void *from_main;   /* block allocated by main, freed by the thread */
    size_t from_main_n;
    int id;
};

static void *churn_thread(void *arg)
{
    struct churn_arg *a = arg;
    uint64_t r = (uint64_t)a->id * 0x9e3779b97f4a7c15ull + 1;
    size_t bad;
    if (rsbt_check(a->from_main, a->from_main_n, a->from_main_n, rsbt_seed(a->from_main, a->from_main_n), &bad)) {
        fail("thread %d: block from main corrupted at %zu", a->id, bad);
        return NULL;
    }
    T(free)(a->from_main);
    void *v[24];
    size_t n[24];
    for (int i = 0; i < 24; i++) {
        n[i] = 1 + rnd(&r) % ((i & 3) == 3 ? 65536 : 600);
        if (i == 23 && a->id % 16 == 0)
            n[i] = 300 * KiB + rnd(&r) % (512 * KiB);    /* medium now and then */
        v[i] = T(malloc)(n[i]);
        if (!v[i]) {
            fail("thread %d: malloc(%zu) failed", a->id, n[i]);
            return NULL;
        }
        rsbt_fill(v[i], n[i], rsbt_seed(v[i], n[i]));
    }
    for (int i = 0; i < 23; i++) {
        if (rsbt_check(v[i], n[i], n[i], rsbt_seed(v[i], n[i]), &bad)) {
            fail("thread %d: block %d (%zu bytes) corrupted at %zu", a->id, i, n[i], bad);
            return NULL;
        }
        T(free)(v[i]);
    }
    /* the last block goes back to main, which frees it */
    a->from_main = v[23];
    a->from_main_n = n[23];
    return a;
}

Test(rss, thread_churn_20000_threads, .timeout = 180)
{
    atomic_store(&g_failed, 0);
    int total = (int)(20000 * (scale() < 1 ? scale() : 1));
    /* warm up: the first threads legitimately populate caches */
    long rss0 = 0;
    int hwm_reset = 0;
    double t0 = now_s();
    for (int i = 0; i < total && !atomic_load(&g_failed); i++) {
        if (i == 200) {
            hwm_reset = rsbt_reset_hwm() == 0;
            rss0 = rsbt_status_kb("VmRSS");
        }
        struct churn_arg a;
        a.id = i;
        a.from_main_n = 16 + (size_t)i % 5000;
        a.from_main = T(malloc)(a.from_main_n);
        cr_assert_not_null(a.from_main);
        rsbt_fill(a.from_main, a.from_main_n, rsbt_seed(a.from_main, a.from_main_n));
        pthread_t t;
        int e = pthread_create(&t, NULL, churn_thread, &a);
        cr_assert_eq(e, 0, "pthread_create #%d failed: %s", i, strerror(e));
        void *ret = NULL;
        pthread_join(t, &ret);
        if (ret) {
            size_t bad;
            if (rsbt_check(a.from_main, a.from_main_n, a.from_main_n, rsbt_seed(a.from_main, a.from_main_n), &bad))
                fail("block from exited thread %d corrupted at %zu", i, bad);
            T(free)(a.from_main);
        }
    }
    double el = now_s() - t0;
    long hwm = rsbt_status_kb("VmHWM"), rss1 = rsbt_status_kb("VmRSS");
    cr_assert(!atomic_load(&g_failed), "%s", g_msg);
    cr_log_info("thread churn: %d threads in %.2f s; RSS %ld -> %ld KiB, peak %ld KiB%s", total, el, rss0, rss1,
                hwm, hwm_reset ? "" : " (peak since process start)");
    cr_assert_lt(hwm - rss0, RSS_BOUND_KIB, "thread churn: peak RSS grew by %ld KiB (bound %ld KiB)", hwm - rss0,
                 RSS_BOUND_KIB);
    cr_assert_lt(rss1 - rss0, RSS_BOUND_KIB / 2, "thread churn: RSS grew by %ld KiB and stayed", rss1 - rss0);
}

Test(rss, thread_churn_concurrent_waves, .timeout = 180)
{
    /* 4 threads at a time (different caches, concurrent exits), 2,500 waves */
    atomic_store(&g_failed, 0);
    int waves = (int)(2500 * (scale() < 1 ? scale() : 1));
    long rss0 = 0;
    for (int w = 0; w < waves && !atomic_load(&g_failed); w++) {
        if (w == 50) {
            rsbt_reset_hwm();
            rss0 = rsbt_status_kb("VmRSS");
        }
        struct churn_arg a[4];
        pthread_t t[4];
        for (int k = 0; k < 4; k++) {
            a[k].id = w * 4 + k;
            a[k].from_main_n = 100 + (size_t)k * 1000;
            a[k].from_main = T(malloc)(a[k].from_main_n);
            cr_assert_not_null(a[k].from_main);
            rsbt_fill(a[k].from_main, a[k].from_main_n, rsbt_seed(a[k].from_main, a[k].from_main_n));
            cr_assert_eq(pthread_create(&t[k], NULL, churn_thread, &a[k]), 0);
        }
        for (int k = 0; k < 4; k++) {
            void *ret = NULL;
            pthread_join(t[k], &ret);
            if (ret)
                T(free)(a[k].from_main);
        }
    }
    long hwm = rsbt_status_kb("VmHWM");
    cr_assert(!atomic_load(&g_failed), "%s", g_msg);
    cr_assert_lt(hwm - rss0, RSS_BOUND_KIB, "thread churn (waves of 4): peak RSS grew by %ld KiB", hwm - rss0);
}

/* ----------------------------------------------- fork while allocating -- */

static atomic_int g_stop;

static void *alloc_loop(void *arg)
{
    uint64_t r = (uint64_t)(intptr_t)arg * 7919 + 3;
    void *v[64] = {0};
    size_t n[64] = {0};
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        int i = (int)(rnd(&r) % 64);
        if (v[i]) {
            size_t bad;
            if (rsbt_check(v[i], n[i], n[i], rsbt_seed(v[i], n[i]), &bad)) {
                fail("allocating thread: block corrupted at %zu", bad);
                break;
            }
            if (rnd(&r) & 1) {
                T(free)(v[i]);
                v[i] = NULL;
                continue;
            }
            size_t m = 1 + rnd(&r) % 3000;
            void *q = T(realloc)(v[i], m);
            if (!q) {
                fail("realloc failed");
                break;
            }
            v[i] = q;
            n[i] = m;
        } else {
            uint64_t k = rnd(&r) % 100;
            n[i] = k < 90 ? 1 + rnd(&r) % 2048 : k < 98 ? 300 * KiB + rnd(&r) % MiB : 3 * MiB;
            v[i] = T(malloc)(n[i]);
            if (!v[i]) {
                fail("malloc(%zu) failed", n[i]);
                break;
            }
        }
        rsbt_fill(v[i], n[i], rsbt_seed(v[i], n[i]));
    }
    for (int i = 0; i < 64; i++)
        T(free)(v[i]);
    return NULL;
}

static void *child_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        void *p = T(malloc)((size_t)i * 37 + 1);
        if (!p)
            return (void *)1;
        memset(p, 1, (size_t)i * 37 + 1);
        T(free)(p);
    }
    return NULL;
}

/* In the child: every size class path, a new thread, the stats lock sweep. */
static int child_work(void)
{
    static const size_t sizes[] = {0, 8, 16, 100, 1000, 5000, 70000, 256 * KiB, 300 * KiB, MiB, 3 * MiB, 9 * MiB};
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p = T(malloc)(sizes[i]);
            if (!p)
                return 1;
            rsbt_fill(p, sizes[i], rsbt_seed(p, sizes[i]));
            void *q = T(realloc)(p, sizes[(i + 5) % (sizeof sizes / sizeof sizes[0])] + 1);
            if (!q)
                return 2;
            T(free)(q);
        }
    pthread_t t;
    void *ret = (void *)2;
    if (pthread_create(&t, NULL, child_thread, NULL) || pthread_join(t, &ret) || ret)
        return 3;
    if (rsbt_have_stats()) {
        rsb_stats_t st;
        rsb_stats(&st);
        (void)T_trim(0);
    }
    return 0;
}

static int fork_and_check(int i, const char **why)
{
    pid_t pid = fork();
    if (pid < 0) {
        *why = "fork failed";
        return -1;
    }
    if (pid == 0)
        _exit(child_work());
    double t0 = now_s();
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        if (now_s() - t0 > 15) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            *why = "child deadlocked (no exit within 15 s): a lock was held across fork()";
            return -1;
        }
        struct timespec nap = {0, 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        static char buf[128];
        snprintf(buf, sizeof buf, "child #%d %s %d", i, WIFSIGNALED(st) ? "killed by signal" : "exited with",
                 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        *why = buf;
        return -1;
    }
    return 0;
}

static void fork_while_threads_allocate(int reps)
{
    atomic_store(&g_failed, 0);
    atomic_store(&g_stop, 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, alloc_loop, (void *)(intptr_t)i), 0);
    const char *why = NULL;
    int bad_at = -1;
    for (int i = 0; i < reps; i++) {
        /* let the threads get into the allocator */
        struct timespec nap = {0, (long)(i % 7) * 300 * 1000};
        nanosleep(&nap, NULL);
        if (fork_and_check(i, &why)) {
            bad_at = i;
            break;
        }
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    cr_assert(bad_at < 0, "fork #%d: %s", bad_at, why);
    cr_assert(!atomic_load(&g_failed), "%s", g_msg);
}

Test(fork, fork_while_4_threads_allocate_50x, .timeout = 300)
{
    fork_while_threads_allocate(50);
}

static void *forking_thread(void *arg)
{
    const char **why = arg;
    for (int i = 0; i < 20; i++)
        if (fork_and_check(i, why))
            return (void *)1;
    return NULL;
}

Test(fork, fork_from_a_worker_thread_while_others_allocate, .timeout = 300)
{
    atomic_store(&g_failed, 0);
    atomic_store(&g_stop, 0);
    pthread_t t[3], f;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, alloc_loop, (void *)(intptr_t)(i + 10)), 0);
    const char *why = NULL;
    void *ret = NULL;
    cr_assert_eq(pthread_create(&f, NULL, forking_thread, &why), 0);
    pthread_join(f, &ret);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    cr_assert_null(ret, "fork from a worker thread: %s", why);
    cr_assert(!atomic_load(&g_failed), "%s", g_msg);
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
