/*
 * The process-wide allocator (hosted): one-time initialisation, fork
 * handling, thread exit and the exit report.
 *
 * Start-up must not recurse: nothing called before `ready` is set may
 * allocate (no dlsym, no stdio, no pthread_atfork).  The page size comes from
 * the auxiliary vector, the CPU count from a raw syscall, entropy from
 * AT_RANDOM, options from `environ`.  The fork handlers (which may allocate)
 * are registered from the library constructor, after the allocator is ready.
 */
#include "init.h"

#include "cache.h"
#include "options.h"
#include "os/os.h"
#include "page/huge.h"
#include "prof.h"
#include "purge.h"
#include "stats.h"
#include "thread_cache.h"

rsb_allocator rsb_global;
static int init_state;        /* 0 not started, 1 running, 2 done */
static uintptr_t init_thread; /* the thread running it (state 1) */
static bool options_loaded;   /* false if init ran before libc set environ */

/* Thread exit: give the thread cache back; frees that come later from this
 * thread (glibc frees after the destructors) go straight to the caches. */
static void thread_exit(void *t) { rsb_tc_drain(&rsb_global, (rsb_thread_cache *)t, true); }

void rsb_init(void) {
    int expected = 0;
    if (!__atomic_compare_exchange_n(&init_state, &expected, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        /* Waiting for ourselves would hang: a function start-up calls was
         * replaced by one that allocates (the OS layer makes system calls
         * directly to avoid exactly that). */
        if (expected == 1 && __atomic_load_n(&init_thread, __ATOMIC_RELAXED) == rsb_os_thread_id())
            rsb_fatal("malloc called from inside its own start-up (by a replaced system function)");
        while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 2) rsb_os_yield();
        return;
    }
    __atomic_store_n(&init_thread, rsb_os_thread_id(), __ATOMIC_RELAXED);
    rsb_allocator *a = &rsb_global;
    rsb_os_init();
    options_loaded = rsb_options_load();
    rsb_pages_init(&a->pages, rsb_opt.purge_delay_ms);
    rsb_huge_init(&a->pages);
    uint32_t n = rsb_opt.caches;
    if (n == 0) {
        n = (uint32_t)rsb_next_pow2(4 * (size_t)rsb_os_ncpu());
        if (n < RSB_MIN_CACHES) n = RSB_MIN_CACHES;
    }
    n = (uint32_t)rsb_next_pow2(n);
    if (n > RSB_MAX_CACHES) n = RSB_MAX_CACHES;
    rsb_cache *caches = rsb_os_map(rsb_align_up(n * sizeof(rsb_cache), rsb_os_page), rsb_os_page, 0);
    if (!caches) rsb_fatal("cannot map its own metadata at start-up");
    rsb_caches_init(a, caches, n);
    rsb_tc_init();
    rsb_os_thread_exit_init(thread_exit);
    a->key = rsb_os_random();
    a->link_key = rsb_os_random() * 0xd6e8feb86659fd93ull;
    __atomic_store_n(&a->ready, 1, __ATOMIC_RELEASE);
    a->junk = rsb_opt.junk;
    __atomic_store_n(&a->fast, !rsb_opt.junk, __ATOMIC_RELEASE);
    __atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
}

/* fork(): take every lock so that no other thread holds one at the moment
 * of the fork; release them in the parent, reset them in the child (whose
 * only thread is the one that held them). */
static void atfork_prepare(void) {
    rsb_prof_lock(); /* a leaf lock: never held with another, so any order works */
    rsb_lock_all(&rsb_global);
}
static void atfork_parent(void) {
    rsb_unlock_all(&rsb_global);
    rsb_prof_unlock();
}
static void atfork_child(void) {
    rsb_allocator *a = &rsb_global;
    rsb_prof_reset();
    rsb_lock_reset(&a->pages.lock);
    for (uint32_t i = 0; i < a->ncaches; i++) rsb_lock_reset(&a->caches[i].lock);
    rsb_bg_forget(); /* started again on the child's first slow path */
}

