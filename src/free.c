/*
 * Free's slow path, the one classification of a pointer (used by free,
 * realloc, usable size and the freestanding heap's checks), page-run frees.
 */
#include "alloc.h"

rsb_ptr_kind rsb_classify(const rsb_allocator *a, const void *p, rsb_ptr_info *out) {
    out->span = NULL;
    out->huge = NULL;
    out->usable = 0;
    void *hdr = rsb_header_of(&a->pages, p);
    if (!hdr) return RSB_PTR_FOREIGN;
    const rsb_huge *h = (const rsb_huge *)hdr;
    if (h->kind == RSB_HDR_HUGE || h->kind == RSB_HDR_HUGE_SPARE) {
        const char *block = rsb_huge_block(h);
        if ((const char *)p != block) return RSB_PTR_INTERIOR;
        if (h->kind == RSB_HDR_HUGE_SPARE) return RSB_PTR_FREED;
        out->huge = (rsb_huge *)h;
        out->usable = rsb_huge_usable(h);
        return RSB_PTR_HUGE;
    }
    RSB_ASSERT(h->kind == RSB_HDR_PAGES);
    rsb_span *s = rsb_span_of((const rsb_chunk *)hdr, p);
    if (!s) return RSB_PTR_INTERIOR; /* metadata, or inside a free span or a run */
    uintptr_t off = (uintptr_t)p - (uintptr_t)rsb_span_start(s);
    out->span = s;
    switch (s->kind) {
    case RSB_SPAN_SLAB:
        if (!rsb_class_divides(s->cls, off)) return RSB_PTR_INTERIOR;
        if ((uintptr_t)((void *const *)p)[1] == rsb_free_mark(a, p)) return RSB_PTR_FREED;
        out->usable = rsb_slab_block(s);
        return RSB_PTR_SMALL;
    case RSB_SPAN_RUN:
        if (off != 0) return RSB_PTR_INTERIOR;
        if (s->flags & RSB_SF_SPARE) return RSB_PTR_FREED;
        out->usable = (size_t)s->npages << RSB_PAGE_SHIFT;
        return RSB_PTR_RUN;
    default: /* FREE: a page start there is most likely a page run freed before */
        return off == 0 ? RSB_PTR_FREED : RSB_PTR_INTERIOR;
    }
}

void rsb_bad_pointer(rsb_ptr_kind k, rsb_op op, const void *p) {
    static const char *const msg[3][3] = {
        /* FOREIGN, INTERIOR, FREED */
        {"free of a pointer it never returned", "free of a pointer inside a block, not its start", "double free"},
        {"realloc of a pointer it never returned", "realloc of a pointer inside a block, not its start",
         "realloc of a freed pointer"},
        {"usable size of a pointer it never returned", "usable size of a pointer inside a block, not its start",
         "usable size of a freed pointer"},
    };
    RSB_ASSERT(k <= RSB_PTR_FREED && op <= RSB_OP_USABLE_SIZE);
    rsb_fatal_pointer(msg[op][k], p);
}

/* Junk filling of a freed page run (RSBMALLOC_JUNK), then keep it as a spare
 * or give it back.  A spare already is a double free. */
static void run_free(rsb_allocator *a, rsb_span *s) {
    if (unlikely(a->junk)) rsb_memset(rsb_span_start(s), RSB_JUNK_FREE, (size_t)s->npages << RSB_PAGE_SHIFT);
    rsb_lock_acquire(&a->pages.lock);
    bool ok = rsb_run_free(&a->pages, s);
    rsb_lock_release(&a->pages.lock);
    if (!ok) rsb_fatal_pointer("double free", rsb_span_start(s));
}

/* Called from the inline free with p rather than its descriptor, which is
 * looked up again here: passing the descriptor costs the malloc(32)+free
 * fast path two more instructions (callgrind) for a call it never makes. */
void rsb_run_free_at(void *p, rsb_chunk *ch, rsb_allocator *a) { run_free(a, rsb_span_guess(ch, p)); }

void rsb_free_checked(rsb_allocator *a, void **b) {
    rsb_span *s = rsb_span_guess(rsb_pages_chunk_of(&a->pages, b), b);
    if (unlikely(a->junk)) { /* the double-free marker stays */
        void *mark = b[1];
        rsb_memset(b, RSB_JUNK_FREE, rsb_slab_block(s));
        b[1] = mark;
    }
    rsb_cache_free(a, rsb_cache_of_thread(a), s, b);
}

void rsb_free_slow(void *p, rsb_allocator *a) {
    if (!p) return;
    rsb_ptr_info info;
    rsb_ptr_kind k = rsb_classify(a, p, &info);
    switch (k) {
    case RSB_PTR_HUGE:
        rsb_huge_free(&a->pages, info.huge);
        return;
    case RSB_PTR_RUN:
        run_free(a, info.span);
        return;
    case RSB_PTR_SMALL: /* a check of the inline path failed only under a race: free it here */
        ((void **)p)[1] = (void *)rsb_free_mark(a, p);
        rsb_cache_free(a, rsb_cache_of_thread(a), info.span, (void **)p);
        return;
    default:
        rsb_bad_pointer(k, RSB_OP_FREE, p);
    }
}

size_t rsb_core_usable_size(rsb_allocator *a, const void *p) {
    rsb_ptr_info info;
    rsb_ptr_kind k = rsb_classify(a, p, &info);
    if (k < RSB_PTR_SMALL) rsb_bad_pointer(k, RSB_OP_USABLE_SIZE, p);
    return info.usable;
}
