/* Slabs: see slab.h. */
#include "slab.h"

#include "os/os.h"

/* bump at its largest: rsb_slab_exhausted holds, carving never starts. */
rsb_span rsb_empty_span = {.u.s.bump = (rsb_nblk)-1};

void rsb_slab_init(rsb_span *s, unsigned cls, uint32_t owner) {
    RSB_ASSERT(s->kind == RSB_SPAN_SLAB && cls < RSB_NUM_CLASSES);
    rsb_slab_set_class(s, cls, owner, rsb_class_size[cls], rsb_class_blocks[cls]);
    s->flags = 0;
    rsb_slab_set_head_in(s, rsb_span_start(s), NULL);
    s->u.s.used = 0;
    s->u.s.bump = 0;
    rsb_slab_set_parked(s, 0);
    for (uint32_t i = 0; i < s->npages; i++) rsb_slab_set_purged(s, i, 0);
}

/* The most blocks a scrub handles (two bitmaps of this many bits on the
 * stack): the 16-byte class's one-page slab. */
#define RSB_SCRUB_MAX_BLOCKS 4096

/* OS pages per allocator page, and whether slab pages can be scrubbed. */
static uint32_t os_per_page(void) { return rsb_os_page < RSB_PAGE_SIZE ? (uint32_t)(RSB_PAGE_SIZE / rsb_os_page) : 0; }

/* Is OS page g (counted from the slab's start) marked purged? */
static bool purged_at(const rsb_span *s, uint32_t g, uint32_t per) {
    return (rsb_slab_purged(s, g / per) >> (g % per)) & 1;
}

size_t rsb_slab_scrub(uint64_t key, rsb_span *s) {
    uint32_t per = os_per_page();
    uint32_t block = rsb_slab_block(s), bump = s->u.s.bump;
    uint32_t nfree = bump - s->u.s.used - rsb_slab_parked(s);
    if (!per || !rsb_slab_has_free(s) || (size_t)nfree * block < 2 * rsb_os_page || bump > RSB_SCRUB_MAX_BLOCKS)
        return 0;
    /* Which blocks are free (the slab's own list; blocks in thread caches
     * and transfer slots count as used and keep their pages). */
    uint64_t map[RSB_SCRUB_MAX_BLOCKS / 64];
    uint32_t words = (bump + 63) / 64;
    for (uint32_t w = 0; w < words; w++) map[w] = 0;
    char *start = rsb_span_start(s);
    for (void **b = (void **)rsb_slab_head_in(s, start); b; b = (void **)rsb_link_get(key, s, start, b)) {
        uint32_t i = rsb_class_index(s->cls, (uintptr_t)((char *)b - start));
        map[i / 64] |= (uint64_t)1 << (i % 64);
    }
    /* An OS page goes when every block that touches it is free; the blocks
     * touching one that goes are parked. */
    size_t osp = rsb_os_page, carved = (size_t)bump * block, given = 0;
    uint32_t npg = (uint32_t)((carved + osp - 1) / osp);
    uint64_t park[RSB_SCRUB_MAX_BLOCKS / 64];
    for (uint32_t w = 0; w < words; w++) park[w] = 0;
    bool any = false;
    for (uint32_t g = 0; g < npg; g++) {
        if (purged_at(s, g, per)) continue;
        uint32_t lo = (uint32_t)(g * osp / block), hi = (uint32_t)(((g + 1) * osp - 1) / block);
        if (hi >= bump) hi = bump - 1; /* past it: never carved (carving unparks first) */
        bool all = true;
        for (uint32_t i = lo; i <= hi && all; i++) all = (map[i / 64] >> (i % 64)) & 1;
        if (!all) continue;
        for (uint32_t i = lo; i <= hi; i++) park[i / 64] |= (uint64_t)1 << (i % 64);
        rsb_slab_set_purged(s, g / per, rsb_slab_purged(s, g / per) | 1u << (g % per));
        any = true;
    }
    if (!any) return 0;
    /* The free list without the parked blocks (in address order). */
    void *list = NULL;
    uint32_t parked = 0;
    for (uint32_t i = bump; i-- > 0;) {
        uint64_t bit = (uint64_t)1 << (i % 64);
        if (!(map[i / 64] & bit)) continue;
        if (park[i / 64] & bit) {
            parked++;
            continue;
        }
        void **b = (void **)(void *)(start + (size_t)i * block);
        rsb_link_set(key, b, list);
        list = b;
    }
    rsb_slab_set_head_in(s, start, list);
    rsb_slab_set_parked(s, rsb_slab_parked(s) + parked);
    /* Hand the pages to the OS, in runs. */
    for (uint32_t g = 0; g < npg;) {
        if (!purged_at(s, g, per)) {
            g++;
            continue;
        }
        uint32_t e = g;
        while (e < npg && purged_at(s, e, per)) e++;
        if (rsb_os_purge(start + (size_t)g * osp, (size_t)(e - g) * osp)) given += (size_t)(e - g) * osp;
        g = e;
    }
    return given;
}

void rsb_slab_unpark(uint64_t key, rsb_span *s) {
    uint32_t per = os_per_page();
    if (!per || !rsb_slab_parked(s)) return;
    uint32_t block = rsb_slab_block(s), bump = s->u.s.bump;
    size_t osp = rsb_os_page;
    char *start = rsb_span_start(s);
    void *list = rsb_slab_head_in(s, start);
    for (uint32_t i = bump; i-- > 0;) { /* every block that touches a purged page was parked */
        size_t lo = (size_t)i * block, hi = lo + block - 1;
        bool on = false;
        for (size_t g = lo / osp; g <= hi / osp && !on; g++) on = purged_at(s, (uint32_t)g, per);
        if (!on) continue;
        void **b = (void **)(void *)(start + lo);
        rsb_link_set(key, b, list);
        list = b;
    }
    rsb_slab_set_head_in(s, start, list);
    rsb_slab_set_parked(s, 0);
    for (uint32_t i = 0; i < s->npages; i++) rsb_slab_set_purged(s, i, 0);
}

void rsb_slab_carve(uint64_t key, rsb_span *s) {
    uint32_t block = rsb_slab_block(s);
    uint32_t n = rsb_slab_capacity(s) - s->u.s.bump;
    uint32_t batch = block >= RSB_CARVE_BYTES ? 1 : RSB_CARVE_BYTES / block;
    RSB_ASSERT(s->u.s.bump < rsb_slab_capacity(s) && rsb_slab_parked(s) == 0); /* unpark first */
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
    RSB_ASSERT(rsb_slab_parked(s) == 0); /* unpark first: carving past parked blocks would count them twice */
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
    RSB_CHECK(s->u.s.bump <= cap && s->u.s.used + rsb_slab_parked(s) <= s->u.s.bump, "slab counts out of range");
    for (void **b = (void **)rsb_slab_head_in(s, start); b; b = (void **)rsb_link_get(key, s, start, b)) {
        uintptr_t off = (uintptr_t)b - (uintptr_t)start;
        RSB_CHECK(off % block == 0 && off / block < s->u.s.bump, "free block outside the carved area");
        RSB_CHECK(++nfree <= cap, "free list cycle");
    }
    RSB_CHECK(s->u.s.used + nfree + rsb_slab_parked(s) == s->u.s.bump, "slab block count mismatch");
}
