/* The spinlock: mutual exclusion under contention (more threads than
 * cores), try-lock semantics, the contention counter, and the
 * single-threaded mode's plain accesses still seeing a held lock. */
#include <pthread.h>
#include <sched.h>

#include "spinlock.h"
#include "unit.h"

enum { THREADS = 8, ROUNDS = 20000 };
static rsb_lock lock = RSB_LOCK_INIT;
static volatile long counter;
static volatile int inside, overlaps;

static void *hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        rsb_lock_acquire(&lock);
        if (inside) overlaps++;
        inside = 1;
        long c = counter;                   /* a lost update shows in the total */
        if ((i & 1023) == 0) sched_yield(); /* be preempted while holding it */
        counter = c + 1;
        inside = 0;
        rsb_lock_release(&lock);
    }
    return NULL;
}

Test(spinlock, excludes_under_contention) {
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    cr_assert_eq(overlaps, 0, "two threads were inside the lock at once");
    cr_assert_eq(counter, (long)THREADS * ROUNDS, "lost updates: %ld", counter);
    cr_assert_gt(lock.contended, 0, "8 threads on a shared lock never waited?");
    cr_assert_eq(lock.locked, 0);
}

Test(spinlock, try_fails_while_held_and_reset_frees) {
    rsb_lock l = RSB_LOCK_INIT;
    cr_assert(rsb_lock_try(&l));
    cr_assert_not(rsb_lock_try(&l), "held: try must fail (also in the single-threaded mode)");
    rsb_lock_release(&l);
    cr_assert(rsb_lock_try(&l));
    rsb_lock_reset(&l); /* fork child */
    cr_assert(rsb_lock_try(&l));
    rsb_lock_release(&l);
}
