/* The background purge: see purge.h. */
#include "purge.h"

#include "cache.h"
#include "os/os.h"

static int state; /* 0 off, 1 running, 2 asked to stop */

void rsb_bg_pass(rsb_allocator *a) {
    rsb_caches_flush_xfer(a);
    rsb_caches_drain_all(a);
    rsb_caches_scrub(a, false);
    rsb_lock_acquire(&a->pages.lock);
    rsb_pages_purge(&a->pages, false);
    rsb_lock_release(&a->pages.lock);
}

static void bg_main(void *arg) {
    rsb_allocator *a = (rsb_allocator *)arg;
    while (__atomic_load_n(&state, __ATOMIC_ACQUIRE) == 1) {
        rsb_os_sleep_ms(RSB_BG_PERIOD_MS);
        if (__atomic_load_n(&state, __ATOMIC_ACQUIRE) != 1) break;
        rsb_bg_pass(a);
    }
}

void rsb_bg_ensure(rsb_allocator *a) {
    int off = 0;
    if (__atomic_load_n(&state, __ATOMIC_RELAXED) != 0) return;
    if (!__atomic_compare_exchange_n(&state, &off, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return;
    if (!rsb_os_thread_start(bg_main, a)) __atomic_store_n(&state, 0, __ATOMIC_RELEASE);
}

void rsb_bg_stop(void) {
    int on = 1;
    if (!__atomic_compare_exchange_n(&state, &on, 2, false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return;
    rsb_os_thread_join();
    __atomic_store_n(&state, 0, __ATOMIC_RELEASE);
}

void rsb_bg_forget(void) { __atomic_store_n(&state, 0, __ATOMIC_RELAXED); }
