/*
 * The good-fit allocator's out-of-line parts: set-up, aligned allocation,
 * in-place resizing, and the invariant check.  Layout and invariants:
 * fit.h.
 */
#include "fit.h"

#ifdef RSB_FIT_SOFT_BITSCAN
const uint8_t rsb_fit_debruijn_log2[32] = {0,  9,  1,  10, 13, 21, 2,  29, 11, 14, 16, 18, 22, 25, 3, 30,
                                           8,  12, 20, 28, 15, 17, 24, 7,  19, 27, 23, 6,  26, 5,  4, 31};
const uint8_t rsb_fit_debruijn_ctz[32] = {0,  1,  28, 2,  29, 14, 24, 3, 30, 22, 20, 15, 25, 17, 4,  8,
                                          31, 27, 13, 23, 21, 19, 16, 7, 26, 12, 18, 6,  11, 5,  10, 9};
#endif

static uint32_t fit_levels(size_t pool_bytes) {
    uint32_t s = pool_bytes > RSB_FIT_MAX_POOL ? RSB_FIT_MAX_POOL : (uint32_t)pool_bytes;
    return (rsb_fit_index(s < RSB_FIT_MIN ? RSB_FIT_MIN : s) >> RSB_FIT_SL_LOG2) + 1;
}

size_t rsb_fit_meta_size(size_t pool_bytes) {
    uint32_t nfl = fit_levels(pool_bytes);
    return ((size_t)nfl + 1) * sizeof(uint32_t) + (size_t)nfl * RSB_FIT_SL * sizeof(uint32_t);
}

size_t rsb_fit_init(rsb_fit *f, void *meta, char *first, size_t bytes, uint32_t key) {
    RSB_ASSERT(((uintptr_t)first & 15) == 8 && (bytes & 15) == 8 && bytes >= RSB_FIT_MIN + 8 &&
               bytes - 8 <= RSB_FIT_MAX_POOL - 16);
    f->base = first - 16;
    f->key = key;
    f->nfl = fit_levels(bytes);
    f->sl_map = (uint32_t *)meta;
    f->heads = f->sl_map + f->nfl + 1;
    rsb_memset(meta, 0, rsb_fit_meta_size(bytes));
    f->fl_map = 0;
    /* One free block, then the sentinel (8 bytes: a header with no payload). */
    uint32_t s = (uint32_t)bytes - 8;
    f->end = 16 + s;
    rsb_fit_set(f, rsb_fit_at(f, f->end), f->end, RSB_FIT_PREV_FREE);
    rsb_fit_set(f, rsb_fit_at(f, 16), 16, s | RSB_FIT_FREE);
    *rsb_fit_footer(f, 16 + s) = s;
    rsb_fit_insert(f, 16, s);
    return s - RSB_FIT_HDR;
}

/* The gap from payload address p up to the next address aligned to align
 * that leaves room for a free block before it: 0, or at least RSB_FIT_MIN. */
static inline uint32_t align_gap(uintptr_t p, size_t align) {
    uint32_t g = (uint32_t)((align - (p & (align - 1))) & (align - 1));
    if (g && g < RSB_FIT_MIN) g += (uint32_t)align;
    return g;
}

void *rsb_fit_alloc_aligned(rsb_fit *f, size_t align, size_t n) {
    uint32_t s = rsb_fit_size_for(n);
    /* The block an unaligned request would get may already do (the common
     * case on a heap that is not fragmented); otherwise ask for enough to
     * cut the worst gap off its front. */
    unsigned i = rsb_fit_index(s);
    uint32_t o = f->heads[i];
    int j = (int)i;
    if (!o || rsb_fit_at(f, o)->word < s) {
        j = rsb_fit_find(f, i + 1);
        if (j < 0) return NULL;
        o = f->heads[j];
    }
    uint32_t have = rsb_fit_at(f, o)->word & ~RSB_FIT_FLAGS;
    uint32_t gap = align_gap((uintptr_t)(f->base + o + RSB_FIT_HDR), align);
    if (have < s + gap) {
        if (align > RSB_FIT_MAX_POOL - 16 - s) return NULL;
        uint32_t want = s + (uint32_t)align + 16;
        unsigned k = rsb_fit_index(want);
        o = f->heads[k];
        if (o && rsb_fit_at(f, o)->word >= want) {
            j = (int)k;
        } else {
            j = rsb_fit_find(f, k + 1);
            if (j < 0) return NULL;
            o = f->heads[j];
        }
        have = rsb_fit_at(f, o)->word & ~RSB_FIT_FLAGS;
        gap = align_gap((uintptr_t)(f->base + o + RSB_FIT_HDR), align);
        RSB_ASSERT(have >= s + gap);
    }
    rsb_fit_unlink(f, o, have);
    uint32_t prev_free = 0;
    if (gap) { /* the gap becomes a free block of its own (its neighbour before is live) */
        rsb_fit_set(f, rsb_fit_at(f, o), o, gap | RSB_FIT_FREE);
        *rsb_fit_footer(f, o + gap) = gap;
        rsb_fit_insert(f, o, gap);
        o += gap;
        have -= gap;
        prev_free = RSB_FIT_PREV_FREE;
    }
    return rsb_fit_carve(f, o, have, s, prev_free);
}

