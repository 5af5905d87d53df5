/*
 * The allocator's lock: a spinlock on the fast side, a futex when it waits.
 *
 * Uncontended: one compare-and-swap to lock, one exchange to unlock.
 * Contended: spin reading the word (no cache-line ping-pong) with a CPU
 * pause, a bounded number of times (the holder of a cache lock keeps it for
 * a few hundred instructions), then mark the lock "with sleepers" and sleep
 * in the kernel until the holder's unlock wakes one waiter.  With many more
 * threads than cores a preempted holder then costs the waiters nothing: they
 * sleep instead of taking turns at sched_yield (and valgrind, which runs
 * one thread at a time, lets the holder run).
 *
 * Single-threaded processes (glibc's __libc_single_threaded, hosted) take
 * and release the lock with plain stores: no other thread exists to race
 * with, and glibc clears the flag in pthread_create before the new thread
 * runs, never while we hold a lock.  A held lock is still seen as held (a
 * signal handler that re-enters malloc waits instead of corrupting).
 * Threads made with a raw clone(CLONE_VM) bypass the flag; glibc documents
 * the same limit.
 *
 * Invariant: `locked` is 0 (free), 1 (held) or 2 (held, and a waiter may be
 * asleep: the unlock must wake one); `contended` is only written by the
 * holder.
 */
#ifndef RSB_SPINLOCK_H
#define RSB_SPINLOCK_H

#include "util.h"

typedef struct rsb_lock {
    uint32_t locked;
    uint32_t contended; /* acquisitions that had to wait (stats) */
} rsb_lock;

#define RSB_LOCK_INIT {0, 0}

static inline void rsb_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

void rsb_lock_slow(rsb_lock *l);
void rsb_lock_wake(rsb_lock *l);

#include <sys/single_threaded.h>

/* Take the lock with plain accesses: only while the process has one thread. */
RSB_INLINE bool rsb_lock_single(rsb_lock *l) {
    if (!__atomic_load_n(&__libc_single_threaded, __ATOMIC_RELAXED) ||
        __atomic_load_n(&l->locked, __ATOMIC_RELAXED))
        return false;
    __atomic_store_n(&l->locked, 1, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_ACQUIRE);
    return true;
}

RSB_INLINE bool rsb_lock_cas(rsb_lock *l) {
    uint32_t free_ = 0;
    return __atomic_compare_exchange_n(&l->locked, &free_, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

RSB_INLINE void rsb_lock_acquire(rsb_lock *l) {
    if (rsb_lock_single(l)) return;
    if (likely(rsb_lock_cas(l))) return;
    rsb_lock_slow(l);
}

RSB_INLINE bool rsb_lock_try(rsb_lock *l) { return rsb_lock_single(l) || rsb_lock_cas(l); }

RSB_INLINE void rsb_lock_release(rsb_lock *l) {
    if (__atomic_load_n(&__libc_single_threaded, __ATOMIC_RELAXED)) { /* no other thread: no sleeper */
        __atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
        return;
    }
    if (unlikely(__atomic_exchange_n(&l->locked, 0, __ATOMIC_RELEASE) == 2)) rsb_lock_wake(l);
}

/* After fork(), in the child: the forking thread held every lock. */
RSB_INLINE void rsb_lock_reset(rsb_lock *l) { __atomic_store_n(&l->locked, 0, __ATOMIC_RELAXED); }

#endif
