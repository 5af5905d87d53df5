/*
 * Magazines (hosted only): a few free blocks per size class (see
 * rsb_mag_init for how many) held by each thread in front of its hashed
 * cache, so that most malloc/free pairs take no lock and no atomic
 * instruction.  Blocks move between a magazine and the thread's cache in
 * batches, under the cache's spinlock: one lock per batch instead of one per
 * block.
 *
 * Invariants
 *   - Blocks in a magazine belong to slabs owned by the cache cache1 - 1,
 *     count as used in their slab, and carry the double-free marker.
 *   - room[cls] == rsb_mag_cap[cls] - (length of head[cls]); it never goes
 *     below -1 (the free that takes it there flushes).  Kept as room rather
 *     than a count so that free's test is one decrement.
 *   - rsb_mag_on is the thread's magazine while it is on (state ON), NULL
 *     otherwise (not set up yet, set-up in progress, thread exiting, junk
 *     filling, valgrind): then the thread holds no blocks at all.
 *   - An outbox holds count blocks, all of slabs owned by cache owner1 - 1,
 *     counted as used there; count == 0 iff head == NULL.
 *
 * TLS: a magazine is taken from a pool of them when the thread turns it on
 * (magazine.c); the thread-local state is a pointer and two bytes of
 * initial-exec TLS.  The fast paths read the pointer with one %fs-relative
 * load (a TLS descriptor call costs about eight instructions on each malloc
 * and free), and 16 bytes of static TLS fit in glibc's reserve even when the
 * library is dlopen'ed (pitfall: "cannot allocate memory in static TLS
 * block").  At thread exit a pthread key destructor flushes the magazine,
 * turns it off and frees it; later frees from that thread (glibc frees after
 * the destructors) go straight to the caches.
 */
#ifndef RSB_MAGAZINE_H
#define RSB_MAGAZINE_H

#include "tcache.h"

enum { RSB_MAG_NEW = 0, RSB_MAG_SETUP, RSB_MAG_ON, RSB_MAG_DEAD };
/* A thread turns its magazine on after this many small allocations: a
 * short-lived thread never pays for setting one up and flushing it. */
#define RSB_MAG_WARMUP 64

/* Blocks this thread freed that belong to another cache, waiting to be sent
 * to it as one chain (one CAS for up to RSB_OUTBOX_BATCH frees instead of
 * one each).  Direct-mapped by owner index; a collision sends the occupant.
 * Links are plain first words, as on the owner's remote stack. */
#define RSB_OUTBOX_SLOTS 8
#define RSB_OUTBOX_BATCH 32
typedef struct rsb_outbox {
    void *head, *tail;
    uint32_t owner1; /* 1 + owner cache index, 0 when empty */
    uint32_t count;
} rsb_outbox;

typedef struct rsb_mag {
    void *head[RSB_MAG_CLASSES];
    int8_t room[RSB_MAG_CLASSES];
    uint32_t cache1; /* 1 + index of this thread's cache */
    rsb_outbox out[RSB_OUTBOX_SLOTS];
} rsb_mag;

#define RSB_IE_TLS __attribute__((tls_model("initial-exec")))
extern __thread rsb_mag *rsb_mag_on RSB_IE_TLS;
extern __thread uint8_t rsb_mag_state RSB_IE_TLS;  /* RSB_MAG_NEW ... */
extern __thread uint8_t rsb_mag_warmup RSB_IE_TLS; /* NEW: small allocations so far */

extern uint8_t rsb_mag_cap[RSB_MAG_CLASSES];

/* Pop a block of class cls (< RSB_MAG_CLASSES) or NULL. */
RSB_INLINE void *rsb_mag_pop(const rsb_arena *a, rsb_mag *m, unsigned cls) {
    void **b = (void **)m->head[cls];
    if (unlikely(b == NULL)) return NULL;
    m->head[cls] = rsb_mag_link_get(a, b, cls);
    m->room[cls]++;
    b[1] = NULL;
    return b;
}

/* Send an outbox's chain to its owner's remote stack. */
void rsb_outbox_send(rsb_arena *a, rsb_outbox *o);

/* A block of a slab owned by another cache: queue it for its owner. */
RSB_INLINE void rsb_outbox_put(rsb_arena *a, rsb_mag *m, uint32_t owner, void **b) {
    rsb_outbox *o = &m->out[owner & (RSB_OUTBOX_SLOTS - 1)];
    if (unlikely(o->owner1 != owner + 1)) {
        if (o->count) rsb_outbox_send(a, o);
        o->owner1 = owner + 1;
        o->tail = b;
    }
    b[0] = o->head;
    o->head = b;
    if (unlikely(++o->count >= RSB_OUTBOX_BATCH)) rsb_outbox_send(a, o);
}

/* Malloc of class cls when the thread's magazine m is empty: refill it
 * with a batch.  NULL if out of memory. */
void *rsb_mag_refill(rsb_arena *a, rsb_mag *m, unsigned cls);
/* Malloc of class cls while the magazine is off: count towards the warm-up,
 * turn the magazine on when it is over, or allocate from the cache. */
void *rsb_mag_start(rsb_arena *a, unsigned cls);
/* The magazine of cls went over its cap: give the older half back. */
void rsb_mag_flush(rsb_arena *a, rsb_mag *m, unsigned cls);
/* Give every block back (trim, stats); with turn_off (thread exit) also
 * turn the magazine off for good and free it. */
void rsb_mag_drain(rsb_arena *a, rsb_mag *m, bool turn_off);
void rsb_mag_init(void);

#endif
