/* Contended paths of the cache and page-allocator locks (see spinlock.h). */
#include "spinlock.h"

#include "os/os.h"

/* About a microsecond of spinning: longer than a cache lock is usually
 * held, far shorter than a time slice. */
#define RSB_SPINS 100

void rsb_lock_slow(rsb_lock *l) {
    for (unsigned spins = 0; spins < RSB_SPINS; spins++) {
        rsb_cpu_relax();
        if (__atomic_load_n(&l->locked, __ATOMIC_RELAXED) == 0 && rsb_lock_cas(l)) goto got;
    }
    /* Sleep: mark the lock as having sleepers (2) and wait while it stays
     * so.  Whoever takes it from here takes it as 2, so that its unlock
     * wakes the next sleeper too. */
    while (__atomic_exchange_n(&l->locked, 2, __ATOMIC_ACQUIRE) != 0) rsb_os_wait(&l->locked, 2);
got:
    l->contended++;
}

void rsb_lock_wake(rsb_lock *l) { rsb_os_wake(&l->locked); }
