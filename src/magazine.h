/*
 * Magazines (hosted only): a few free blocks per size class (see
 * rsb_mag_init for how many) held by each thread in front of its hashed cache, so that most malloc/free pairs take
 * no lock and no atomic instruction.  Blocks move between a magazine and the
 * thread's cache in batches, under the cache's spinlock: one lock per batch
 * instead of one per block.
 *
 * Invariants
 *   - Blocks in a magazine belong to slabs owned by the cache cache1 - 1,
 *     count as used in their slab, and carry the double-free marker.
 *   - count[cls] is the length of the list head[cls]; it never exceeds
 *     rsb_mag_cap[cls] + 1 (a free that reaches cap + 1 flushes).
 *   - cache1 == 0 (magazine off: not set up yet, set-up in progress, thread
 *     exiting, or junk filling on) implies every list and outbox is empty.
 *   - An outbox holds count blocks, all of slabs owned by cache owner1 - 1,
 *     counted as used there; count == 0 iff head == NULL.
 *
 * TLS: compiled with the TLS-descriptor dialect where the compiler supports
 * it, so a dlopen'ed copy allocates its TLS dynamically instead of taking
 * scarce static TLS (pitfall: "cannot allocate memory in static TLS block").
 * At thread exit a pthread key destructor flushes the magazine and turns it
 * off; later frees from that thread (glibc frees after the destructors) go
 * straight to the caches.
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
    uint8_t count[RSB_MAG_CLASSES];
    uint8_t state;
    uint8_t warmup;  /* NEW: small allocations so far (see RSB_MAG_WARMUP) */
    uint32_t cache1; /* 1 + index of this thread's cache, 0 when off */
    rsb_outbox out[RSB_OUTBOX_SLOTS];
} rsb_mag;

extern __thread rsb_mag rsb_mag_tls;

/* The calling thread's magazine, as a plain pointer: the empty asm makes the
 * compiler materialise the address once, instead of repeating the TLS
 * descriptor call for each access. */
RSB_INLINE rsb_mag *rsb_mag_self(void) {
    rsb_mag *m = &rsb_mag_tls;
    __asm__("" : "+r"(m));
    return m;
}
extern uint8_t rsb_mag_cap[RSB_MAG_CLASSES];

/* Pop a block of class cls (< RSB_MAG_CLASSES) or NULL. */
RSB_INLINE void *rsb_mag_pop(const rsb_arena *a, rsb_mag *m, unsigned cls) {
    void **b = (void **)m->head[cls];
    if (unlikely(b == NULL)) return NULL;
    m->head[cls] = rsb_mag_link_get(a, b, cls);
    m->count[cls]--;
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

/* Malloc of a magazine class when the magazine is empty: set the magazine
 * up if needed and refill it with a batch.  NULL if out of memory. */
void *rsb_mag_refill(rsb_arena *a, rsb_mag *m, unsigned cls);
/* The magazine of cls went over its cap: give the older half back. */
void rsb_mag_flush(rsb_arena *a, rsb_mag *m, unsigned cls);
/* Give every block back and turn the magazine off (thread exit, trim). */
void rsb_mag_drain(rsb_arena *a, rsb_mag *m, bool turn_off);
void rsb_mag_init(void);

#endif
