/* The hosted process-wide arena and its one-time initialisation. */
#ifndef RSB_INIT_H
#define RSB_INIT_H

#include "tcache.h"

extern rsb_arena rsb_global;
void rsb_init(void);

/* The arena, initialised on first use (from any thread, the dynamic loader
 * or a constructor). */
RSB_INLINE rsb_arena *rsb_arena_get(void) {
    rsb_arena *a = &rsb_global;
    if (unlikely(!__atomic_load_n(&a->ready, __ATOMIC_ACQUIRE))) rsb_init();
    return a;
}

/* Ask for a destructor call at this thread's exit (flushes its magazine).
 * False if no pthread key could be had. */
struct rsb_mag;
bool rsb_thread_register(struct rsb_mag *m);

/* Lock / unlock everything, caches first, then the arena (fork, stats). */
void rsb_lock_all(rsb_arena *a);
void rsb_unlock_all(rsb_arena *a);

#endif
