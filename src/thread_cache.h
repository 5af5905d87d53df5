/*
 * Thread caches (hosted only): a few free blocks per size class held by each
 * thread in front of its shared cache (cache.h), so that most malloc/free
 * pairs take no lock and no atomic instruction.  Blocks move between a
 * thread cache and the thread's shared cache in batches, under that cache's
 * spinlock: one lock per batch instead of one per block.  A thread cache
 * takes the blocks its thread frees whichever cache owns their slab, so a
 * thread that frees what another allocated (a server's workers, larson)
 * reuses those blocks itself; a flush sorts them home: its own cache's onto
 * their slabs, the others' onto their owners' remote stacks, one chain per
 * owner (rsb_cache_put_batch).
 *
 * Invariants (rsb_tc_check)
 *   - Blocks in a thread cache belong to live slabs of their class (of any
 *     owner) and count as used there; those the program freed carry the
 *     double-free marker (blocks of a refill that were never handed out
 *     need not).
 *   - Each class holds two lists: head[cls], which malloc pops and free
 *     pushes, of at most B = rsb_tc_batch[cls] blocks, and spare[cls], empty
 *     or exactly B blocks.  room[cls] == B - (length of head[cls]), in 0..B;
 *     a free that finds it at 0 rotates instead of pushing: the B blocks of
 *     head become the spare list, the old spare goes back whole, and the
 *     freed block starts a new head.  Kept as room rather than a count so
 *     that free's test is one compare with zero; a rotation and a refill are O(1), no list is ever walked.
 *   - rsb_tc is the thread's cache while it is on (state ON), otherwise
 *     &rsb_tc_off (not set up yet, being set up, thread exiting, junk
 *     filling, valgrind): a shared stand-in whose lists are always empty and
 *     whose room is 0, so malloc's pop finds nothing and free's push goes
 *     to rsb_tc_flush, which frees the block to the shared cache.  The fast
 *     paths then need no "is it on?" test.  Nothing ever writes to it (push
 *     tests room before it decrements: a shared stand-in written by every
 *     thread would be a data race, and a lost reset could wrap the count).
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

typedef struct rsb_thread_cache {
    void *head[RSB_TC_CLASSES];
    int16_t room[RSB_TC_CLASSES];
    void *spare[RSB_TC_CLASSES];
    uint32_t cache1; /* 1 + index of this thread's shared cache */
} rsb_thread_cache;

#define RSB_IE_TLS __attribute__((tls_model("initial-exec")))
extern rsb_thread_cache rsb_tc_off;
extern __thread rsb_thread_cache *rsb_tc RSB_IE_TLS; /* never NULL */
extern __thread uint8_t rsb_tc_state RSB_IE_TLS;  /* RSB_TC_NEW ... */
extern __thread uint8_t rsb_tc_warmup RSB_IE_TLS; /* NEW: small allocations so far */

/* Blocks each class may hold in all, and in one batch (set by rsb_tc_init):
 * 2 * batch <= cap, or batch = cap <= 1 with no spare list. */
extern uint8_t rsb_tc_cap[RSB_TC_CLASSES];
extern uint8_t rsb_tc_batch[RSB_TC_CLASSES];

/* Pop a block of class cls (< RSB_TC_CLASSES) or NULL. */
RSB_INLINE void *rsb_tc_pop(const rsb_allocator *a, rsb_thread_cache *t, unsigned cls) {
    /* rsb_tc_off's lists are empty: NULL. */
    void **b = (void **)t->head[cls];
    if (unlikely(b == NULL)) return NULL;
    t->head[cls] = rsb_batch_link_get(a, b, cls);
    t->room[cls]++;
    b[1] = NULL;
    return b;
}

/* Push checked, marked block b of class cls; when head is full, rotate
 * (or, for rsb_tc_off, free b to the shared cache) instead. */
void rsb_tc_flush(rsb_allocator *a, rsb_thread_cache *t, unsigned cls, void **b);
RSB_INLINE void rsb_tc_push(rsb_allocator *a, rsb_thread_cache *t, unsigned cls, void **b) {
    /* Test, then write: rsb_tc_off (room 0) is shared by every thread whose
     * cache is off and is never written.  (The subtraction's sign is the
     * test: load, sub, js, store.) */
    int room = t->room[cls] - 1;
    if (unlikely(room < 0)) {
        rsb_tc_flush(a, t, cls, b);
        return;
    }
    t->room[cls] = (int16_t)room;
    rsb_link_set(a->link_key, b, t->head[cls]);
    t->head[cls] = b;
}

/* Malloc of class cls when t's head list is empty: the spare list becomes
 * the head, or a batch comes from the shared cache.  NULL if out of memory. */
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
