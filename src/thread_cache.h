/*
 * Thread caches (hosted only): a few free blocks per size class held by each
 * thread in front of its shared cache (cache.h), so that most malloc/free
 * pairs take no lock and no atomic instruction.  Blocks move between a
 * thread cache and the thread's shared cache in batches, under that cache's
 * spinlock: one lock per batch instead of one per block.  A thread also
 * keeps an outbox of the blocks it freed that belong to other caches, sent
 * to their owners as chains (one CAS for up to RSB_OUTBOX_BATCH frees).
 *
 * Invariants (rsb_tc_check)
 *   - Blocks in a thread cache belong to slabs owned by the cache cache1 - 1
 *     and count as used in their slab; those the program freed carry the
 *     double-free marker (blocks of a refill that were never handed out
 *     need not).
 *   - room[cls] == rsb_tc_cap[cls] - (length of head[cls]); it never goes
 *     below -1 (the free that takes it there flushes).  Kept as room rather
 *     than a count so that free's test is one decrement.
 *   - rsb_tc is the thread's cache while it is on (state ON), NULL otherwise
 *     (not set up yet, being set up, thread exiting, junk filling,
 *     valgrind): then the thread holds no blocks at all.
 *   - An outbox holds count blocks, all of slabs owned by cache owner1 - 1,
 *     counted as used there; count == 0 iff head == NULL.
 *
 * TLS: a thread cache is taken from a pool of them when the thread turns it
 * on (thread_cache.c); the thread-local state is a pointer and two bytes of
 * initial-exec TLS.  The fast paths read the pointer with one
 * %fs-relative load (a TLS descriptor call costs about eight instructions on
 * each malloc and free), and 16 bytes of static TLS fit in glibc's reserve
 * even when the library is dlopen'ed (pitfall: "cannot allocate memory in
 * static TLS block").  At thread exit a destructor (rsb_os_on_thread_exit)
 * flushes it, turns it off and frees it; later frees from that thread (glibc
 * frees after the destructors) go straight to the shared caches.
 */
#ifndef RSB_THREAD_CACHE_H
#define RSB_THREAD_CACHE_H

#include "alloc.h"

enum { RSB_TC_NEW = 0, RSB_TC_SETUP, RSB_TC_ON, RSB_TC_DEAD };
/* A thread turns its cache on after this many small allocations: a
 * short-lived thread never pays for setting one up and flushing it. */
#define RSB_TC_WARMUP 64

/* Blocks this thread freed that belong to another cache, waiting to be sent
 * to it as one chain.  Direct-mapped by owner index; a collision sends the
 * occupant.  Links are plain first words, as on the owner's remote stack. */
#define RSB_OUTBOX_SLOTS 8
#define RSB_OUTBOX_BATCH 32
typedef struct rsb_outbox {
    void *head, *tail;
    uint32_t owner1; /* 1 + owner cache index, 0 when empty */
    uint32_t count;
} rsb_outbox;

typedef struct rsb_thread_cache {
    void *head[RSB_TC_CLASSES];
    int8_t room[RSB_TC_CLASSES];
    uint32_t cache1; /* 1 + index of this thread's shared cache */
    rsb_outbox out[RSB_OUTBOX_SLOTS];
} rsb_thread_cache;

#define RSB_IE_TLS __attribute__((tls_model("initial-exec")))
extern __thread rsb_thread_cache *rsb_tc RSB_IE_TLS;
extern __thread uint8_t rsb_tc_state RSB_IE_TLS;  /* RSB_TC_NEW ... */
extern __thread uint8_t rsb_tc_warmup RSB_IE_TLS; /* NEW: small allocations so far */

/* Blocks each class may hold (set by rsb_tc_init). */
extern uint8_t rsb_tc_cap[RSB_TC_CLASSES];

/* Pop a block of class cls (< RSB_TC_CLASSES) or NULL. */
RSB_INLINE void *rsb_tc_pop(const rsb_allocator *a, rsb_thread_cache *t, unsigned cls) {
    void **b = (void **)t->head[cls];
    if (unlikely(b == NULL)) return NULL;
    t->head[cls] = rsb_batch_link_get(a, b, cls);
    t->room[cls]++;
    b[1] = NULL;
    return b;
}

/* Push checked, marked block b of class cls; flush when over the cap. */
void rsb_tc_flush(rsb_allocator *a, rsb_thread_cache *t, unsigned cls);
RSB_INLINE void rsb_tc_push(rsb_allocator *a, rsb_thread_cache *t, unsigned cls, void **b) {
    rsb_link_set(a->link_key, b, t->head[cls]);
    t->head[cls] = b;
    if (unlikely(--t->room[cls] < 0)) rsb_tc_flush(a, t, cls);
}

/* Send an outbox's chain to its owner's remote stack. */
void rsb_outbox_send(rsb_allocator *a, rsb_outbox *o);

/* A block of a slab owned by another cache: queue it for its owner. */
RSB_INLINE void rsb_outbox_put(rsb_allocator *a, rsb_thread_cache *t, uint32_t owner, void **b) {
    rsb_outbox *o = &t->out[owner & (RSB_OUTBOX_SLOTS - 1)];
    if (unlikely(o->owner1 != owner + 1)) {
        if (o->count) rsb_outbox_send(a, o);
        o->owner1 = owner + 1;
        o->tail = b;
    }
    b[0] = o->head;
    o->head = b;
    if (unlikely(++o->count >= RSB_OUTBOX_BATCH)) rsb_outbox_send(a, o);
}

/* Malloc of class cls when t's list is empty: refill it with a batch.  NULL
 * if out of memory. */
void *rsb_tc_refill(rsb_allocator *a, rsb_thread_cache *t, unsigned cls);
/* Malloc of class cls while the thread cache is off: count towards the
 * warm-up, turn it on when that is over, or allocate from the shared cache. */
void *rsb_tc_start(rsb_allocator *a, unsigned cls);
/* Give every block back (trim, stats); with turn_off (thread exit) also
 * turn the thread cache off for good and free it. */
void rsb_tc_drain(rsb_allocator *a, rsb_thread_cache *t, bool turn_off);
/* Caps per class; once at start-up. */
void rsb_tc_init(void);
/* The invariants above (RSB_CHECK). */
void rsb_tc_check(const rsb_allocator *a, const rsb_thread_cache *t);

#endif
