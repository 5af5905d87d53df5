/* Magazines: see magazine.h. */
#include "magazine.h"

#include "init.h"

__thread rsb_mag rsb_mag_tls;
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

void *rsb_mag_refill(rsb_arena *a, rsb_mag *m, unsigned cls) {
    if (unlikely(m->state != RSB_MAG_ON)) {
        if (m->state != RSB_MAG_NEW || !__atomic_load_n(&a->fast, __ATOMIC_ACQUIRE) ||
            ++m->warmup < RSB_MAG_WARMUP)
            return rsb_small_alloc(a, cls); /* off, being set up, or warming up */
        m->state = RSB_MAG_SETUP;
        if (!rsb_thread_register(m)) { /* no destructor: never hold blocks */
            m->state = RSB_MAG_DEAD;
            return rsb_small_alloc(a, cls);
        }
        m->cache1 = rsb_cache_of_thread(a)->index + 1;
        m->state = RSB_MAG_ON;
    }
    unsigned got;
    unsigned want = (rsb_mag_cap[cls] + 1u) / 2;
    void **b = rsb_small_take_batch(a, &a->caches[m->cache1 - 1], cls, want ? want : 1, &got);
    if (!b) return NULL;
    m->head[cls] = rsb_mag_link_get(a, b, cls);
    m->count[cls] = (uint8_t)(got - 1);
    b[1] = NULL;
    return b;
}

void rsb_mag_flush(rsb_arena *a, rsb_mag *m, unsigned cls) {
    unsigned keep = rsb_mag_cap[cls] / 2u;
    if (keep == 0) { /* cap 0 or 1: give everything back */
        void *list = m->head[cls];
        m->head[cls] = NULL;
        m->count[cls] = 0;
        rsb_small_put_batch(a, &a->caches[m->cache1 - 1], list, cls);
        return;
    }
    void **b = (void **)m->head[cls];
    for (unsigned i = 1; i < keep; i++) b = (void **)rsb_mag_link_get(a, b, cls);
    void *rest = rsb_mag_link_get(a, b, cls);
    rsb_mag_link_set(a, b, NULL);
    m->count[cls] = (uint8_t)keep;
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
    for (unsigned i = 0; i < RSB_OUTBOX_SLOTS; i++)
        if (m->out[i].count) rsb_outbox_send(a, &m->out[i]);
    if (m->cache1) {
        for (unsigned c = 0; c < RSB_MAG_CLASSES; c++) {
            if (!m->head[c]) continue;
            void *list = m->head[c];
            m->head[c] = NULL;
            m->count[c] = 0;
            rsb_small_put_batch(a, &a->caches[m->cache1 - 1], list, c);
        }
    }
    if (turn_off) {
        m->cache1 = 0;
        m->state = RSB_MAG_DEAD;
    }
}
