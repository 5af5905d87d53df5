/* Thread caches (the hot path): pops and pushes keep the room count, a
 * flush gives the older half back, a refill takes a batch, blocks of other
 * caches are reused by the freeing thread and sorted home when flushed, and
 * a drain leaves the thread holding nothing.  A private allocator and a
 * private thread cache are driven directly; rsb_tc_check runs after every
 * step. */
#include "thread_cache.h"
#include "unit.h"

static rsb_thread_cache *new_tc(rsb_allocator *a, uint32_t cache) {
    rsb_tc_init();
    rsb_thread_cache *t = calloc(1, sizeof *t);
    for (unsigned c = 0; c < RSB_TC_CLASSES; c++) t->room[c] = (int8_t)rsb_tc_batch[c];
    t->cache1 = cache + 1;
    (void)a;
    return t;
}

static unsigned list_len(const rsb_thread_cache *t, unsigned cls) {
    unsigned n = 0;
    for (void *const *b = t->head[cls]; b; b = b[0]) n++; /* not hardened: plain links */
    return n;
}

/* malloc through the thread cache as the entry point does: pop, else refill. */
static void *tc_malloc(rsb_allocator *a, rsb_thread_cache *t, unsigned cls) {
    void *p = rsb_tc_pop(a, t, cls);
    return p ? p : rsb_tc_refill(a, t, cls);
}

/* free as the entry point does: checks and marker, then a push. */
static void tc_free(rsb_allocator *a, rsb_thread_cache *t, void *p) {
    unsigned cls = RSB_NUM_CLASSES;
    const rsb_span *d = rsb_free_begin(a, p, &cls);
    cr_assert_not_null(d);
    cr_assert_lt(cls, RSB_NUM_CLASSES);
    rsb_tc_push(a, t, cls, p);
}

static unsigned remote_len(const rsb_cache *c) {
    unsigned n = 0;
    for (void *const *b = c->remote; b; b = b[0]) n++;
    return n;
}

Test(thread_cache, refill_pop_push_flush_keep_the_room_count) {
    rsb_allocator *a = unit_allocator(4, -1);
    rsb_thread_cache *t = new_tc(a, 0);
    unsigned cls = rsb_size_class(48), cap = rsb_tc_cap[cls];
    cr_assert_geq(cap, 4);
    enum { N = 200 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = tc_malloc(a, t, cls);
        cr_assert_not_null(p[i]);
        memset(p[i], 0x11, 48);
        rsb_tc_check(a, t);
        cr_assert_leq(list_len(t, cls), cap);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++) cr_assert_neq(p[i], p[j], "block handed out twice");
    for (int i = 0; i < N; i++) {
        tc_free(a, t, p[i]);
        rsb_tc_check(a, t);
        cr_assert_leq(list_len(t, cls), cap, "a free over the cap flushes");
        cr_assert_geq(t->room[cls], 0);
    }
    unit_check(a);
    /* What the thread holds is counted as used in its slabs. */
    rsb_stats_t st;
    (void)st;
    rsb_tc_drain(a, t, false);
    rsb_tc_check(a, t);
    cr_assert_null(t->head[cls]);
    cr_assert_null(t->spare[cls]);
    cr_assert_eq(t->room[cls], (int)rsb_tc_batch[cls]);
    unit_check(a);
    rsb_core_trim(a);
    cr_assert_eq(unit_slabs(&a->pages, cls), 0, "everything went back");
}

/* A flushed batch waits whole in a transfer slot and is the next refill's,
 * under one lock each way. */
Test(thread_cache, flushed_batches_come_back_whole) {
    rsb_allocator *a = unit_allocator(2, -1);
    rsb_thread_cache *t = new_tc(a, 0);
    unsigned cls = rsb_size_class(64), cap = rsb_tc_cap[cls];
    void *p[256];
    cr_assert_leq(cap + 1, 256);
    for (unsigned i = 0; i <= cap; i++) p[i] = tc_malloc(a, t, cls);
    for (unsigned i = 0; i <= cap; i++) tc_free(a, t, p[i]); /* the last one flushes */
    rsb_bin *bin = &a->caches[0].bins[cls];
    cr_assert_eq(bin->nxfer, 1);
    void *first = bin->xfer[0];
    unsigned n = bin->xn[0];
    unit_check(a);
    while (t->head[cls] || t->spare[cls]) tc_malloc(a, t, cls); /* empty the thread's lists */
    void *q = tc_malloc(a, t, cls);                /* a refill */
    cr_assert_eq(q, first, "the refill took the flushed batch");
    cr_assert_eq(bin->nxfer, 0);
    cr_assert_eq(list_len(t, cls), n - 1);
    cr_assert_eq(n, rsb_tc_batch[cls]);
    rsb_tc_check(a, t);
    unit_check(a);
}

