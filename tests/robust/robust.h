/*
 * robust.h — helpers shared by the robustness tests (tests/robust/) and the
 * fuzzer (tests/fuzz/): a small PRNG, size generators over every size class,
 * and block fill/check with a per-block pattern.
 *
 * Header only; every function is static inline so each test stays one file.
 */
#ifndef RSB_ROBUST_H
#define RSB_ROBUST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Size ranges of the allocator (defaults: 64 KiB pages, small <= 256 KiB,
 * medium <= 2 MiB, huge above). */
#define RB_KiB ((size_t)1 << 10)
#define RB_MiB ((size_t)1 << 20)
#define RB_SMALL_MAX (256 * RB_KiB)
#define RB_MEDIUM_MAX (2 * RB_MiB)

/* xorshift64*: deterministic per seed. */
typedef struct rb_rng {
    uint64_t s;
} rb_rng;

static inline void rb_seed(rb_rng *r, uint64_t seed) { r->s = seed * 0x9e3779b97f4a7c15ull | 1; }

static inline uint64_t rb_next(rb_rng *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n). */
static inline uint64_t rb_below(rb_rng *r, uint64_t n) { return n ? rb_next(r) % n : 0; }

/* Log-uniform in [lo, hi]. */
static inline size_t rb_log_uniform(rb_rng *r, size_t lo, size_t hi) {
    if (lo < 1) lo = 1;
    unsigned lg_lo = 63 - (unsigned)__builtin_clzll(lo), lg_hi = 63 - (unsigned)__builtin_clzll(hi);
    for (;;) {
        unsigned lg = lg_lo + (unsigned)rb_below(r, lg_hi - lg_lo + 1);
        size_t base = (size_t)1 << lg;
        size_t v = base + (size_t)rb_below(r, base);
        if (v >= lo && v <= hi) return v;
    }
}

/* The byte at offset i of a block filled with pattern `fill`: varies with
 * the offset so that a block copied to the wrong place, or shifted, is
 * noticed, and with the fill so that two blocks differ. */
static inline unsigned char rb_byte(unsigned fill, size_t i) {
    return (unsigned char)(fill + (i >> 12) * 131u + (i & 7) * 29u);
}

/* Within a 4 KiB page the pattern repeats every 8 bytes: the 8 bytes of
 * the page holding offset i, and where that page's run ends (at most to). */
static inline size_t rb_page_pattern(unsigned fill, size_t i, size_t to, unsigned char pat[8]) {
    for (unsigned k = 0; k < 8; k++) pat[k] = rb_byte(fill, (i & ~(size_t)4095) + k);
    size_t page_end = (i | 4095) + 1;
    return page_end > to ? to : page_end;
}

/* Fill [from, to) of p with the pattern (fast: 8-byte stride memset per
 * 4 KiB page where the pattern is periodic with period 8). */
static inline void rb_fill_range(unsigned char *p, unsigned fill, size_t from, size_t to) {
    size_t i = from;
    while (i < to) {
        unsigned char pat[8];
        size_t page_end = rb_page_pattern(fill, i, to, pat);
        while (i < page_end && (i & 7)) p[i] = pat[i & 7], i++;
        if (page_end - i >= 8) {
            uint64_t w;
            __builtin_memcpy(&w, pat, 8);
            for (; i + 8 <= page_end; i += 8) __builtin_memcpy(p + i, &w, 8);
        }
        while (i < page_end) p[i] = pat[i & 7], i++;
    }
}

static inline void rb_fill(void *p, unsigned fill, size_t n) { rb_fill_range((unsigned char *)p, fill, 0, n); }

/* Index of the first byte of [from, to) that differs from the pattern, or
 * (size_t)-1 if all match. */
static inline size_t rb_check_range(const unsigned char *p, unsigned fill, size_t from, size_t to) {
    size_t i = from;
    while (i < to) {
        unsigned char pat[8];
        size_t page_end = rb_page_pattern(fill, i, to, pat);
        while (i < page_end && (i & 7)) {
            if (p[i] != pat[i & 7]) return i;
            i++;
        }
        if (page_end - i >= 8) {
            uint64_t w, v;
            __builtin_memcpy(&w, pat, 8);
            for (; i + 8 <= page_end; i += 8) {
                __builtin_memcpy(&v, p + i, 8);
                if (v != w) goto slow;
            }
        }
    slow:
        while (i < page_end) {
            if (p[i] != pat[i & 7]) return i;
            i++;
        }
    }
    return (size_t)-1;
}

