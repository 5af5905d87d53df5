/* Slabs: see slab.h. */
#include "slab.h"

/* bump at its largest: rsb_slab_exhausted holds, carving never starts. */
rsb_span rsb_empty_span = {.u.s.bump = (rsb_nblk)-1};

void rsb_slab_init(rsb_span *s, unsigned cls, uint32_t owner) {
    RSB_ASSERT(s->kind == RSB_SPAN_SLAB && cls < RSB_NUM_CLASSES);
    rsb_slab_set_class(s, cls, owner, rsb_class_size[cls], rsb_class_blocks[cls]);
    s->flags = 0;
    rsb_slab_set_head_in(s, rsb_span_start(s), NULL);
    s->u.s.used = 0;
    s->u.s.bump = 0;
}

void rsb_slab_carve(uint64_t key, rsb_span *s) {
    uint32_t block = rsb_slab_block(s);
    uint32_t n = rsb_slab_capacity(s) - s->u.s.bump;
    uint32_t batch = block >= RSB_CARVE_BYTES ? 1 : RSB_CARVE_BYTES / block;
    RSB_ASSERT(s->u.s.bump < rsb_slab_capacity(s));
    if (n > batch) n = batch;
    char *start = rsb_span_start(s);
    char *p = start + (size_t)s->u.s.bump * block;
    for (uint32_t i = 0; i + 1 < n; i++)
        rsb_link_set(key, (void **)(void *)(p + (size_t)i * block), p + (size_t)(i + 1) * block);
    rsb_link_set(key, (void **)(void *)(p + (size_t)(n - 1) * block), rsb_slab_head_in(s, start));
    rsb_slab_set_head_in(s, start, p);
    s->u.s.bump = (rsb_nblk)(s->u.s.bump + n);
}

uint32_t rsb_slab_carve_list(uint64_t key, rsb_span *s, uint32_t n, void **list) {
    uint32_t cap = rsb_slab_capacity(s), bump = s->u.s.bump;
    if (bump >= cap) return 0;
    uint32_t m = cap - bump < n ? cap - bump : n;
    uint32_t block = rsb_slab_block(s);
    char *p = rsb_span_start(s) + (size_t)bump * block;
    for (uint32_t i = m; i-- > 0;) {
        void **x = (void **)(void *)(p + (size_t)i * block);
        rsb_link_set(key, x, *list);
        *list = x;
    }
    s->u.s.bump = (rsb_nblk)(bump + m);
    s->u.s.used = (rsb_nblk)(s->u.s.used + m);
    return m;
}

void rsb_slab_check(uint64_t key, const rsb_span *s) {
    RSB_CHECK(s->kind == RSB_SPAN_SLAB, "a bin holds a span that is not a slab");
    uint32_t block = rsb_slab_block(s), cap = rsb_slab_capacity(s), nfree = 0;
    char *start = rsb_span_start(s);
    RSB_CHECK(s->u.s.bump <= cap && s->u.s.used <= s->u.s.bump, "slab counts out of range");
    for (void **b = (void **)rsb_slab_head_in(s, start); b; b = (void **)rsb_link_get(key, s, start, b)) {
        uintptr_t off = (uintptr_t)b - (uintptr_t)start;
        RSB_CHECK(off % block == 0 && off / block < s->u.s.bump, "free block outside the carved area");
        RSB_CHECK(++nfree <= cap, "free list cycle");
    }
    RSB_CHECK(s->u.s.used + nfree == s->u.s.bump, "slab block count mismatch");
}
