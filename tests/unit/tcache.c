/* Thread caches: thread ids spread over the caches, blocks freed by another
 * thread go back to the owner cache and are reused there, and bins keep
 * their invariants. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rsbmalloc.h"
#include "tcache.h"

static rsb_arena *new_arena(uint32_t ncaches) {
    rsb_free(rsb_malloc(1));
    rsb_arena *a = calloc(1, sizeof *a);
    rsb_pages_init(a);
    a->purge_delay_ms = -1;
    a->key = 0x1234567887654321ull;
    rsb_cache *c = aligned_alloc(RSB_CACHELINE, ncaches * sizeof(rsb_cache));
    memset(c, 0, ncaches * sizeof(rsb_cache));
    rsb_caches_init(a, c, ncaches);
    return a;
}

static void check_all(rsb_arena *a) {
    for (uint32_t i = 0; i < a->ncaches; i++) {
        rsb_lock_acquire(&a->caches[i].lock);
        rsb_cache_check(a, &a->caches[i]);
        rsb_lock_release(&a->caches[i].lock);
    }
    rsb_lock_acquire(&a->lock);
    rsb_pages_check(a);
    rsb_lock_release(&a->lock);
}

static rsb_arena *hash_arena;
static void *report_index(void *out) {
    *(uint32_t *)out = rsb_cache_of_thread(hash_arena)->index;
    return NULL;
}

Test(tcache, thread_ids_spread_over_caches) {
    hash_arena = new_arena(64);
    enum { T = 64 };
    uint32_t idx[T];
    pthread_t th[T];
    /* All alive at once, so every thread id is distinct. */
    for (int i = 0; i < T; i++) pthread_create(&th[i], NULL, report_index, &idx[i]);
    for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
    int seen[64] = {0}, distinct = 0;
    for (int i = 0; i < T; i++) distinct += !seen[idx[i]]++;
    /* 64 random throws into 64 bins hit ~40 bins; a bad hash hits few. */
    cr_assert_geq(distinct, 28, "only %d distinct caches for 64 threads", distinct);
}

Test(tcache, malloc_free_roundtrip_keeps_invariants) {
    rsb_arena *a = new_arena(4);
    enum { N = 20000 };
    void **p = malloc(N * sizeof *p);
    unsigned seed = 7;
    for (int i = 0; i < N; i++) {
        size_t size = (size_t)rand_r(&seed) % 5000;
        p[i] = rsb_core_malloc(a, size);
        cr_assert_not_null(p[i]);
        cr_assert_eq((uintptr_t)p[i] % 16, 0);
        cr_assert_geq(rsb_core_usable_size(a, p[i]), size);
        memset(p[i], 0x5a, size);
    }
    check_all(a);
    for (int i = 0; i < N; i += 2) rsb_core_free(a, p[i]);
    check_all(a);
    for (int i = 1; i < N; i += 2) rsb_core_free(a, p[i]);
    check_all(a);
    rsb_core_trim(a);
    check_all(a);
    for (rsb_chunk *c = a->chunks; c; c = c->next) cr_assert_eq(c->used_pages, 0, "all slabs returned");
    free(p);
}

/* --- remote frees --------------------------------------------------------- */

/* Worker threads stay alive (a live thread's id is unique; a joined one's
 * is reused by the next thread) and allocate when told to. */
enum { RN = 3000, MAXW = 32 };
static rsb_arena *remote_arena;
static struct worker {
    pthread_t th;
    uint32_t index;
    int cmd; /* 0 wait, 1 allocate into out, 2 exit */
    int done;
    void **out;
} workers[MAXW];

