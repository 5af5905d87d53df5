/*
 * Allocation and free through an allocator's shared caches: the paths every
 * build has (the hosted library puts a thread cache in front, src/entry.h;
 * a freestanding heap calls these directly, src/heap.c), and the one
 * classification of a pointer.
 *
 * Budget of the inline paths: malloc of a small class = hash, lock, pop,
 * unlock (no loop, no system call); free = registry and descriptor lookup,
 * three checks (a live slab, a block start, not already free), hash, lock,
 * push, unlock.  Everything else is out of line (alloc.c, free.c).
 *
 * Core functions return NULL on failure and never touch errno: argument
 * rules and errno belong to interpose/.
 */
#ifndef RSB_ALLOC_H
#define RSB_ALLOC_H

#include "cache.h"
#include "page/huge.h"

/* --- allocation ------------------------------------------------------------ */

RSB_INLINE void *rsb_small_alloc(rsb_allocator *a, unsigned cls) {
    return rsb_cache_alloc(a, rsb_cache_of_thread(a), cls);
}

/* A block above the small classes: a page run or a huge block.  align is a
 * power of two (0 for the default); *zero tells whether it is all zero. */
void *rsb_big_alloc(rsb_allocator *a, size_t size, size_t align, bool *zero);

RSB_INLINE void *rsb_core_malloc(rsb_allocator *a, size_t size) {
    if (likely(size <= RSB_SMALL_MAX)) return rsb_small_alloc(a, rsb_size_class(size));
    bool zero;
    return rsb_big_alloc(a, size, 0, &zero);
}

void *rsb_core_calloc(rsb_allocator *a, size_t size);
/* align a power of two. */
void *rsb_core_memalign(rsb_allocator *a, size_t align, size_t size);
/* p a live block, size > 0: grow or shrink in place when possible, else
 * move.  NULL (p intact) if out of memory; aborts on a bad pointer. */
void *rsb_core_realloc(rsb_allocator *a, void *p, size_t size);
/* Usable size of live block p; aborts on a pointer that is not one. */
size_t rsb_core_usable_size(rsb_allocator *a, const void *p);
/* Drain remote frees, give empty slabs and every free page back. */
bool rsb_core_trim(rsb_allocator *a);

/* --- what a pointer is ------------------------------------------------------ */

typedef enum rsb_ptr_kind {
    RSB_PTR_FOREIGN = 0, /* not in memory this allocator manages */
    RSB_PTR_INTERIOR,    /* in our memory, but not the start of a live block */
    RSB_PTR_FREED,       /* the start of a block that is free: a double free */
    RSB_PTR_SMALL,       /* a live block of a slab (span) */
    RSB_PTR_RUN,         /* a live page run (span) */
    RSB_PTR_HUGE,        /* a live huge block (huge) */
} rsb_ptr_kind;

typedef struct rsb_ptr_info {
    rsb_span *span;              /* SMALL, RUN */
    rsb_huge *huge;              /* HUGE */
    size_t usable;               /* SMALL, RUN, HUGE: bytes from p to the block's end */
} rsb_ptr_info;

/* Classify p with the fully validated lookup (never reads outside our
 * metadata and p's own block).  A small block is FREED when it carries the
 * double-free marker; it is not checked against the slab's carved area
 * (that would read the owner's counters without its lock). */
rsb_ptr_kind rsb_classify(const rsb_allocator *a, const void *p, rsb_ptr_info *out);
/* Abort with the message a bad pointer of kind k (FOREIGN, INTERIOR or
 * FREED) deserves in operation op. */
typedef enum rsb_op { RSB_OP_FREE, RSB_OP_REALLOC, RSB_OP_USABLE_SIZE } rsb_op;
void rsb_bad_pointer(rsb_ptr_kind k, rsb_op op, const void *p) __attribute__((noreturn, cold));

/* --- free ---------------------------------------------------------------------- */

/* Everything the inline free does not finish: NULL, foreign pointers, page
 * runs and huge blocks, and slab frees that fail a check (diagnosed here).
 * p comes first so that the inline path can jump here with p where free
 * received it. */
void rsb_free_slow(void *p, rsb_allocator *a);
/* Free of page run p, whose head page in chunk ch holds a live RUN descriptor. */
void rsb_run_free_at(void *p, rsb_chunk *ch, rsb_allocator *a);

/* Block b of a slab passed rsb_free_begin (checked, marked): to the
 * calling thread's shared cache (junk-filled first with RSBMALLOC_JUNK). */
void rsb_free_checked(rsb_allocator *a, void **b);

/* The marker a free block carries in its second word. */
RSB_INLINE uintptr_t rsb_free_mark(const rsb_allocator *a, const void *p) { return (uintptr_t)a->key ^ (uintptr_t)p; }

/* free, first half: find p's page from the address and check that p is the
 * start of a block of a live slab that is not already free; write the
 * double-free marker.  Returns the page's view (rsb_page_view: kind, cls,
 * owner and start of the slab; rsb_view_head for the slab itself) and the
 * class in *cls_out, or NULL
 * when p took the slow path (which has finished the free or aborted). */
/* With the out-of-line paths given: the process-wide free (entry.h) puts
 * the heap profiler in front of the page-run and slow frees; the others
 * pass rsb_run_free_at and rsb_free_slow (rsb_free_begin). */
RSB_INLINE const rsb_span *rsb_free_begin_with(rsb_allocator *a, void *p, unsigned *cls_out,
                                               void (*run_free)(void *, rsb_chunk *, rsb_allocator *),
                                               void (*slow)(void *, rsb_allocator *)) {
    rsb_chunk *ch = rsb_pages_chunk_of(&a->pages, p);
    if (unlikely(!ch)) goto slow;
    const rsb_span *d = rsb_page_view(ch, p);
    uintptr_t off = (uintptr_t)p - (uintptr_t)rsb_span_start(d);
    unsigned cls = d->cls;
    if (unlikely(d->kind != RSB_SPAN_SLAB)) {
        /* A page run: p names its head page, so d is its live descriptor. */
        if (d->kind == RSB_SPAN_RUN && off == 0) {
            run_free(p, ch, a);
            return NULL;
        }
        goto slow;
    }
    if (unlikely(!rsb_class_divides(cls, off))) goto slow;
    uintptr_t mark = rsb_free_mark(a, p);
    if (unlikely((uintptr_t)((void **)p)[1] == mark)) goto slow;
    ((void **)p)[1] = (void *)mark;
    *cls_out = cls; /* read before the store above, which may alias it */
    return d;
slow:
    slow(p, a);
    return NULL;
}

RSB_INLINE const rsb_span *rsb_free_begin(rsb_allocator *a, void *p, unsigned *cls_out) {
    return rsb_free_begin_with(a, p, cls_out, rsb_run_free_at, rsb_free_slow);
}
RSB_INLINE void rsb_core_free(rsb_allocator *a, void *p) {
    unsigned cls;
    const rsb_span *d = rsb_free_begin(a, p, &cls);
    if (likely(d != NULL)) rsb_cache_free(a, rsb_cache_of_thread(a), rsb_view_head(d), (void **)p);
}

#endif
