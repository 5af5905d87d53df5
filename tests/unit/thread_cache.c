/* Thread caches (the hot path): pops and pushes keep the room count, a
 * flush gives the older half back, a refill takes a batch, frees of other
 * caches' blocks wait in the outbox and reach the owner in chains, and a
 * drain leaves the thread holding nothing.  A private allocator and a
 * private thread cache are driven directly; rsb_tc_check runs after every
 * step. */
#include "thread_cache.h"
#include "unit.h"

static rsb_thread_cache *new_tc(rsb_allocator *a, uint32_t cache) {
    rsb_tc_init();
    rsb_thread_cache *t = calloc(1, sizeof *t);
    for (unsigned c = 0; c < RSB_TC_CLASSES; c++) t->room[c] = (int8_t)rsb_tc_cap[c];
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

/* free as the entry point does: checks and marker, then a push or the outbox. */
static void tc_free(rsb_allocator *a, rsb_thread_cache *t, void *p) {
    rsb_span *s = rsb_free_begin(a, p);
    cr_assert_not_null(s);
    if (rsb_span_owner(s) + 1 == t->cache1)
        rsb_tc_push(a, t, s->cls, p);
    else
        rsb_outbox_put(a, t, rsb_span_owner(s), p);
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
    cr_assert_eq(t->room[cls], (int)cap);
    unit_check(a);
    rsb_core_trim(a);
    cr_assert_eq(unit_slabs(&a->pages, cls), 0, "everything went back");
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

Test(thread_cache, frees_of_other_caches_blocks_reach_the_owner_in_chains) {
    rsb_allocator *a = unit_allocator(4, -1);
    rsb_thread_cache *mine = new_tc(a, 0), *other = new_tc(a, 1);
    unsigned cls = rsb_size_class(100);
    enum { N = 3 * RSB_OUTBOX_BATCH + 5 };
    void *p[N];
    for (int i = 0; i < N; i++) p[i] = tc_malloc(a, other, cls); /* owned by cache 1 */
    rsb_tc_check(a, other);
    unsigned sent = 0;
    for (int i = 0; i < N; i++) {
        tc_free(a, mine, p[i]);
        rsb_tc_check(a, mine);
        rsb_outbox *o = &mine->out[1 & (RSB_OUTBOX_SLOTS - 1)];
        cr_assert_lt(o->count, RSB_OUTBOX_BATCH, "a full outbox is sent at once");
        if (o->count == 0) sent++;
    }
    cr_assert_eq(sent, 3, "three full chains went to the owner");
    unsigned on_stack = 0;
    for (void **b = a->caches[1].remote; b; b = b[0]) on_stack++;
    cr_assert_eq(on_stack, 3 * RSB_OUTBOX_BATCH);
    rsb_tc_drain(a, mine, false); /* sends the rest */
    on_stack = 0;
    for (void **b = a->caches[1].remote; b; b = b[0]) on_stack++;
    cr_assert_eq(on_stack, N);
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
