/*
 * Unit tests of the good-fit allocator alone (src/fit/fit.[ch]), below the
 * heap: random allocations, aligned allocations, frees and in-place resizes
 * against a model of every live block, with rsb_fit_check() (every block,
 * list and bitmap) after every operation; the list index of every size
 * against a slow reference; the bit scans against the compiler's builtins.
 *
 * Built twice (freestanding/meson.build): as is, and with
 * -DRSB_FIT_FORCE_SOFT_BITSCAN, the de Bruijn bit scans a target without
 * clz/ctz (rv32imac) uses.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fit/fit.h"

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* A pool of `bytes` in a fresh buffer; returns the usable size of its one
 * free block. */
static size_t make_pool(rsb_fit *f, size_t bytes, void **buf) {
    size_t meta = rsb_fit_meta_size(bytes);
    unsigned char *m = NULL;
    cr_assert(posix_memalign((void **)&m, 64, meta + bytes + 64) == 0);
    *buf = m;
    return rsb_fit_init(f, m, (char *)m + ((meta + 15) & ~(size_t)15) + 24, (bytes & ~(size_t)15) + 8,
                        0x9e3779b9u);
}

/* The list index by its definition: 16-byte steps below 2^(LINEAR + 1),
 * then RSB_FIT_SL equal steps per power of two. */
static unsigned slow_index(uint32_t s) {
    if (s < (2u << RSB_FIT_LINEAR)) return s / 16;
    unsigned l = 0;
    while ((s >> l) > 1) l++;
    unsigned fl = l - RSB_FIT_LINEAR + 1, step = 1u << (l - RSB_FIT_SL_LOG2);
    return fl * RSB_FIT_SL + (s - (1u << l)) / step;
}

Test(fit, bit_scans_and_list_index) {
    for (uint32_t i = 0; i < 32; i++) {
        uint32_t v = 1u << i;
        cr_assert_eq(rsb_fit_log2(v), i);
        cr_assert_eq(rsb_fit_ctz(v), i);
        cr_assert_eq(rsb_fit_log2(v | (v - 1)), i);
        cr_assert_eq(rsb_fit_ctz(v | (v << 1) | 0x80000000u), i);
    }
    for (int k = 0; k < 200000; k++) {
        uint32_t v = (uint32_t)rnd() >> (rnd() % 32);
        if (!v) continue;
        cr_assert_eq(rsb_fit_log2(v), 31u - (unsigned)__builtin_clz(v), "log2(%u)", v);
        cr_assert_eq(rsb_fit_ctz(v), (unsigned)__builtin_ctz(v), "ctz(%u)", v);
    }
    for (uint32_t s = 32; s < (1u << 20); s += 16) cr_assert_eq(rsb_fit_index(s), slow_index(s), "index(%u)", s);
    for (uint32_t s = 1u << 20; s < 0xfff00000u; s += (s >> 7) & ~15u)
        cr_assert_eq(rsb_fit_index(s), slow_index(s), "index(%u)", s);
}

struct blk {
    unsigned char *p;
    size_t n;
    unsigned char fill;
};

static void check_blocks(const struct blk *b, unsigned n) {
    for (unsigned i = 0; i < n; i++)
        for (size_t k = 0; k < b[i].n; k++)
            cr_assert_eq(b[i].p[k], b[i].fill, "block %u (%p, %zu) byte %zu", i, (void *)b[i].p, b[i].n, k);
}

Test(fit, random_against_model_checked_after_every_operation) {
    rsb_fit f;
    void *buf;
    size_t cap = make_pool(&f, 1 << 20, &buf);
    enum { SLOTS = 300 };
    struct blk b[SLOTS];
    unsigned n = 0;
    for (int it = 0; it < 40000; it++) {
        unsigned op = (unsigned)(rnd() % 10);
        if ((op < 5 || n == 0) && n < SLOTS) {
            size_t sz = rnd() % 8 ? rnd() % 2000 : rnd() % 60000;
            size_t align = op == 4 ? (size_t)32 << (rnd() % 8) : 0;
            unsigned char *p = align ? rsb_fit_alloc_aligned(&f, align, sz) : rsb_fit_alloc(&f, sz);
            if (!p) continue;
            cr_assert(((uintptr_t)p & 15) == 0 && (!align || ((uintptr_t)p & (align - 1)) == 0));
            rsb_fit_block *h = (rsb_fit_block *)(void *)(p - RSB_FIT_HDR);
            cr_assert_geq((h->word & ~RSB_FIT_FLAGS) - RSB_FIT_HDR, sz);
            b[n] = (struct blk){p, sz, (unsigned char)rnd()};
            memset(p, b[n].fill, sz);
            n++;
        } else if (op < 8) {
            unsigned k = (unsigned)(rnd() % n);
            rsb_fit_release(&f, rsb_fit_off(&f, b[k].p) - RSB_FIT_HDR);
            b[k] = b[--n];
        } else {
            unsigned k = (unsigned)(rnd() % n);
            size_t sz = rnd() % 3000;
            if (rsb_fit_resize(&f, b[k].p, sz)) {
                size_t keep = sz < b[k].n ? sz : b[k].n;
                for (size_t i = 0; i < keep; i++) cr_assert_eq(b[k].p[i], b[k].fill);
                b[k].n = sz;
                memset(b[k].p, b[k].fill, sz);
            }
        }
        cr_assert_eq(rsb_fit_check(&f, NULL, NULL), n);
        if (it % 4096 == 0) check_blocks(b, n);
    }
    check_blocks(b, n);
    while (n) rsb_fit_release(&f, rsb_fit_off(&f, b[--n].p) - RSB_FIT_HDR);
    cr_assert_eq(rsb_fit_check(&f, NULL, NULL), 0);
    cr_assert_eq(rsb_fit_largest(&f), cap, "one free block again");
    cr_assert_eq(rsb_fit_free_bytes(&f), cap + RSB_FIT_HDR);
    free(buf);
}

/* The tail variant (the heap's slabs) leaves the rest in front. */
Test(fit, alloc_tail_and_exhaustion) {
    rsb_fit f;
    void *buf;
    size_t cap = make_pool(&f, 256 << 10, &buf);
    char *a = rsb_fit_alloc(&f, 1000), *t = rsb_fit_alloc_tail(&f, 5000);
    cr_assert(a && t && t > a + 100000, "the tail block is at the high end");
    rsb_fit_check(&f, NULL, NULL);
    size_t n = 0;
    void *v[4096];
    while ((v[n] = rsb_fit_alloc(&f, 100)) != NULL) n++;
    cr_assert_null(rsb_fit_alloc_aligned(&f, 1024, 10));
    cr_assert_lt(rsb_fit_largest(&f) + 1, 112 + 1, "nothing of 100 bytes is left");
    rsb_fit_check(&f, NULL, NULL);
    while (n) rsb_fit_release(&f, rsb_fit_off(&f, v[--n]) - RSB_FIT_HDR);
    rsb_fit_release(&f, rsb_fit_off(&f, t) - RSB_FIT_HDR);
    rsb_fit_release(&f, rsb_fit_off(&f, a) - RSB_FIT_HDR);
    cr_assert_eq(rsb_fit_largest(&f), cap);
    rsb_fit_check(&f, NULL, NULL);
    free(buf);
}