Test(thread_cache, double_free_of_a_cached_block_is_caught) {
    rsb_allocator *a = unit_allocator(4, -1);
    rsb_thread_cache *t = new_tc(a, 0);
    unsigned cls = rsb_size_class(32);
    void *p = tc_malloc(a, t, cls);
    tc_free(a, t, p);
    /* p sits in the thread cache, with the marker: free_begin refuses it
     * (the slow path would abort; classify tells what it is). */
    rsb_ptr_info info;
    cr_assert_eq(rsb_classify(a, p, &info), RSB_PTR_FREED);
    void *q = tc_malloc(a, t, cls);
    cr_assert_eq(q, p, "LIFO: the block just freed comes back first");
    cr_assert_eq(rsb_classify(a, q, &info), RSB_PTR_SMALL, "malloc cleared the marker");
    tc_free(a, t, q);
    rsb_tc_drain(a, t, false);
    unit_check(a);
}

Test(thread_cache, other_caches_blocks_are_reused_then_sorted_home) {
    rsb_allocator *a = unit_allocator(4, -1);
    rsb_thread_cache *mine = new_tc(a, 0), *other = new_tc(a, 1);
    unsigned cls = rsb_size_class(100), cap = rsb_tc_cap[cls];
    enum { N = 800 }; /* enough to fill every transfer slot: (RSB_XFER + 2) batches and more */
    void *p[N];
    for (int i = 0; i < N; i++) p[i] = tc_malloc(a, other, cls); /* owned by cache 1 */
    rsb_tc_check(a, other);
    tc_free(a, mine, p[0]);
    void *q = tc_malloc(a, mine, cls);
    cr_assert_eq(q, p[0], "the freeing thread reuses a block of another cache");
    for (int i = 0; i < N; i++) {
        tc_free(a, mine, p[i]);
        rsb_tc_check(a, mine);
        cr_assert_leq(list_len(mine, cls), cap);
    }
    /* The first flushes filled this cache's transfer slots, the rest went
     * to the owner. */
    rsb_bin *bin = &a->caches[0].bins[cls];
    unsigned held = 0;
    for (uint32_t i = 0; i < bin->nxfer; i++) held += bin->xn[i];
    cr_assert_geq(N, (RSB_XFER + 2) * rsb_tc_batch[cls] + cap);
    cr_assert_eq(bin->nxfer, RSB_XFER);
    unsigned home = remote_len(&a->caches[1]);
    cr_assert_geq(home, N - cap - 1 - held, "flushes sent the foreign blocks to their owner (%u)", home);
    cr_assert_null(a->caches[0].remote, "nothing went to this thread's own cache");
    rsb_tc_drain(a, mine, false); /* sends the rest */
    rsb_caches_flush_xfer(a);     /* and the transfer slots' */
    cr_assert_eq(bin->nxfer, 0);
    cr_assert_eq(remote_len(&a->caches[1]), N);
    rsb_tc_drain(a, other, false);
    rsb_core_trim(a); /* drains the remote stack */
    unit_check(a);
    cr_assert_eq(unit_slabs(&a->pages, cls), 0);
}

Test(thread_cache, classes_above_the_one_block_limit_are_not_cached) {
    rsb_allocator *a = unit_allocator(2, -1);
    rsb_thread_cache *t = new_tc(a, 0);
    unsigned cls = rsb_size_class(200 * 1024);
    cr_assert_eq(rsb_tc_cap[cls], 0);
    void *p = tc_malloc(a, t, cls);
    cr_assert_not_null(p);
    tc_free(a, t, p);
    cr_assert_null(t->head[cls], "a cap-0 class goes straight back");
    rsb_tc_check(a, t);
    unit_check(a);
}
