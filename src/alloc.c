/*
 * Allocation paths that are not inline (alloc.h): page runs and huge
 * blocks, calloc, memalign, realloc, trim.
 */
#include "alloc.h"

/* Pages that hold size bytes (at least one); 0 if more than a span can have. */
static uint32_t pages_for(size_t size) {
    size_t n = (size >> RSB_PAGE_SHIFT) + ((size & (RSB_PAGE_SIZE - 1)) != 0);
    return n == 0 ? 1 : n > UINT32_MAX ? 0 : (uint32_t)n;
}

void *rsb_big_alloc(rsb_allocator *a, size_t size, size_t align, bool *zero) {
    if (size > RSB_RUN_MAX || align > RSB_PAGE_SIZE) return rsb_huge_alloc(&a->pages, size, align, zero);
    uint32_t n = pages_for(size);
    if (n == 0) return NULL;
    rsb_lock_acquire(&a->pages.lock);
    rsb_span *s = rsb_run_alloc(&a->pages, n, zero);
    rsb_lock_release(&a->pages.lock);
    return s ? rsb_span_start(s) : NULL;
}

/* Zero a big reused block: memory past the first OS page is handed back to
 * the OS (it reads as zero and is faulted in only when touched) instead of
 * being written, so a sparse calloc does not become resident.  Without an
 * OS the purge fails and every byte is written. */
static void zero_big(void *p, size_t size) {
    if (size >= ((size_t)1 << 20)) {
        uintptr_t lo = rsb_align_up((uintptr_t)p, rsb_os_page);
        uintptr_t hi = ((uintptr_t)p + size) & ~(uintptr_t)(rsb_os_page - 1);
        if (hi > lo && rsb_os_purge((void *)lo, hi - lo)) {
            rsb_memset(p, 0, lo - (uintptr_t)p);
            rsb_memset((void *)hi, 0, (uintptr_t)p + size - hi);
            return;
        }
    }
    rsb_memset(p, 0, size);
}

void *rsb_core_calloc(rsb_allocator *a, size_t size) {
    if (likely(size <= RSB_SMALL_MAX)) {
        void *p = rsb_small_alloc(a, rsb_size_class(size));
        if (p) rsb_memset(p, 0, size);
        return p;
    }
    bool zero;
    void *p = rsb_big_alloc(a, size, 0, &zero);
    if (p && !zero) zero_big(p, size);
    return p;
}

void *rsb_core_memalign(rsb_allocator *a, size_t align, size_t size) {
    RSB_ASSERT(rsb_is_pow2(align));
    if (align <= RSB_ALIGN) return rsb_core_malloc(a, size);
    if (size <= RSB_SMALL_MAX && align <= RSB_PAGE_SIZE) {
        unsigned cls = rsb_size_class_aligned(size, align);
        if (cls < RSB_NUM_CLASSES) return rsb_small_alloc(a, cls);
    }
    bool zero;
    return rsb_big_alloc(a, size, align, &zero);
}

/* Would a block of `old` usable bytes serve `size` without wasting more than
 * half of itself?  Then realloc keeps it. */
static bool keep_block(size_t old, size_t size) { return size <= old && (size > old / 2 || old <= 32); }

void *rsb_core_realloc(rsb_allocator *a, void *p, size_t size) {
    rsb_ptr_info info;
    rsb_ptr_kind k = rsb_classify(a, p, &info);
    size_t old = info.usable;
    switch (k) {
    case RSB_PTR_SMALL:
        if (keep_block(old, size)) return p;
        break;
    case RSB_PTR_RUN: {
        rsb_span *s = info.span;
        if (keep_block(old, size)) return p;
        if (size > old && size <= RSB_RUN_MAX) {
            rsb_lock_acquire(&a->pages.lock);
            bool grown = rsb_pages_grow(&a->pages, s, pages_for(size));
            rsb_lock_release(&a->pages.lock);
            if (grown) return p;
        }
        break;
    }
    case RSB_PTR_HUGE:
        /* Grow, or shrink while still above the small classes: resize the
         * mapping (mremap or unmapping the tail) instead of copying. */
        if (size > RSB_RUN_MAX || (size <= old && size > RSB_SMALL_MAX)) {
            void *q = rsb_huge_realloc(&a->pages, info.huge, size);
            if (q) return q;
        }
        break;
    default:
        rsb_bad_pointer(k, RSB_OP_REALLOC, p);
    }
    void *q = rsb_core_malloc(a, size);
    if (!q) return NULL;
    rsb_memcpy(q, p, old < size ? old : size);
    rsb_core_free(a, p);
    return q;
}

bool rsb_core_trim(rsb_allocator *a) {
    rsb_caches_flush_xfer(a);
    rsb_caches_drain_all(a);
    rsb_caches_release_empty(a);
    bool scrubbed = rsb_caches_scrub(a, true) != 0;
    rsb_lock_acquire(&a->pages.lock);
    bool released = rsb_pages_purge(&a->pages, true);
    rsb_lock_release(&a->pages.lock);
    return released || scrubbed;
}
