/* Thread caches: see thread_cache.h. */
#include "thread_cache.h"

rsb_thread_cache rsb_tc_off;
__thread rsb_thread_cache *rsb_tc RSB_IE_TLS = &rsb_tc_off;
__thread uint8_t rsb_tc_state RSB_IE_TLS;
__thread uint8_t rsb_tc_warmup RSB_IE_TLS;
uint8_t rsb_tc_cap[RSB_TC_CLASSES];
uint8_t rsb_tc_batch[RSB_TC_CLASSES];

/* Up to 8 KiB per class for classes up to 1 KiB (64 blocks of 16..128 B,
 * at least 8), 4 blocks up to 4 KiB, 2 up to 8 KiB, 1 up to RSB_TC_ONE_MAX
 * (enough for a malloc/free pair to take no lock), none above (a free goes
 * straight back to the shared cache).  Octaves of 16 classes (256 B ..
 * 2 KiB, size_class.h) give each class half of that (at least 8 blocks up
 * to 1 KiB, 2 above), so that the finer classes do not double what a thread
 * may hold; octaves of 8 keep it.  (Giving each class 4/k of a 4-class
 * octave's share instead made the callgrind ring of 8..256 B blocks refill
 * and flush 1.55 times as often, +1.7 instructions per malloc+free.)  A
 * batch, the unit of moves to and from the shared cache, is half of a cap.
 * If a thread filled every class it would hold ~260 KiB up to 1 KiB and
 * ~610 KiB above (130 and 490 with 4 classes everywhere); usually far less. */
#define RSB_TC_ONE_MAX 65536
void rsb_tc_init(void) {
    for (unsigned c = 0; c < RSB_TC_CLASSES; c++) {
        unsigned size = rsb_class_size[c], k = RSB_CLASS_STEPS;
        if (size > 128) { /* classes in its octave (2^lg, 2^(lg+1)] */
            unsigned octave = 1u << rsb_log2(size - 1);
            k = octave / (size - rsb_class_size[c - 1]);
        }
        unsigned share = k > 8 ? k / 8 : 1; /* 2 for an octave of 16 */
        unsigned cap = 8192 / share / size;
        if (size > RSB_TC_ONE_MAX)
            cap = 0;
        else if (size > 8192)
            cap = 1;
        else if (size > 4096)
            cap = 2;
        else if (size > 1024)
            cap = 4 / share < 2 ? 2 : 4 / share;
        else if (cap < 8)
            cap = 8;
        else if (cap > 64)
            cap = 64;
        rsb_tc_cap[c] = (uint8_t)cap;
        rsb_tc_batch[c] = (uint8_t)(cap >= 2 ? cap / 2 : cap);
    }
}

/* Thread caches live in pages of their own, not in the heap (they are not
 * blocks the program allocated, so they do not show as in use).  A freed one
 * waits on a list for the next thread: the pool grows to the most threads
 * alive at once, 64 KiB at a time.  Page lock (fork-safe). */
#define RSB_TC_POOL_BYTES ((size_t)64 << 10)
#define RSB_TC_STRIDE ((sizeof(rsb_thread_cache) + RSB_CACHELINE - 1) & ~(size_t)(RSB_CACHELINE - 1))
static rsb_thread_cache *pool_free; /* linked through head[0] */
static char *pool_next, *pool_end;

static rsb_thread_cache *tc_new(rsb_allocator *a) {
    rsb_lock_acquire(&a->pages.lock);
    rsb_thread_cache *t = pool_free;
    if (t) {
        pool_free = (rsb_thread_cache *)t->head[0];
    } else {
        if ((size_t)(pool_end - pool_next) < RSB_TC_STRIDE) {
            char *p = rsb_os_map(RSB_TC_POOL_BYTES, rsb_os_page, 0);
            if (p) {
                pool_next = p;
                pool_end = p + RSB_TC_POOL_BYTES;
            }
        }
        if ((size_t)(pool_end - pool_next) >= RSB_TC_STRIDE) {
            t = (rsb_thread_cache *)(void *)pool_next;
            pool_next += RSB_TC_STRIDE;
        }
    }
    rsb_lock_release(&a->pages.lock);
    if (t) rsb_memset(t, 0, sizeof(rsb_thread_cache));
    return t;
}

static void tc_delete(rsb_allocator *a, rsb_thread_cache *t) {
    rsb_lock_acquire(&a->pages.lock);
    t->head[0] = pool_free;
    pool_free = t;
    rsb_lock_release(&a->pages.lock);
}