void *rsb_fit_alloc_tail(rsb_fit *f, size_t n) {
    uint32_t s = rsb_fit_size_for(n);
    unsigned i = rsb_fit_index(s);
    uint32_t o = f->heads[i];
    if (!o || rsb_fit_at(f, o)->word < s) {
        int j = rsb_fit_find(f, i + 1);
        if (j < 0) return NULL;
        o = f->heads[j];
    }
    rsb_fit_block *b = rsb_fit_at(f, o);
    uint32_t have = b->word & ~RSB_FIT_FLAGS, rest = have - s;
    if (rest < RSB_FIT_MIN) {
        rsb_fit_unlink(f, o, have);
        return rsb_fit_carve(f, o, have, have, 0);
    }
    rsb_fit_resize_free(f, o, have, rest); /* the free block keeps its place, shorter */
    uint32_t q = o + rest;
    rsb_fit_flip(rsb_fit_at(f, o + have), RSB_FIT_PREV_FREE);
    rsb_fit_set(f, rsb_fit_at(f, q), q, s | RSB_FIT_PREV_FREE);
    return f->base + q + RSB_FIT_HDR;
}

bool rsb_fit_resize(rsb_fit *f, void *p, size_t n) {
    uint32_t o = rsb_fit_off(f, p) - RSB_FIT_HDR;
    rsb_fit_block *b = rsb_fit_at(f, o);
    uint32_t word = b->word, have = word & ~RSB_FIT_FLAGS, s = rsb_fit_size_for(n);
    uint32_t nx = o + have;
    rsb_fit_block *nb = rsb_fit_at(f, nx);
    uint32_t next_free = nb->word & RSB_FIT_FREE ? nb->word & ~RSB_FIT_FLAGS : 0;
    if (s <= have) {
        uint32_t rest = have - s;
        if (rest == 0 || rest + next_free < RSB_FIT_MIN) return true; /* nothing worth giving back */
        if (next_free) { /* the tail joins the free block after it */
            rsb_fit_unlink(f, nx, next_free);
            nb->check ^= RSB_FIT_DEAD;
        } else {
            rsb_fit_flip(nb, RSB_FIT_PREV_FREE);
        }
        rest += next_free;
        uint32_t r = o + s;
        rsb_fit_set(f, rsb_fit_at(f, r), r, rest | RSB_FIT_FREE);
        *rsb_fit_footer(f, r + rest) = rest;
        rsb_fit_insert(f, r, rest);
        rsb_fit_set(f, b, o, s | (word & RSB_FIT_PREV_FREE));
        return true;
    }
    if (!next_free || have + next_free < s) return false;
    rsb_fit_unlink(f, nx, next_free);
    nb->check ^= RSB_FIT_DEAD;
    rsb_fit_carve(f, o, have + next_free, s, word & RSB_FIT_PREV_FREE);
    return true;
}

size_t rsb_fit_largest(const rsb_fit *f) {
    if (!f->fl_map) return 0;
    unsigned fl = rsb_fit_log2(f->fl_map);
    unsigned i = (fl << RSB_FIT_SL_LOG2) | rsb_fit_log2(f->sl_map[fl]);
    uint32_t best = 0;
    for (uint32_t o = f->heads[i]; o; o = rsb_fit_at(f, o)->next) {
        uint32_t s = rsb_fit_at(f, o)->word & ~RSB_FIT_FLAGS;
        if (s > best) best = s;
    }
    return best - RSB_FIT_HDR;
}

