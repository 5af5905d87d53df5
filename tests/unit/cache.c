#define _GNU_SOURCE
/* Thread caches: thread ids spread over the caches, blocks freed by another
 * thread go back to the owner cache and are reused there, and bins keep
 * their invariants. */
#include <pthread.h>
#include <sched.h>

#include "unit.h"

static rsb_allocator *new_arena(uint32_t ncaches) { return unit_allocator(ncaches, -1); }
#define check_all unit_check

static rsb_allocator *hash_arena;
static void *report_index(void *out) {
    *(uint32_t *)out = rsb_cache_of_thread(hash_arena)->index;
    return NULL;
}

Test(cache, thread_ids_spread_over_caches) {
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

Test(cache, malloc_free_roundtrip_keeps_invariants) {
    rsb_allocator *a = new_arena(4);
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
    for (rsb_chunk *c = a->pages.chunks; c; c = c->next) cr_assert_eq(c->used_pages, 0, "all slabs returned");
    free(p);
}

/* --- remote frees --------------------------------------------------------- */

/* Worker threads stay alive (a live thread's id is unique; a joined one's
 * is reused by the next thread) and allocate when told to. */
enum { RN = 3000, MAXW = 32 };
static rsb_allocator *remote_arena;
static struct worker {
    pthread_t th;
    uint32_t index;
    int cmd; /* 0 wait, 1 allocate `count` blocks into out, 2 exit, 3 free them */
    int done;
    int count;   /* 0: RN */
    size_t size; /* 0: 64 */
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
        int n = w->count ? w->count : RN;
        for (int i = 0; i < n; i++) {
            if (cmd == 1)
                w->out[i] = rsb_core_malloc(remote_arena, w->size ? w->size : 64);
            else
                rsb_core_free(remote_arena, w->out[i]);
        }
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

/* Start worker threads until one hashes to another cache than this thread;
 * *started is how many were started (all to be stopped). */
static struct worker *other_worker(int *started) {
    uint32_t mine = rsb_cache_of_thread(remote_arena)->index;
    struct worker *w = NULL;
    int n = 0;
    while (!w && n < MAXW) {
        memset(&workers[n], 0, sizeof workers[n]);
        pthread_create(&workers[n].th, NULL, worker_main, &workers[n]);
        while (!__atomic_load_n(&workers[n].done, __ATOMIC_ACQUIRE)) sched_yield();
        if (workers[n].index != mine) w = &workers[n];
        n++;
    }
    *started = n;
    cr_assert_not_null(w, "no thread hashed to another cache than this one");
    return w;
}

static void stop_workers(int n) {
    for (int i = 0; i < n; i++) {
        worker_run(&workers[i], 2, NULL);
        pthread_join(workers[i].th, NULL);
    }
}

Test(cache, remote_frees_go_home_and_are_reused) {
    static void *blocks[RN], *reused[RN];
    remote_arena = new_arena(8);
    int n;
    struct worker *w = other_worker(&n);
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
    stop_workers(n);
}

/* A slab emptied by remote frees that its owner drains must not stay on
 * the partial list: malloc_trim kept such a slab mapped (one per class per
 * cache).  The owner fills exactly two slabs, another thread frees every
 * block, the owner's next allocation drains them, the owner frees that
 * block too; after a trim no slab of the class is left. */
Test(cache, trim_releases_slabs_emptied_by_drained_remote_frees) {
    enum { SIZE = 64 };
    static void *blocks[2 * 4096];
    remote_arena = new_arena(8);
    unsigned cls = rsb_size_class(SIZE);
    int per_slab = (int)rsb_class_blocks[cls];
    cr_assert_leq(2 * per_slab, (int)(sizeof blocks / sizeof blocks[0]));
    int n;
    struct worker *w = other_worker(&n);
    w->size = SIZE;
    w->count = 2 * per_slab; /* both slabs carved and handed out: the cursor is exhausted */
    worker_run(w, 1, blocks);
    cr_assert_eq(unit_slabs(&remote_arena->pages, cls), 2);
    for (int i = 0; i < 2 * per_slab; i++) rsb_core_free(remote_arena, blocks[i]); /* remote */
    check_all(remote_arena);
    w->count = 1;
    worker_run(w, 1, blocks); /* drains: both slabs empty but for this block */
    check_all(remote_arena);
    worker_run(w, 3, blocks); /* a local free: the cursor is empty too */
    check_all(remote_arena);
    rsb_core_trim(remote_arena);
    check_all(remote_arena);
    cr_assert_eq(unit_slabs(&remote_arena->pages, cls), 0, "a trim left an empty slab of %u B mapped", SIZE);
    stop_workers(n);
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

Test(cache, producer_consumer_stays_bounded) {
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
Test(cache, huge_mappings_are_cached_and_zeroed) {
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

/* --- free OS pages inside slabs ------------------------------------------- */

#include <sys/mman.h>
#include <unistd.h>

/* mincore's vector has one entry per page of whoever answers: the kernel's
 * page, or under qemu-user the host's page, which may be smaller than the
 * guest's (16 or 64 KiB guest pages on a 4 KiB host).  Learn the granule:
 * touch the first byte of the second OS page of a fresh mapping and see
 * which entry says so. */
static size_t mincore_granule(size_t page) {
    char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert(m != MAP_FAILED);
    m[page] = 1;
    unsigned char v[512] = {0};
    cr_assert_eq(mincore(m, 2 * page, v), 0);
    size_t idx = 0;
    while (idx < sizeof v && !(v[idx] & 1)) idx++;
    munmap(m, 2 * page);
    cr_assert(idx > 0 && idx < sizeof v && page % idx == 0, "mincore granule: entry %zu", idx);
    return page / idx;
}

/* How many OS pages of [p, p+len) hold a resident byte. */
static unsigned resident_pages(void *p, size_t len, size_t page) {
    size_t g = mincore_granule(page), n = len / g, per = page / g;
    unsigned char v[4096];
    cr_assert_leq(n, sizeof v);
    cr_assert_eq(mincore(p, len, v), 0);
    unsigned r = 0;
    for (size_t i = 0; i < n; i += per) {
        unsigned any = 0;
        for (size_t j = 0; j < per; j++) any |= v[i + j] & 1;
        r += any;
    }
    return r;
}

/* A sparse slab gives back the OS pages that hold no live block; the free
 * blocks on them are parked, and come back (before fresh ones are carved)
 * when the slab is needed again.  With OS pages as large as the allocator's
 * page (64 KiB) nothing can go back, and nothing must break. */
Test(cache, scrub_gives_back_free_os_pages_and_unparks_them) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    bool can = page < RSB_PAGE_SIZE;
    rsb_allocator *a = unit_allocator(1, -1);
    unsigned cls = rsb_size_class(64);
    int per = (int)rsb_class_blocks[cls], n = 3 * per;
    int stride = can ? (int)(4 * page / 64) : per; /* one live block per 4 OS pages */
    void **p = malloc((size_t)n * sizeof *p);
    for (int i = 0; i < n; i++) {
        p[i] = rsb_core_malloc(a, 64);
        memset(p[i], 0x3c, 64);
    }
    int live = 0;
    for (int i = 0; i < n; i++)
        if (i % stride) {
            rsb_core_free(a, p[i]);
            p[i] = NULL;
        } else {
            live++;
        }
    unit_check(a);
    char *slab = rsb_span_start(rsb_span_of(rsb_pages_chunk_of(&a->pages, p[0]), p[0]));
    size_t given = rsb_caches_scrub(a, true);
    unit_check(a); /* counts the parked blocks */
    if (can) {
        size_t want = (size_t)3 * (RSB_PAGE_SIZE - RSB_PAGE_SIZE / 4) - 3 * page;
        cr_assert_geq(given, want, "gave back %zu bytes, want %zu", given, want);
        unsigned after = resident_pages(slab, RSB_PAGE_SIZE, page);
        cr_assert_leq(after, RSB_PAGE_SIZE / page / 4 + 1, "%u of %zu OS pages still resident", after,
                      (size_t)(RSB_PAGE_SIZE / page));
    } else {
        cr_assert_eq(given, 0);
    }
    for (int i = 0; i < n; i += stride) /* the live blocks kept their bytes */
        for (int j = 0; j < 64; j++) cr_assert_eq(((unsigned char *)p[i])[j], 0x3c);
    /* Allocate everything again: parked blocks come back, no block twice. */
    for (int i = 0; i < n; i++)
        if (!p[i]) {
            p[i] = rsb_core_malloc(a, 64);
            memset(p[i], 0x5d, 64);
        }
    unit_check(a);
    cr_assert_eq(unit_slabs(&a->pages, cls), 3, "the parked blocks were reused before a new slab");
    (void)live;
    for (int i = 0; i < n; i++) rsb_core_free(a, p[i]);
    unit_check(a);
    free(p);
}

/* Scrub passes (as the background purge runs them) while threads allocate
 * and free: the invariants hold and no block is handed out twice. */
static rsb_allocator *scrub_arena;
static void *scrub_worker(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg, tag = seed * 0x9e3779b9u;
    enum { LIVE = 2000 };
    static __thread void *held[LIVE];
    for (int i = 0; i < LIVE; i++) held[i] = NULL;
    for (int r = 0; r < 200000; r++) {
        int k = rand_r(&seed) % LIVE;
        if (held[k]) {
            cr_assert_eq(*(uint32_t *)held[k], (uint32_t)k ^ tag, "a block changed under its owner");
            rsb_core_free(scrub_arena, held[k]);
        }
        size_t size = 16 + (size_t)(rand_r(&seed) % 600);
        held[k] = rsb_core_malloc(scrub_arena, size);
        *(uint32_t *)held[k] = (uint32_t)k ^ tag;
    }
    for (int i = 0; i < LIVE; i++)
        if (held[i]) rsb_core_free(scrub_arena, held[i]);
    return NULL;
}

Test(cache, scrub_passes_race_with_allocation) {
    scrub_arena = unit_allocator(4, 0);
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, scrub_worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 200; i++) {
        rsb_caches_scrub(scrub_arena, i % 4 == 0);
        rsb_caches_drain_all(scrub_arena);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    rsb_core_trim(scrub_arena);
    unit_check(scrub_arena);
}
