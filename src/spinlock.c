/* Contended path of the cache and page-allocator spinlocks (see spinlock.h). */
#include "spinlock.h"

#include "os/os.h"

#define RSB_SPINS_BEFORE_YIELD 64

void rsb_lock_slow(rsb_lock *l) {
    unsigned spins = 0;
    for (;;) {
        while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED)) {
            if (++spins < RSB_SPINS_BEFORE_YIELD)
                rsb_cpu_relax();
            else
                rsb_os_yield();
        }
        if (!__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE)) break;
    }
    l->contended++;
}