size_t rsb_fit_free_bytes(const rsb_fit *f) {
    size_t n = 0;
    for (unsigned i = 0; i < f->nfl * RSB_FIT_SL; i++)
        for (uint32_t o = f->heads[i]; o; o = rsb_fit_at(f, o)->next) n += rsb_fit_at(f, o)->word & ~RSB_FIT_FLAGS;
    return n;
}

size_t rsb_fit_check(const rsb_fit *f, void (*visit)(void *ctx, char *payload, uint32_t word), void *ctx) {
    size_t live = 0, nfree = 0, free_bytes = 0;
    bool prev_free = false;
    uint32_t o = 16;
    RSB_CHECK(f->end > 16 && f->nfl <= RSB_FIT_FL_MAX, "fit: pool bounds");
    while (o < f->end) {
        const rsb_fit_block *b = rsb_fit_at(f, o);
        uint32_t s = b->word & ~RSB_FIT_FLAGS;
        RSB_CHECK(b->check == rsb_fit_check_of(f, o, b->word), "fit: header check");
        RSB_CHECK(s >= RSB_FIT_MIN && (s & 15) == 0 && s <= f->end - o, "fit: block size");
        RSB_CHECK(!(b->word & RSB_FIT_PREV_FREE) == !prev_free, "fit: PREV_FREE bit");
        if (b->word & RSB_FIT_FREE) {
            RSB_CHECK(!prev_free, "fit: two free blocks side by side");
            RSB_CHECK(!(b->word & RSB_FIT_TAG), "fit: a free block is tagged");
            RSB_CHECK(*rsb_fit_footer(f, o + s) == s, "fit: footer");
            nfree++;
            free_bytes += s;
        } else {
            live++;
            if (visit) visit(ctx, f->base + o + RSB_FIT_HDR, b->word);
        }
        prev_free = (b->word & RSB_FIT_FREE) != 0;
        o += s;
    }
    RSB_CHECK(o == f->end, "fit: blocks do not tile the pool");
    const rsb_fit_block *e = rsb_fit_at(f, f->end);
    RSB_CHECK(e->check == rsb_fit_check_of(f, f->end, e->word) && (e->word & ~RSB_FIT_PREV_FREE) == 0,
              "fit: end sentinel");
    RSB_CHECK(!(e->word & RSB_FIT_PREV_FREE) == !prev_free, "fit: sentinel PREV_FREE bit");
    size_t listed = 0, listed_bytes = 0;
    for (unsigned fl = 0; fl <= f->nfl; fl++) {
        uint32_t m = 0;
        for (unsigned sl = 0; fl < f->nfl && sl < RSB_FIT_SL; sl++) {
            unsigned i = (fl << RSB_FIT_SL_LOG2) | sl;
            uint32_t prev = 0;
            for (uint32_t q = f->heads[i]; q; prev = q, q = rsb_fit_at(f, q)->next) {
                const rsb_fit_block *b = rsb_fit_at(f, q);
                RSB_CHECK(q >= 16 && q < f->end && (q & 15) == 0, "fit: list link out of the pool");
                RSB_CHECK(b->check == rsb_fit_check_of(f, q, b->word) && (b->word & RSB_FIT_FREE),
                          "fit: a listed block is not free");
                RSB_CHECK(rsb_fit_index(b->word & ~RSB_FIT_FLAGS) == i && b->list == i, "fit: block on the wrong list");
                RSB_CHECK(b->prev == prev, "fit: prev link");
                RSB_CHECK(++listed <= nfree, "fit: a list is longer than the free blocks (cycle)");
                listed_bytes += b->word & ~RSB_FIT_FLAGS;
            }
            if (f->heads[i]) m |= 1u << sl;
        }
        RSB_CHECK(f->sl_map[fl] == m, "fit: second-level bitmap");
        RSB_CHECK(!(f->fl_map & (1u << fl)) == !m, "fit: first-level bitmap");
    }
    RSB_CHECK(listed == nfree && listed_bytes == free_bytes, "fit: a free block is on no list");
    return live;
}