void *rsb_tc_start(rsb_allocator *a, unsigned cls) {
    if (rsb_tc_state != RSB_TC_NEW || !__atomic_load_n(&a->fast, __ATOMIC_ACQUIRE) ||
        ++rsb_tc_warmup < RSB_TC_WARMUP)
        return rsb_small_alloc(a, cls); /* off, being set up, or warming up */
    rsb_tc_state = RSB_TC_SETUP; /* allocations below come back here: no thread cache */
    rsb_thread_cache *t = tc_new(a);
    if (!t) {
        rsb_tc_state = RSB_TC_NEW;
        rsb_tc_warmup = 0; /* try again later */
        return rsb_small_alloc(a, cls);
    }
    if (!rsb_os_on_thread_exit(t)) { /* no destructor: never hold blocks */
        tc_delete(a, t);
        rsb_tc_state = RSB_TC_DEAD;
        return rsb_small_alloc(a, cls);
    }
    for (unsigned c = 0; c < RSB_TC_CLASSES; c++) t->room[c] = (int16_t)rsb_tc_batch[c];
    t->cache1 = rsb_cache_of_thread(a)->index + 1;
    rsb_tc_state = RSB_TC_ON;
    rsb_tc = t;
    return rsb_tc_refill(a, t, cls);
}

static rsb_cache *home(rsb_allocator *a, const rsb_thread_cache *t) { return &a->caches[t->cache1 - 1]; }

void *rsb_tc_refill(rsb_allocator *a, rsb_thread_cache *t, unsigned cls) {
    unsigned batch = rsb_tc_batch[cls];
    if (t->spare[cls]) { /* the spare batch becomes the head */
        t->head[cls] = t->spare[cls];
        t->spare[cls] = NULL;
        t->room[cls] = 0;
    } else {
        unsigned got;
        void *list = rsb_cache_take_batch(a, home(a, t), cls, batch ? batch : 1, &got);
        if (!list) return NULL;
        t->head[cls] = list;
        t->room[cls] = (int16_t)((int)batch - (int)got);
    }
    return rsb_tc_pop(a, t, cls);
}

/* A free found head full (room 0): head's B blocks become the spare
 * list and b starts a new head; the previous spare goes back whole (a
 * transfer slot takes it if one is free).  A class without a spare list
 * (cap <= 1) gives head back at once; cap 0 gives b itself.  For
 * rsb_tc_off, b goes straight to the shared cache. */
void rsb_tc_flush(rsb_allocator *a, rsb_thread_cache *t, unsigned cls, void **b) {
    if (t == &rsb_tc_off) { /* never written: see thread_cache.h */
        rsb_free_checked(a, b);
        return;
    }
    unsigned batch = rsb_tc_batch[cls];
    if (batch == 0) { /* cap 0: the block goes straight back */
        t->room[cls] = 0;
        rsb_link_set(a->link_key, b, NULL);
        rsb_cache_put_batch(a, home(a, t), b, cls, 1);
        return;
    }
    void *full = t->head[cls];
    rsb_link_set(a->link_key, b, NULL);
    t->head[cls] = b;
    t->room[cls] = (int16_t)(batch - 1);
    void *give = full;
    if (rsb_tc_cap[cls] >= 2 * batch) {
        give = t->spare[cls];
        t->spare[cls] = full;
    }
    if (give) rsb_cache_put_batch(a, home(a, t), give, cls, batch);
}

void rsb_tc_drain(rsb_allocator *a, rsb_thread_cache *t, bool turn_off) {
    if (t == &rsb_tc_off) return;
    RSB_EXPENSIVE(rsb_tc_check(a, t));
    /* Sorted home (not into transfer slots): this is for trim, statistics
     * or the thread's exit. */
    for (unsigned c = 0; c < RSB_TC_CLASSES; c++) {
        void *lists[2] = {t->head[c], t->spare[c]};
        t->head[c] = t->spare[c] = NULL;
        t->room[c] = (int16_t)rsb_tc_batch[c];
        for (unsigned k = 0; k < 2; k++)
            if (lists[k]) rsb_cache_put_batch(a, home(a, t), lists[k], c, 0);
    }
    if (turn_off) {
        rsb_tc = &rsb_tc_off;
        rsb_tc_state = RSB_TC_DEAD;
        tc_delete(a, t);
    }
}

void rsb_tc_check(const rsb_allocator *a, const rsb_thread_cache *t) {
    RSB_CHECK(t->cache1 >= 1 && t->cache1 <= a->ncaches, "thread cache names no cache");
    for (unsigned c = 0; c < RSB_TC_CLASSES; c++) {
        int n[2] = {0, 0};
        for (unsigned k = 0; k < 2; k++)
            for (void **b = (void **)(k ? t->spare[c] : t->head[c]); b; b = (void **)rsb_batch_link_get(a, b, c)) {
                rsb_chunk *ch = rsb_pages_chunk_of(&a->pages, b);
                RSB_CHECK(ch != NULL, "thread cache holds a foreign block");
                const rsb_span *s = rsb_span_of(ch, b);
                RSB_CHECK(s && s->kind == RSB_SPAN_SLAB && s->cls == c, "thread cache holds a block of the wrong slab");
                RSB_CHECK(++n[k] <= rsb_tc_cap[c] + 1, "thread cache list longer than its cap");
            }
        RSB_CHECK(t->room[c] == rsb_tc_batch[c] - n[0] && t->room[c] >= 0, "thread cache room mismatch");
        RSB_CHECK(n[1] == 0 || (n[1] == rsb_tc_batch[c] && rsb_tc_cap[c] >= 2 * rsb_tc_batch[c]),
                  "thread cache spare list is not one batch");
    }
}