static void *worker_main(void *arg) {
    struct worker *w = arg;
    w->index = rsb_cache_of_thread(remote_arena)->index;
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    for (;;) {
        int cmd;
        while ((cmd = __atomic_load_n(&w->cmd, __ATOMIC_ACQUIRE)) == 0) sched_yield();
        if (cmd == 2) return NULL;
        for (int i = 0; i < RN; i++) w->out[i] = rsb_core_malloc(remote_arena, 64);
        __atomic_store_n(&w->cmd, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    }
}

static void worker_run(struct worker *w, int cmd, void **out) {
    w->out = out;
    __atomic_store_n(&w->done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&w->cmd, cmd, __ATOMIC_RELEASE);
    if (cmd == 2) return;
    while (!__atomic_load_n(&w->done, __ATOMIC_ACQUIRE)) sched_yield();
}

Test(tcache, remote_frees_go_home_and_are_reused) {
    static void *blocks[RN], *reused[RN];
    remote_arena = new_arena(8);
    uint32_t mine = rsb_cache_of_thread(remote_arena)->index;
    struct worker *w = NULL;
    int n = 0;
    while (!w && n < MAXW) { /* start threads until one hashes elsewhere */
        workers[n].cmd = 0;
        workers[n].done = 0;
        pthread_create(&workers[n].th, NULL, worker_main, &workers[n]);
        while (!__atomic_load_n(&workers[n].done, __ATOMIC_ACQUIRE)) sched_yield();
        if (workers[n].index != mine) w = &workers[n];
        n++;
    }
    cr_assert_not_null(w, "no thread hashed to another cache than this one");
    rsb_cache *owner = &remote_arena->caches[w->index];
    worker_run(w, 1, blocks);
    for (int i = 0; i < RN; i++) rsb_core_free(remote_arena, blocks[i]);
    cr_assert_not_null(owner->remote, "frees from this thread wait on the owner's remote list");
    check_all(remote_arena);
    /* The owner allocates again: it drains its remote list and reuses. */
    worker_run(w, 1, reused);
    cr_assert_null(owner->remote, "the owner drained its remote list");
    int hits = 0;
    for (int i = 0; i < RN; i++)
        for (int j = 0; j < RN; j++)
            if (reused[i] == blocks[j]) {
                hits++;
                break;
            }
    cr_assert_geq(hits, RN * 9 / 10, "only %d of %d blocks reused", hits, RN);
    check_all(remote_arena);
    for (int i = 0; i < n; i++) {
        worker_run(&workers[i], 2, NULL);
        pthread_join(workers[i].th, NULL);
    }
}

/* Producer/consumer through the public API: memory stays bounded. */
static void *volatile handoff[1024];
static volatile int phase;
static void *consumer(void *arg) {
    (void)arg;
    for (int round = 0; round < 300; round++) {
        while (__atomic_load_n(&phase, __ATOMIC_ACQUIRE) != 2 * round + 1) sched_yield();
        for (int i = 0; i < 1024; i++) rsb_free(handoff[i]);
        __atomic_store_n(&phase, 2 * round + 2, __ATOMIC_RELEASE);
    }
    return NULL;
}

Test(tcache, producer_consumer_stays_bounded) {
    pthread_t t;
    pthread_create(&t, NULL, consumer, NULL);
    rsb_stats_t before, after;
    rsb_stats(&before);
    for (int round = 0; round < 300; round++) {
        while (__atomic_load_n(&phase, __ATOMIC_ACQUIRE) != 2 * round) sched_yield();
        for (int i = 0; i < 1024; i++) handoff[i] = rsb_malloc(16 + (size_t)(i % 64) * 16);
        __atomic_store_n(&phase, 2 * round + 1, __ATOMIC_RELEASE);
    }
    pthread_join(t, NULL);
    rsb_stats(&after);
    /* ~160 MB went through; the live set never exceeded ~0.6 MB. */
    cr_assert_lt(after.mapped, before.mapped + (16u << 20), "mapped grew from %zu to %zu",
                 before.mapped, after.mapped);
}

/* Huge blocks: a freed mapping is reused by the next request of a similar
 * size (no syscall per malloc/free pair), calloc of a reused one is zero,
 * and trim unmaps the cache. */
Test(tcache, huge_mappings_are_cached_and_zeroed) {
    size_t n = (size_t)6 << 20;
    char *p = rsb_malloc(n);
    cr_assert_not_null(p);
    memset(p, 0xee, n);
    rsb_free(p);
    char *q = rsb_calloc(1, n - 4096);
    cr_assert_eq(q, p, "the cached mapping is reused");
    for (size_t i = 0; i < n - 4096; i += 511) cr_assert_eq(q[i], 0, "byte %zu not zero", i);
    rsb_free(q);
    rsb_stats_t st;
    rsb_malloc_trim(0);
    rsb_stats(&st);
    char *r = rsb_malloc(n);
    memset(r, 1, n);
    rsb_free(r);
    rsb_malloc_trim(0);
    rsb_stats_t st2;
    rsb_stats(&st2);
    cr_assert_leq(st2.mapped, st.mapped, "trim unmapped the cached huge block");
}