static inline size_t rb_check(const void *p, unsigned fill, size_t n) {
    return rb_check_range((const unsigned char *)p, fill, 0, n);
}

/* A cheap check: the first and last 64 bytes and one 8-byte word per 4 KiB
 * page.  Returns the first bad offset or (size_t)-1. */
static inline size_t rb_check_sampled(const void *vp, unsigned fill, size_t n) {
    const unsigned char *p = (const unsigned char *)vp;
    if (n <= 256) return rb_check_range(p, fill, 0, n);
    size_t bad = rb_check_range(p, fill, 0, 64);
    if (bad != (size_t)-1) return bad;
    bad = rb_check_range(p, fill, n - 64, n);
    if (bad != (size_t)-1) return bad;
    for (size_t off = 4096 + 1000; off + 8 <= n; off += 4096) {
        bad = rb_check_range(p, fill, off, off + 8);
        if (bad != (size_t)-1) return bad;
    }
    return (size_t)-1;
}

/* Sparse fill and check for big blocks: page faults are the cost that
 * dominates on a VM (several microseconds per 4 KiB page), so a block above
 * RB_SPARSE_MIN gets its first and last 512 bytes and one 8-byte word per
 * 64 KiB (the allocator's page) filled; the rest stays untouched (never
 * faulted in).  Enough to see a block placed over another or copied short. */
#define RB_SPARSE_MIN ((size_t)64 << 10)
#define RB_SPARSE_STRIDE ((size_t)64 << 10)

static inline void rb_fill_sparse(void *vp, unsigned fill, size_t n) {
    unsigned char *p = (unsigned char *)vp;
    if (n <= RB_SPARSE_MIN) {
        rb_fill_range(p, fill, 0, n);
        return;
    }
    rb_fill_range(p, fill, 0, 512);
    for (size_t off = RB_SPARSE_STRIDE; off + 8 <= n - 512; off += RB_SPARSE_STRIDE)
        rb_fill_range(p, fill, off, off + 8);
    rb_fill_range(p, fill, n - 512, n);
}

/* Check what rb_fill_sparse wrote, within the first n bytes of a block of
 * `filled` bytes (n < filled after a shrinking realloc). */
static inline size_t rb_check_sparse_n(const void *vp, unsigned fill, size_t filled, size_t n) {
    const unsigned char *p = (const unsigned char *)vp;
    if (filled <= RB_SPARSE_MIN) return rb_check_range(p, fill, 0, n < filled ? n : filled);
    size_t bad = rb_check_range(p, fill, 0, n < 512 ? n : 512);
    if (bad != (size_t)-1) return bad;
    for (size_t off = RB_SPARSE_STRIDE; off + 8 <= filled - 512 && off + 8 <= n; off += RB_SPARSE_STRIDE) {
        bad = rb_check_range(p, fill, off, off + 8);
        if (bad != (size_t)-1) return bad;
    }
    if (n >= filled) return rb_check_range(p, fill, filled - 512, filled);
    return (size_t)-1;
}

static inline size_t rb_check_sparse(const void *p, unsigned fill, size_t n) {
    return rb_check_sparse_n(p, fill, n, n);
}

/* Zero check: whole for small blocks, else the sparse positions plus one
 * word per OS page of the first 64 KiB. */
static inline bool rb_is_zero_sparse(const void *vp, size_t n) {
    const unsigned char *p = (const unsigned char *)vp;
    if (n <= RB_SPARSE_MIN) {
        for (size_t i = 0; i < n; i++)
            if (p[i]) return false;
        return true;
    }
    for (size_t i = 0; i < 512; i++)
        if (p[i] || p[n - 1 - i]) return false;
    for (size_t off = 4096; off < RB_SPARSE_MIN; off += 4096)
        if (p[off]) return false;
    for (size_t off = RB_SPARSE_STRIDE; off + 8 <= n; off += RB_SPARSE_STRIDE)
        for (size_t i = 0; i < 8; i++)
            if (p[off + i]) return false;
    return true;
}

static inline bool rb_is_zero(const void *vp, size_t n) {
    const unsigned char *p = (const unsigned char *)vp;
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

#endif
