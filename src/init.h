/* The hosted process-wide allocator and its one-time initialisation. */
#ifndef RSB_INIT_H
#define RSB_INIT_H

#include "allocator.h"

extern rsb_allocator rsb_global;
void rsb_init(void);

/* The allocator, initialised on first use (from any thread, the dynamic
 * loader or a constructor). */
RSB_INLINE rsb_allocator *rsb_global_get(void) {
    rsb_allocator *a = &rsb_global;
    if (unlikely(!__atomic_load_n(&a->ready, __ATOMIC_ACQUIRE))) rsb_init();
    return a;
}

#endif
