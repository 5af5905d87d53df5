/*
 * The out-of-line part of the entry points (entry.h): start-up on first
 * use, thread-cache refills, other sizes, junk filling (RSBMALLOC_JUNK) and
 * valgrind tracking (track.h).
 */
#include "entry.h"

#include "options.h"
#include "purge.h"
#include "stats.h"

static inline void *junk_new(const rsb_allocator *a, void *p, size_t size) {
    if (unlikely(a->junk) && p) rsb_memset(p, RSB_JUNK_ALLOC, size);
    return p;
}

/* A small block for the calling thread: from its thread cache (refilled
 * when empty), or, while that is off, from its shared cache. */
static void *small_alloc(rsb_allocator *a, unsigned cls) {
    rsb_thread_cache *t = rsb_tc;
    if (t == &rsb_tc_off) return rsb_tc_start(a, cls);
    void *p = rsb_tc_pop(a, t, cls);
    return p ? p : rsb_tc_refill(a, t, cls);
}

rsb_gate_t rsb_gate = {.malloc_max = RSB_CLASS_LUT_MAX};

void rsb_gate_slow(void) { __atomic_store_n(&rsb_gate.malloc_max, 0, __ATOMIC_RELAXED); }

/* A block heap profiling samples (prof.h): a page run (or a huge block)
 * whatever its size, so that free's inline path never meets one. */
static void *prof_alloc(rsb_allocator *a, size_t size, size_t align, bool zero) {
    bool z;
    void *p = rsb_big_alloc(a, size ? size : 1, align, &z);
    if (!p) return NULL;
    if (zero && !z) rsb_memset(p, 0, size);
    rsb_prof_record(p, size);
    return p;
}

void *rsb_entry_malloc_prof(size_t size) {
    if (likely(!rsb_prof_take(size))) return rsb_entry_malloc_slow(size);
    rsb_allocator *a = rsb_global_get();
    rsb_track_enter();
    void *p = junk_new(a, prof_alloc(a, size, 0, false), size);
    rsb_track_leave();
    return rsb_track_alloc(p, size, 0);
}

void *rsb_entry_malloc_slow(size_t size) {
    rsb_allocator *a = rsb_global_get();
    if (unlikely(rsb_opt.background_purge)) rsb_bg_ensure(a); /* again after a fork */
    rsb_track_enter();
    void *p = size <= RSB_SMALL_MAX ? small_alloc(a, rsb_size_class(size)) : rsb_core_malloc(a, size);
    junk_new(a, p, size);
    rsb_track_leave();
    return rsb_track_alloc(p, size, 0);
}

void *rsb_entry_calloc_prof(size_t total) {
    if (likely(!rsb_prof_take(total))) return rsb_entry_calloc_slow(total);
    rsb_allocator *a = rsb_global_get();
    rsb_track_enter();
    void *p = prof_alloc(a, total, 0, true);
    rsb_track_leave();
    return rsb_track_alloc(p, total, 1);
}

void *rsb_entry_calloc_slow(size_t total) {
    rsb_allocator *a = rsb_global_get();
    rsb_track_enter();
    void *p;
    if (total <= RSB_SMALL_MAX) {
        p = small_alloc(a, rsb_size_class(total));
        if (p) rsb_memset(p, 0, total);
    } else {
        p = rsb_core_calloc(a, total);
    }
    rsb_track_leave();
    return rsb_track_alloc(p, total, 1);
}

void rsb_entry_free_untracked(void *p) { rsb_entry_free_now(p); }

void rsb_entry_free_run(void *p, rsb_chunk *ch, rsb_allocator *a) {
    rsb_prof_free(p);
    rsb_run_free_at(p, ch, a);
}

void rsb_entry_free_slow(void *p, rsb_allocator *a) {
    rsb_prof_free(p);
    rsb_free_slow(p, a);
}

void *rsb_entry_memalign(size_t align, size_t size) {
    rsb_allocator *a = rsb_global_get();
    rsb_track_enter();
    void *p = unlikely(rsb_prof_active) && rsb_prof_take(size) ? prof_alloc(a, size, align > RSB_ALIGN ? align : 0, false)
                                                               : rsb_core_memalign(a, align, size);
    junk_new(a, p, size);
    rsb_track_leave();
    return rsb_track_alloc(p, size, 0);
}

void *rsb_entry_realloc(void *p, size_t size) {
    rsb_allocator *a = rsb_global_get();
    if (rsb_track_on()) { /* always move, so that a stale pointer is caught */
        size_t old;
        rsb_track_quiet(old = rsb_core_usable_size(a, p)); /* aborts on a bad pointer */
        void *q = rsb_entry_malloc(size);
        if (!q) return NULL;
        rsb_track_quiet(rsb_memcpy(q, p, old < size ? old : size)); /* the slack past p's size */
        rsb_entry_free(p);
        return q;
    }
    /* Profiling sees a realloc as a free and a malloc: the old record goes
     * (if realloc then fails, p stays unrecorded), and a sampled result
     * moves to a page run of its own. */
    rsb_prof_free(p);
    if (unlikely(rsb_prof_active) && rsb_prof_take(size)) {
        size_t old = rsb_core_usable_size(a, p); /* aborts on a bad pointer */
        void *q = prof_alloc(a, size, 0, false);
        if (!q) return NULL;
        rsb_memcpy(q, p, old < size ? old : size);
        rsb_core_free(a, p);
        return q;
    }
    return rsb_core_realloc(a, p, size);
}

size_t rsb_entry_usable_size(const void *p) {
    size_t n;
    rsb_track_quiet(n = rsb_core_usable_size(rsb_global_get(), p));
    return n;
}

bool rsb_entry_trim(void) {
    rsb_allocator *a = rsb_global_get();
    rsb_track_enter();
    rsb_tc_drain(a, rsb_tc, false);
    bool released = rsb_core_trim(a);
    rsb_track_leave();
    return released;
}

void rsb_entry_stats(rsb_stats_t *out) {
    rsb_allocator *a = rsb_global_get();
    rsb_track_enter();
    rsb_tc_drain(a, rsb_tc, false);
    rsb_caches_flush_xfer(a); /* so that freed blocks show as free */
    rsb_stats_collect(a, out, NULL);
    rsb_track_leave();
}

void rsb_entry_stats_print(int fd) {
    rsb_allocator *a = rsb_global_get();
    rsb_track_enter();
    rsb_tc_drain(a, rsb_tc, false);
    rsb_caches_flush_xfer(a);
    rsb_stats_report(a, fd);
    rsb_track_leave();
}
