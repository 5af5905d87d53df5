/* Magazines: see magazine.h. */
#include "magazine.h"

#include "init.h"

__thread rsb_mag *rsb_mag_on RSB_IE_TLS;
__thread uint8_t rsb_mag_state RSB_IE_TLS;
__thread uint8_t rsb_mag_warmup RSB_IE_TLS;
uint8_t rsb_mag_cap[RSB_MAG_CLASSES];

/* About 2 KiB per class: 32 blocks of 16..64 B down to 4 blocks of 1 KiB;
 * 2 blocks of each class up to 8 KiB, 1 up to RSB_MAG_ONE_MAX (enough for a
 * malloc/free pair to take no lock), none above (a free goes straight back
 * to the cache).  At most ~160 KiB + ~360 KiB per thread if a thread fills
 * every class, usually far less. */
#define RSB_MAG_ONE_MAX 65536
void rsb_mag_init(void) {
    for (unsigned c = 0; c < RSB_MAG_CLASSES; c++) {
        unsigned size = rsb_class_size[c], cap = 2048 / size;
        if (size > RSB_MAG_ONE_MAX)
            cap = 0;
        else if (size > 8192)
            cap = 1;
        else if (size > 1024)
            cap = 2;
        else if (cap < 4)
            cap = 4;
        else if (cap > 32)
            cap = 32;
        rsb_mag_cap[c] = (uint8_t)cap;
    }
}

/* Magazines live in pages of their own, not in the heap (they are not
 * blocks the program allocated, so they do not show as in use).  A freed
 * magazine waits on a list for the next thread: the pool grows to the most
 * threads alive at once, 64 KiB at a time.  Arena lock (fork-safe). */
#define RSB_MAG_POOL_BYTES ((size_t)64 << 10)
#define RSB_MAG_STRIDE ((sizeof(rsb_mag) + RSB_CACHELINE - 1) & ~(size_t)(RSB_CACHELINE - 1))
static rsb_mag *mag_pool_free; /* linked through head[0] */
static char *mag_pool_next, *mag_pool_end;

static rsb_mag *mag_new(rsb_arena *a) {
    rsb_lock_acquire(&a->lock);
    rsb_mag *m = mag_pool_free;
    if (m) {
        mag_pool_free = (rsb_mag *)m->head[0];
    } else {
        if ((size_t)(mag_pool_end - mag_pool_next) < RSB_MAG_STRIDE) {
            char *p = rsb_os_map(RSB_MAG_POOL_BYTES, rsb_os_page, 0);
            if (p) {
                mag_pool_next = p;
                mag_pool_end = p + RSB_MAG_POOL_BYTES;
            }
        }
        if ((size_t)(mag_pool_end - mag_pool_next) >= RSB_MAG_STRIDE) {
            m = (rsb_mag *)mag_pool_next;
            mag_pool_next += RSB_MAG_STRIDE;
        }
    }
    rsb_lock_release(&a->lock);
    if (m) rsb_memset(m, 0, sizeof(rsb_mag));
    return m;
}

static void mag_delete(rsb_arena *a, rsb_mag *m) {
    rsb_lock_acquire(&a->lock);
    m->head[0] = mag_pool_free;
    mag_pool_free = m;
    rsb_lock_release(&a->lock);
}

void *rsb_mag_start(rsb_arena *a, unsigned cls) {
    if (rsb_mag_state != RSB_MAG_NEW || !__atomic_load_n(&a->fast, __ATOMIC_ACQUIRE) ||
        ++rsb_mag_warmup < RSB_MAG_WARMUP)
        return rsb_small_alloc(a, cls); /* off, being set up, or warming up */
    rsb_mag_state = RSB_MAG_SETUP; /* allocations below come back here: no magazine */
    rsb_mag *m = mag_new(a);
    if (!m) {
        rsb_mag_state = RSB_MAG_NEW;
        rsb_mag_warmup = 0; /* try again later */
        return rsb_small_alloc(a, cls);
    }
    if (!rsb_thread_register(m)) { /* no destructor: never hold blocks */
        mag_delete(a, m);
        rsb_mag_state = RSB_MAG_DEAD;
        return rsb_small_alloc(a, cls);
    }
    for (unsigned c = 0; c < RSB_MAG_CLASSES; c++) m->room[c] = (int8_t)rsb_mag_cap[c];
    m->cache1 = rsb_cache_of_thread(a)->index + 1;
    rsb_mag_state = RSB_MAG_ON;
    rsb_mag_on = m;
    return rsb_mag_refill(a, m, cls);
}

void *rsb_mag_refill(rsb_arena *a, rsb_mag *m, unsigned cls) {
    unsigned got;
    unsigned want = (rsb_mag_cap[cls] + 1u) / 2;
    void **b = rsb_small_take_batch(a, &a->caches[m->cache1 - 1], cls, want ? want : 1, &got);
    if (!b) return NULL;
    m->head[cls] = rsb_mag_link_get(a, b, cls);
    m->room[cls] = (int8_t)(rsb_mag_cap[cls] - (got - 1));
    b[1] = NULL;
    return b;
}

/* Give the whole list of class cls back to the thread's cache. */
static void mag_give_back(rsb_arena *a, rsb_mag *m, unsigned cls) {
    void *list = m->head[cls];
    m->head[cls] = NULL;
    m->room[cls] = (int8_t)rsb_mag_cap[cls];
    rsb_small_put_batch(a, &a->caches[m->cache1 - 1], list, cls);
}

void rsb_mag_flush(rsb_arena *a, rsb_mag *m, unsigned cls) {
    unsigned keep = rsb_mag_cap[cls] / 2u;
    if (keep == 0) { /* cap 0 or 1: give everything back */
        mag_give_back(a, m, cls);
        return;
    }
    void **b = (void **)m->head[cls];
    for (unsigned i = 1; i < keep; i++) b = (void **)rsb_mag_link_get(a, b, cls);
    void *rest = rsb_mag_link_get(a, b, cls);
    rsb_mag_link_set(a, b, NULL);
    m->room[cls] = (int8_t)(rsb_mag_cap[cls] - keep);
    rsb_small_put_batch(a, &a->caches[m->cache1 - 1], rest, cls);
}

void rsb_outbox_send(rsb_arena *a, rsb_outbox *o) {
    rsb_cache *owner = &a->caches[o->owner1 - 1];
    void **tail = (void **)o->tail;
    void *head = __atomic_load_n(&owner->remote, __ATOMIC_RELAXED);
    do {
        tail[0] = head;
    } while (!__atomic_compare_exchange_n(&owner->remote, &head, o->head, true, __ATOMIC_RELEASE,
                                          __ATOMIC_RELAXED));
    o->head = o->tail = NULL;
    o->count = 0;
    o->owner1 = 0;
}

void rsb_mag_drain(rsb_arena *a, rsb_mag *m, bool turn_off) {
    if (!m) return;
    for (unsigned i = 0; i < RSB_OUTBOX_SLOTS; i++)
        if (m->out[i].count) rsb_outbox_send(a, &m->out[i]);
    for (unsigned c = 0; c < RSB_MAG_CLASSES; c++)
        if (m->head[c]) mag_give_back(a, m, c);
    if (turn_off) {
        rsb_mag_on = NULL;
        rsb_mag_state = RSB_MAG_DEAD;
        mag_delete(a, m);
    }
}