static void verbose_report(void) {
    rsb_buf b = {.len = 0};
    rsb_buf_str(&b, "rsbmalloc: ready: ");
    rsb_buf_dec(&b, rsb_global.ncaches);
    rsb_buf_str(&b, " caches, purge delay ");
    if (rsb_global.pages.purge_delay_ms < 0)
        rsb_buf_str(&b, "never");
    else {
        rsb_buf_dec(&b, (uint64_t)rsb_global.pages.purge_delay_ms);
        rsb_buf_str(&b, " ms");
    }
    rsb_buf_str(&b, ", OS page ");
    rsb_buf_dec(&b, rsb_os_page);
    rsb_buf_str(&b, " B, stats ");
    rsb_buf_str(&b, rsb_opt.stats ? "on" : "off");
    rsb_buf_str(&b, ", junk ");
    rsb_buf_str(&b, rsb_opt.junk ? "on" : "off");
    rsb_buf_str(&b, ", background purge ");
    rsb_buf_str(&b, rsb_opt.background_purge ? "on" : "off");
    rsb_buf_str(&b, ", heap profile ");
    if (rsb_prof_active) {
        rsb_buf_str(&b, "every ");
        rsb_buf_dec(&b, rsb_opt.prof_sample);
        rsb_buf_str(&b, " B");
    } else {
        rsb_buf_str(&b, "off");
    }
    rsb_buf_str(&b, "\n");
    rsb_buf_flush(&b, 2);
}

__attribute__((constructor)) static void rsb_constructor(void) {
    rsb_init();
    /* If the first allocation came before libc set up environ, read the
     * options now; all but the cache count can still take effect. */
    if (!options_loaded && rsb_options_load()) {
        options_loaded = true;
        rsb_lock_acquire(&rsb_global.pages.lock);
        rsb_global.pages.purge_delay_ms = rsb_opt.purge_delay_ms;
        rsb_global.junk = rsb_opt.junk;
        rsb_lock_release(&rsb_global.pages.lock);
        __atomic_store_n(&rsb_global.fast, !rsb_opt.junk, __ATOMIC_RELEASE);
    }
    rsb_os_atfork(atfork_prepare, atfork_parent, atfork_child);
    if (rsb_opt.background_purge) rsb_bg_ensure(&rsb_global);
    rsb_prof_start(); /* after the atfork handlers: it may call the unwinder */
    if (rsb_opt.verbose) verbose_report();
}

/* The report goes to stderr, or to RSBMALLOC_STATS_FILE (for programs
 * that close stderr before they exit); "%p" in the path is the pid. */
static void stats_at_exit(void) {
    if (!rsb_opt.stats_file[0]) {
        rsb_stats_report(&rsb_global, 2);
        return;
    }
    char path[sizeof rsb_opt.stats_file + 24];
    size_t n = 0;
    for (const char *s = rsb_opt.stats_file; *s && n + 21 < sizeof path; s++) {
        if (s[0] == '%' && s[1] == 'p') {
            rsb_buf b;
            b.len = 0;
            rsb_buf_dec(&b, rsb_os_pid());
            for (size_t i = 0; i < b.len; i++) path[n++] = b.data[i];
            s++;
        } else {
            path[n++] = *s;
        }
    }
    path[n] = 0;
    int fd = rsb_os_open_report(path);
    if (fd < 0) {
        rsb_buf b;
        b.len = 0;
        rsb_buf_str(&b, "rsbmalloc: warning: cannot write the statistics to ");
        rsb_buf_str(&b, path);
        rsb_buf_str(&b, "\n");
        rsb_buf_flush(&b, 2);
        return;
    }
    rsb_stats_report(&rsb_global, fd);
    rsb_os_close(fd);
}

__attribute__((destructor)) static void rsb_destructor(void) {
    rsb_bg_stop();
    rsb_prof_exit();
    if (rsb_opt.stats) stats_at_exit();
}
