/*
 * Contract tests: every behaviour promised by include/rsbmalloc.h and issue 3.
 *
 * Compiled once per variant (see rsbtest.h): against the rsb_* API of the
 * prefixed static library, and against the libc names with librsbmalloc
 * linked, statically linked, or preloaded.
 */
#include "rsbtest.h"

#include <criterion/criterion.h>
#include <stdalign.h>
#include <sys/mman.h>

static int is_aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

static int all_zero(const void *vp, size_t n)
{
    const unsigned char *p = vp;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w)
            return 0;
    }
    for (; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Write every usable byte, then read it back. */
static void touch_usable(void *p, size_t req, unsigned char v)
{
    size_t us = T_usable(p);
    cr_assert_geq(us, req, "usable size %zu < request %zu", us, req);
    if (us == 0)
        return;
    memset(p, v, us);
    const unsigned char *c = p;
    cr_assert(c[0] == v && c[us - 1] == v);
}

/* Sizes that cross every allocation path: tiny, small classes, the small
 * maximum (256 KiB), medium page runs (to 2 MiB), huge mappings. */
static const size_t sweep_sizes[] = {
    0, 1, 7, 8, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 96, 127, 128, 129,
    160, 200, 255, 256, 257, 500, 1000, 1023, 1024, 1025, 2047, 2048, 3000,
    4095, 4096, 4097, 8191, 8192, 10000, 16384, 40000, 65535, 65536, 65537,
    100000, 131072, 200000, 262143, 262144, 262145, 300000, 524288, 1000000,
    1048576, 2097151, 2097152, 2097153, 3000000, 4194304, 8388608 + 123,
};
#define NSWEEP (sizeof sweep_sizes / sizeof sweep_sizes[0])

/* ------------------------------------------------------------ alignment -- */

Test(contract, every_result_16_aligned)
{
    for (size_t i = 0; i < NSWEEP; i++) {
        size_t n = sweep_sizes[i];
        void *a = T(malloc)(n);
        void *b = T(calloc)(1, n);
        void *c = T(realloc)(NULL, n);
        cr_assert(a && b && c, "allocation of %zu failed", n);
        cr_assert(is_aligned(a, 16), "malloc(%zu) = %p not 16-aligned", n, a);
        cr_assert(is_aligned(b, 16), "calloc(1,%zu) = %p not 16-aligned", n, b);
        cr_assert(is_aligned(c, 16), "realloc(NULL,%zu) = %p not 16-aligned", n, c);
        void *d = T(realloc)(c, n + 1000);
        cr_assert(d && is_aligned(d, 16), "realloc(p,%zu) = %p not 16-aligned", n + 1000, d);
        void *e = T(realloc)(d, n / 2 + 1);
        cr_assert(e && is_aligned(e, 16), "shrinking realloc(p,%zu) = %p not 16-aligned", n / 2 + 1, e);
        T(free)(a);
        T(free)(b);
        T(free)(e);
    }
    /* Many live tiny blocks: every one aligned. */
    void *v[4096];
    for (int i = 0; i < 4096; i++) {
        v[i] = T(malloc)((size_t)(i % 24) + 1);
        cr_assert(v[i] && is_aligned(v[i], 16), "malloc(%d) = %p", i % 24 + 1, v[i]);
    }
    for (int i = 0; i < 4096; i++)
        T(free)(v[i]);
}

/* -------------------------------------------------------------- malloc(0) -- */

Test(contract, malloc0_unique_and_freeable)
{
    enum { N = 2000 };
    static void *v[N];
    for (int i = 0; i < N; i++) {
        errno = 0;
        v[i] = T(malloc)(0);
        cr_assert_not_null(v[i], "malloc(0) #%d returned NULL", i);
    }
    /* unique: sort-free quadratic check is too slow; use a hash-less check
     * by sorting a copy */
    static uintptr_t s[N];
    for (int i = 0; i < N; i++)
        s[i] = (uintptr_t)v[i];
    for (int i = 1; i < N; i++) {      /* insertion sort, N small */
        uintptr_t x = s[i];
        int j = i - 1;
        while (j >= 0 && s[j] > x)
            s[j + 1] = s[j], j--;
        s[j + 1] = x;
    }
    for (int i = 1; i < N; i++)
        cr_assert_neq(s[i], s[i - 1], "malloc(0) returned %p twice while both live", (void *)s[i]);
    for (int i = 0; i < N; i++)
        T(free)(v[i]);
    /* the zero-size relatives */
    void *a = T(calloc)(0, 0), *b = T(calloc)(0, 10), *c = T(calloc)(10, 0);
    void *d = T(realloc)(NULL, 0);
    void *e = T(aligned_alloc)(64, 0);
    cr_assert(a && b && c && d && e, "zero-size calloc/realloc(NULL,0)/aligned_alloc returned NULL");
    cr_assert(a != b && b != c && c != d && d != e && a != e);
    cr_assert(is_aligned(e, 64));
    T(free)(a), T(free)(b), T(free)(c), T(free)(d), T(free)(e);
}

/* -------------------------------------------------------- impossible sizes -- */

static const size_t *impossible_sizes(size_t *count)
{
    static size_t v[16];
    size_t M = rsbt_size_max, P = rsbt_ptrdiff_max;
    size_t i = 0;
    v[i++] = M;
    v[i++] = M - 1;
    v[i++] = M - 15;
    v[i++] = M - 16;
    v[i++] = M - 4095;
    v[i++] = M - 65536;
    v[i++] = M - 2 * MiB;
    v[i++] = M - 16 * MiB;
    v[i++] = P + 1;
    v[i++] = P;
    v[i++] = P - 4095;
    v[i++] = (size_t)1 << 62;
    v[i++] = (size_t)1 << 50;
    *count = i;
    return v;
}

Test(contract, malloc_impossible_sizes_enomem)
{
    size_t n;
    const size_t *v = impossible_sizes(&n);
    for (size_t i = 0; i < n; i++) {
        errno = 0;
        void *p = T(malloc)(v[i]);
        cr_assert_null(p, "malloc(%#zx) returned %p", v[i], p);
        cr_assert_eq(errno, ENOMEM, "malloc(%#zx): errno %d, want ENOMEM", v[i], errno);
    }
    /* the allocator still works afterwards */
    void *p = T(malloc)(100);
    cr_assert_not_null(p);
    T(free)(p);
}

Test(contract, aligned_functions_impossible_sizes_enomem)
{
    size_t n;
    const size_t *v = impossible_sizes(&n);
    static const size_t aligns[] = {16, 64, 4096, 65536, 2 * MiB};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
            size_t al = aligns[k];
            errno = 0;
            void *p = T(aligned_alloc)(al, v[i]);
            cr_assert(p == NULL && errno == ENOMEM, "aligned_alloc(%zu, %#zx) = %p errno %d", al, v[i], p, errno);
            errno = 0;
            p = T(memalign)(al, v[i]);
            cr_assert(p == NULL && errno == ENOMEM, "memalign(%zu, %#zx) = %p errno %d", al, v[i], p, errno);
        }
        errno = 0;
        void *p = T(valloc)(v[i]);
        cr_assert(p == NULL && errno == ENOMEM, "valloc(%#zx) = %p errno %d", v[i], p, errno);
        errno = 0;
        p = T(pvalloc)(v[i]);
        cr_assert(p == NULL && errno == ENOMEM, "pvalloc(%#zx) = %p errno %d", v[i], p, errno);
    }
}

Test(contract, calloc_overflow_and_huge_enomem)
{
    size_t M = rsbt_size_max, P = rsbt_ptrdiff_max;
    struct { size_t n, s; } cases[] = {
        {M, 2}, {2, M}, {M, M}, {M / 2 + 1, 2}, {2, M / 2 + 1},
        {(size_t)1 << 32, (size_t)1 << 32}, {((size_t)1 << 32) + 1, ((size_t)1 << 32) - 1},
        {M / 16 + 1, 16}, {P / 4 + 1, 4}, {1, P + 1}, {P + 1, 1}, {1, M},
        {(size_t)1 << 25, (size_t)1 << 25},   /* 1 PiB, no overflow, unmappable */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errno = 0;
        void *p = T(calloc)(rsbt_v(cases[i].n), rsbt_v(cases[i].s));
        cr_assert_null(p, "calloc(%#zx, %#zx) returned %p", cases[i].n, cases[i].s, p);
        cr_assert_eq(errno, ENOMEM, "calloc(%#zx, %#zx): errno %d", cases[i].n, cases[i].s, errno);
    }
}

/* A block of each kind whose contents we can check after failed resizes. */
static const size_t kind_sizes[] = {40, 5000, 200 * KiB, 700 * KiB, 3 * MiB + 5};

Test(contract, reallocarray_overflow_keeps_block)
{
    size_t M = rsbt_size_max, P = rsbt_ptrdiff_max;
    for (size_t k = 0; k < sizeof kind_sizes / sizeof kind_sizes[0]; k++) {
        size_t n = kind_sizes[k];
        void *p = T(malloc)(n);
        cr_assert_not_null(p);
        uint64_t seed = rsbt_seed(p, n);
        rsbt_fill(p, n, seed);
        struct { size_t a, b; } cases[] = {
            {M, 2}, {M / 2 + 1, 2}, {(size_t)1 << 33, (size_t)1 << 33}, {P / 2 + 1, 2}, {1, M}, {M, M},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            errno = 0;
            void *q = T(reallocarray)(p, rsbt_v(cases[i].a), rsbt_v(cases[i].b));
            cr_assert_null(q, "reallocarray(%zu-byte block, %#zx, %#zx) = %p", n, cases[i].a, cases[i].b, q);
            cr_assert_eq(errno, ENOMEM, "reallocarray overflow: errno %d", errno);
            size_t bad = 0;
            cr_assert_eq(rsbt_check(p, n, n, seed, &bad), 0,
                         "block of %zu bytes changed at offset %zu after failed reallocarray", n, bad);
        }
        /* and a working reallocarray preserves the contents */
        void *q = T(reallocarray)(p, rsbt_v(2), n);
        cr_assert_not_null(q);
        size_t bad = 0;
        cr_assert_eq(rsbt_check(q, n, n, seed, &bad), 0, "reallocarray lost data at %zu", bad);
        T(free)(q);
    }
    errno = 0;
    void *q = T(reallocarray)(NULL, rsbt_v(M), 3);
    cr_assert(q == NULL && errno == ENOMEM, "reallocarray(NULL, overflow) = %p errno %d", q, errno);
}

Test(contract, realloc_failure_keeps_block)
{
    size_t n_imp;
    const size_t *imp = impossible_sizes(&n_imp);
    for (size_t k = 0; k < sizeof kind_sizes / sizeof kind_sizes[0]; k++) {
        size_t n = kind_sizes[k];
        void *p = T(malloc)(n);
        cr_assert_not_null(p);
        size_t us = T_usable(p);
        uint64_t seed = rsbt_seed(p, n);
        rsbt_fill(p, n, seed);
        for (size_t i = 0; i < n_imp; i++) {
            errno = 0;
            void *q = T(realloc)(p, imp[i]);
            cr_assert_null(q, "realloc(%zu-byte block, %#zx) = %p", n, imp[i], q);
            cr_assert_eq(errno, ENOMEM, "realloc(%zu-byte block, %#zx): errno %d", n, imp[i], errno);
            size_t bad = 0;
            cr_assert_eq(rsbt_check(p, n, n, seed, &bad), 0,
                         "%zu-byte block changed at offset %zu after failed realloc(%#zx)", n, bad, imp[i]);
            cr_assert_eq(T_usable(p), us, "usable size changed by a failed realloc");
        }
        T(free)(p);
    }
    errno = 0;
    void *q = T(realloc)(NULL, rsbt_v(SIZE_MAX));
    cr_assert(q == NULL && errno == ENOMEM, "realloc(NULL, SIZE_MAX) = %p errno %d", q, errno);
}

/* ------------------------------------------------------------- realloc -- */

Test(contract, realloc_zero_frees_and_returns_null, .timeout = 120)
{
    /* realloc(p, 0) must return NULL and free p: repeated many times, a
     * leak would show as RSS growth (every block is written, so a leaked
     * block is resident).  Independent of rsb_stats. */
    static const struct { size_t size; int reps; } cases[] = {
        {24, 400000},          /* leak: 12 MiB  */
        {3000, 20000},         /* leak: 60 MiB  */
        {100 * KiB, 600},      /* leak: 60 MiB  */
        {1 * MiB, 64},         /* leak: 64 MiB  */
        {5 * MiB, 16},         /* leak: 80 MiB  */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n = cases[k].size;
        /* warm up: caches and free pages at their working size */
        for (int i = 0; i < 64; i++) {
            void *p = T(malloc)(n);
            cr_assert_not_null(p);
            memset(p, 1, n);
            cr_assert_null(T(realloc)(p, 0));
        }
        long rss0 = rsbt_status_kb("VmRSS");
        for (int i = 0; i < cases[k].reps; i++) {
            void *p = T(malloc)(n);
            cr_assert_not_null(p);
            memset(p, 1, n);
            errno = 0;
            void *q = T(realloc)(p, 0);
            cr_assert_null(q, "realloc(%zu-byte block, 0) returned %p, want NULL (glibc semantics)", n, q);
        }
        long rss1 = rsbt_status_kb("VmRSS");
        cr_assert_lt(rss1 - rss0, 8 * 1024L,
                     "RSS grew by %ld KiB over %d rounds of malloc(%zu) + realloc(p, 0): realloc(p, 0) does not free",
                     rss1 - rss0, cases[k].reps, n);
    }
}

Test(contract, stats_in_use_drops_on_free)
{
    /* rsb_stats().in_use is "bytes in live blocks": a freed block of any
     * kind (including a huge one kept in a mapping cache) is not live. */
    cr_assert(rsbt_have_stats(), "rsb_stats not available: rsbmalloc is not the allocator here");
    static const size_t sizes[] = {24, 3000, 100 * KiB, 1 * MiB, 3 * MiB, 5 * MiB, 40 * MiB};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t base = rsbt_in_use();
        void *p = T(malloc)(sizes[k]);
        cr_assert_not_null(p);
        size_t us = T_usable(p);
        size_t live = rsbt_in_use();
        cr_assert_geq(live - base, us, "malloc(%zu): in_use %zu -> %zu, want +%zu", sizes[k], base, live, us);
        T(free)(p);
        size_t after = rsbt_in_use();
        cr_assert_eq(after, base, "free of a %zu-byte block: in_use %zu -> %zu -> %zu, want back to %zu",
                     sizes[k], base, live, after, base);
    }
}

Test(contract, realloc_preserves_contents_across_classes)
{
    /* small -> larger small -> medium -> huge -> bigger huge (mremap) ->
     * smaller huge -> medium -> small, verifying the common prefix each time */
    static const size_t chain[] = {
        10, 100, 1000, 5000, 60000, 250000, 262144, 262145, 600000, 2 * MiB,
        2 * MiB + 1, 3 * MiB, 9 * MiB, 40 * MiB, 33 * MiB, 5 * MiB, 2 * MiB + 4096,
        1500000, 300000, 200000, 4000, 33, 1, 70000, 8 * MiB, 16,
    };
    size_t n = chain[0];
    void *p = T(malloc)(n);
    cr_assert_not_null(p);
    uint64_t seed = rsbt_seed(p, n);
    rsbt_fill(p, n, seed);
    for (size_t i = 1; i < sizeof chain / sizeof chain[0]; i++) {
        size_t m = chain[i];
        void *q = T(realloc)(p, m);
        cr_assert_not_null(q, "realloc %zu -> %zu failed", n, m);
        cr_assert(is_aligned(q, 16));
        size_t bad = 0;
        cr_assert_eq(rsbt_check(q, n, m, seed, &bad), 0,
                     "realloc %zu -> %zu (%p -> %p) lost data at offset %zu", n, m, p, q, bad);
        cr_assert_geq(T_usable(q), m);
        p = q;
        n = m;
        seed = rsbt_seed(p, n);
        rsbt_fill(p, n, seed);
    }
    T(free)(p);
}

Test(contract, realloc_huge_grow_in_place_neighbours_intact)
{
    /* Two huge blocks side by side; growing one (mremap) must not touch the
     * other. */
    void *a = T(malloc)(3 * MiB), *b = T(malloc)(3 * MiB);
    cr_assert(a && b);
    uint64_t sa = rsbt_seed(a, 3 * MiB), sb = rsbt_seed(b, 3 * MiB);
    rsbt_fill(a, 3 * MiB, sa);
    rsbt_fill(b, 3 * MiB, sb);
    for (size_t m = 4 * MiB; m <= 64 * MiB; m *= 2) {
        void *q = T(realloc)(a, m);
        cr_assert_not_null(q);
        a = q;
        size_t bad;
        cr_assert_eq(rsbt_check(a, 3 * MiB, 3 * MiB, sa, &bad), 0, "grown block lost data at %zu", bad);
        cr_assert_eq(rsbt_check(b, 3 * MiB, 3 * MiB, sb, &bad), 0, "neighbour changed at %zu", bad);
        memset((char *)a + 3 * MiB, 0x5a, m - 3 * MiB);
    }
    T(free)(a);
    T(free)(b);
}

/* -------------------------------------------------------- posix_memalign -- */

Test(contract, posix_memalign_einval_out_untouched_errno_kept)
{
    static const size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 48, 96, 100, 4095, 4097, 65537,
                                 (2 * MiB) + 8, ((size_t)1 << 40) + 16};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (sizeof(void *) == 4 && bad[i] == 4)
            continue;
        void *sentinel = (void *)(uintptr_t)0xdeadbeef0;
        void *out = sentinel;
        errno = 4242;
        int r = T(posix_memalign)(&out, bad[i], 64);
        cr_assert_eq(r, EINVAL, "posix_memalign(align %zu) returned %d, want EINVAL", bad[i], r);
        cr_assert_eq(out, sentinel, "posix_memalign(align %zu) wrote *out = %p on failure", bad[i], out);
        cr_assert_eq(errno, 4242, "posix_memalign(align %zu) changed errno to %d", bad[i], errno);
    }
}

Test(contract, posix_memalign_enomem_out_untouched_errno_kept)
{
    size_t n;
    const size_t *v = impossible_sizes(&n);
    static const size_t aligns[] = {8, 16, 256, 4096, 2 * MiB, 8 * MiB};
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
            void *sentinel = (void *)(uintptr_t)0xfeedface0;
            void *out = sentinel;
            errno = 4242;
            int r = T(posix_memalign)(&out, aligns[k], v[i]);
            cr_assert_eq(r, ENOMEM, "posix_memalign(%zu, %#zx) returned %d, want ENOMEM", aligns[k], v[i], r);
            cr_assert_eq(out, sentinel, "posix_memalign(%zu, %#zx) wrote *out on failure", aligns[k], v[i]);
            cr_assert_eq(errno, 4242, "posix_memalign(%zu, %#zx) changed errno to %d", aligns[k], v[i], errno);
        }
}

Test(contract, posix_memalign_success_keeps_errno)
{
    void *out = NULL;
    errno = 4242;
    int r = T(posix_memalign)(&out, 64, 1000);
    cr_assert_eq(r, 0);
    cr_assert(out && is_aligned(out, 64));
    cr_assert_eq(errno, 4242);
    T(free)(out);
}

/* --------------------------------------------------------- aligned_alloc -- */

Test(contract, aligned_alloc_non_power_of_two_einval)
{
    static const size_t bad[] = {0, 3, 5, 6, 12, 24, 48, 80, 96, 100, 3000, 4095, 4097, 65535, 3 * MiB};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *p = T(aligned_alloc)(rsbt_v(bad[i]), 64);
        cr_assert_null(p, "aligned_alloc(%zu, 64) = %p, want NULL", bad[i], p);
        cr_assert_eq(errno, EINVAL, "aligned_alloc(%zu, 64): errno %d, want EINVAL", bad[i], errno);
    }
}

Test(contract, aligned_alloc_small_alignments_and_odd_sizes)
{
    /* posix_memalign's ">= sizeof(void*)" rule does not apply to
     * aligned_alloc, and the size need not be a multiple of the alignment */
    static const size_t al[] = {1, 2, 4, 8, 16, 32, 64, 128, 4096};
    static const size_t sz[] = {1, 3, 17, 100, 1000, 4097, 70001};
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++)
        for (size_t j = 0; j < sizeof sz / sizeof sz[0]; j++) {
            void *p = T(aligned_alloc)(al[i], sz[j]);
            cr_assert_not_null(p, "aligned_alloc(%zu, %zu) failed (errno %d)", al[i], sz[j], errno);
            cr_assert(is_aligned(p, al[i] < 16 ? 16 : al[i]), "aligned_alloc(%zu, %zu) = %p", al[i], sz[j], p);
            touch_usable(p, sz[j], 0x33);
            T(free)(p);
        }
}

Test(contract, memalign_rounds_up_non_power_of_two)
{
    static const size_t al[] = {24, 48, 100, 3000, 5000};
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        size_t want = 1;
        while (want < al[i])
            want <<= 1;
        void *p = T(memalign)(al[i], 200);
        cr_assert_not_null(p, "memalign(%zu, 200) failed", al[i]);
        cr_assert(is_aligned(p, want), "memalign(%zu) = %p not aligned to %zu", al[i], p, want);
        touch_usable(p, 200, 1);
        T(free)(p);
    }
}

/* ------------------------------------------------------ alignment sweep -- */

static const size_t align_sweep_sizes[] = {1, 24, 1000, 100000, 300 * KiB, 1536 * KiB, 3 * MiB, 5 * MiB};

static void *alloc_aligned_with(int how, size_t al, size_t n)
{
    void *p = NULL;
    switch (how) {
    case 0:
        return T(aligned_alloc)(al, n);
    case 1:
        if (T(posix_memalign)(&p, al, n) != 0)
            return NULL;
        return p;
    default:
        return T(memalign)(al, n);
    }
}

Test(contract, alignments_8B_to_8MiB_small_medium_huge, .timeout = 120)
{
    static const char *names[] = {"aligned_alloc", "posix_memalign", "memalign"};
    for (size_t al = 8; al <= 8 * MiB; al <<= 1)
        for (size_t j = 0; j < sizeof align_sweep_sizes / sizeof align_sweep_sizes[0]; j++)
            for (int how = 0; how < 3; how++) {
                size_t n = align_sweep_sizes[j];
                enum { LIVE = 4 };
                void *v[LIVE];
                uint64_t s[LIVE];
                for (int k = 0; k < LIVE; k++) {
                    v[k] = alloc_aligned_with(how, al, n);
                    cr_assert_not_null(v[k], "%s(%zu, %zu) failed, errno %d", names[how], al, n, errno);
                    cr_assert(is_aligned(v[k], al < 16 ? 16 : al), "%s(%zu, %zu) = %p misaligned",
                              names[how], al, n, v[k]);
                    size_t us = T_usable(v[k]);
                    cr_assert_geq(us, n, "%s(%zu, %zu): usable %zu", names[how], al, n, us);
                    s[k] = rsbt_seed(v[k], us);
                    rsbt_fill(v[k], us, s[k]);
                }
                for (int k = 0; k < LIVE; k++) {
                    size_t bad, us = T_usable(v[k]);
                    cr_assert_eq(rsbt_check(v[k], us, us, s[k], &bad), 0,
                                 "%s(%zu, %zu) block %d overwritten at offset %zu (blocks overlap?)",
                                 names[how], al, n, k, bad);
                }
                for (int k = 0; k < LIVE; k++)
                    T(free)(v[k]);
            }
}

Test(contract, huge_alignment_kept_when_reusing_cached_mappings)
{
    /* Free huge blocks aligned to A, then ask for 2A (or more): a reused
     * mapping must satisfy the new alignment. */
    for (size_t al = 2 * MiB; al <= 16 * MiB; al <<= 1)
        for (int round = 0; round < 3; round++) {
            void *v[4];
            for (int k = 0; k < 4; k++) {
                v[k] = T(aligned_alloc)(al / 2, round == 2 ? 3 * MiB : 1);
                cr_assert_not_null(v[k]);
            }
            for (int k = 0; k < 4; k++)
                T(free)(v[k]);
            for (int k = 0; k < 4; k++) {
                v[k] = T(aligned_alloc)(al, round == 1 ? 3 * MiB : 1);
                cr_assert_not_null(v[k]);
                cr_assert(is_aligned(v[k], al), "aligned_alloc(%zu, %s) after freeing %zu-aligned blocks = %p: misaligned",
                          al, round == 1 ? "3 MiB" : "1", al / 2, v[k]);
            }
            for (int k = 0; k < 4; k++)
                T(free)(v[k]);
        }
}

/* ------------------------------------------------------ usable size ---- */

Test(contract, usable_size_ge_request_all_writable)
{
    cr_assert_eq(T_usable(NULL), 0, "malloc_usable_size(NULL) != 0");
    for (size_t i = 0; i < NSWEEP; i++) {
        size_t n = sweep_sizes[i];
        enum { K = 6 };
        void *v[K];
        size_t us[K];
        for (int k = 0; k < K; k++) {
            v[k] = T(malloc)(n);
            cr_assert_not_null(v[k]);
            us[k] = T_usable(v[k]);
            cr_assert_geq(us[k], n, "usable(malloc(%zu)) = %zu", n, us[k]);
            memset(v[k], 0x40 + k, us[k]);
        }
        for (int k = 0; k < K; k++) {
            const unsigned char *c = v[k];
            cr_assert_eq(T_usable(v[k]), us[k], "usable size of a live block changed");
            for (size_t b = 0; b < us[k]; b += (us[k] > 65536 ? 509 : 1))
                cr_assert_eq(c[b], 0x40 + k, "malloc(%zu) #%d: byte %zu of usable %zu overwritten by a neighbour",
                             n, k, b, us[k]);
            cr_assert_eq(c[us[k] ? us[k] - 1 : 0], us[k] ? 0x40 + k : c[0]);
        }
        for (int k = 0; k < K; k++)
            T(free)(v[k]);
    }
}

Test(contract, usable_size_of_aligned_and_calloc_blocks)
{
    void *p = T(calloc)(7, 13);
    cr_assert_not_null(p);
    touch_usable(p, 91, 9);
    T(free)(p);
    p = T(aligned_alloc)(4096, 10);
    cr_assert_not_null(p);
    touch_usable(p, 10, 9);
    T(free)(p);
    p = T(aligned_alloc)(2 * MiB, 3 * MiB);
    cr_assert_not_null(p);
    touch_usable(p, 3 * MiB, 9);
    T(free)(p);
}

/* ---------------------------------------------------------- calloc --- */

static void calloc_dirty_reuse(const size_t *sizes, size_t nsizes, int count, int rounds)
{
    void **v = T(malloc)(sizeof(void *) * (size_t)count);
    cr_assert_not_null(v);
    for (size_t i = 0; i < nsizes; i++) {
        size_t n = sizes[i];
        for (int r = 0; r < rounds; r++) {
            for (int k = 0; k < count; k++) {
                v[k] = T(malloc)(n);
                cr_assert_not_null(v[k]);
                memset(v[k], 0xa5, T_usable(v[k]));
            }
            for (int k = 0; k < count; k++)
                T(free)(v[k]);
            for (int k = 0; k < count; k++) {
                /* alternate the factorisation of n */
                v[k] = (k & 1) && n % 16 == 0 ? T(calloc)(n / 16, 16) : T(calloc)(1, n);
                cr_assert_not_null(v[k]);
                cr_assert(all_zero(v[k], n), "calloc(%zu) #%d round %d returned dirty memory", n, k, r);
                memset(v[k], 0x5a, T_usable(v[k]));
            }
            for (int k = 0; k < count; k++)
                T(free)(v[k]);
        }
    }
    T(free)(v);
}

Test(contract, calloc_zero_on_dirty_reuse_small)
{
    static const size_t s[] = {1, 16, 48, 100, 1000, 4096, 20000, 100000, 256 * KiB};
    calloc_dirty_reuse(s, sizeof s / sizeof s[0], 64, 3);
}

Test(contract, calloc_zero_on_dirty_reuse_medium)
{
    static const size_t s[] = {256 * KiB + 1, 300 * KiB, 1 * MiB, 2 * MiB - 4096, 2 * MiB};
    calloc_dirty_reuse(s, sizeof s / sizeof s[0], 8, 3);
}

Test(contract, calloc_zero_on_dirty_reuse_huge)
{
    static const size_t s[] = {2 * MiB + 1, 3 * MiB, 16 * MiB};
    calloc_dirty_reuse(s, sizeof s / sizeof s[0], 4, 3);
}

Test(contract, calloc_zero_after_trim)
{
    /* Memory returned with madvise (MADV_FREE keeps old bytes until the
     * kernel reclaims them) must still come back zeroed from calloc. */
    static const size_t s[] = {64, 5000, 200 * KiB, 700 * KiB, 2 * MiB, 3 * MiB};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        enum { N = 16 };
        void *v[N];
        for (int k = 0; k < N; k++) {
            v[k] = T(malloc)(s[i]);
            cr_assert_not_null(v[k]);
            memset(v[k], 0xee, s[i]);
        }
        for (int k = 0; k < N; k++)
            T(free)(v[k]);
        (void)T_trim(0);
        for (int k = 0; k < N; k++) {
            v[k] = T(calloc)(s[i], 1);
            cr_assert_not_null(v[k]);
            cr_assert(all_zero(v[k], s[i]), "calloc(%zu) after malloc_trim returned dirty memory", s[i]);
        }
        for (int k = 0; k < N; k++)
            T(free)(v[k]);
    }
}

/* ------------------------------------------------------------ free ---- */

Test(contract, free_preserves_errno)
{
    static const size_t s[] = {0, 8, 100, 4000, 64 * KiB, 256 * KiB, 300 * KiB, 2 * MiB, 3 * MiB, 20 * MiB};
    for (int round = 0; round < 4; round++)
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
            void *p = T(malloc)(s[i]);
            cr_assert_not_null(p);
            memset(p, 1, s[i]);
            errno = 4321 + round;
            T(free)(p);
            cr_assert_eq(errno, 4321 + round, "free(%zu-byte block) changed errno to %d", s[i], errno);
        }
    errno = 777;
    T(free)(NULL);
    cr_assert_eq(errno, 777, "free(NULL) changed errno");

    /* Freeing many medium blocks (likely to trigger purging) */
    enum { N = 200 };
    void *v[N];
    for (int k = 0; k < N; k++) {
        v[k] = T(malloc)(MiB);
        cr_assert_not_null(v[k]);
        memset(v[k], 2, MiB);
    }
    for (int k = 0; k < N; k++) {
        errno = 999;
        T(free)(v[k]);
        cr_assert_eq(errno, 999, "free of medium block #%d changed errno to %d", k, errno);
    }
    /* after a failed call that set errno */
    errno = 0;
    void *x = T(malloc)(rsbt_size_max);
    cr_assert_null(x);
    void *y = T(malloc)(10);
    errno = ENOMEM;
    T(free)(y);
    cr_assert_eq(errno, ENOMEM);
}

Test(contract, free_sized_and_free_aligned_sized)
{
#if RSBT_LIBC_NAMES
    cr_assert_not_null(free_sized, "free_sized is not exported");
    cr_assert_not_null(free_aligned_sized, "free_aligned_sized is not exported");
    cr_assert_not_null(cfree, "cfree is not exported");
#endif
    for (int r = 0; r < 3; r++) {
        static const size_t s[] = {1, 16, 100, 5000, 200 * KiB, 600 * KiB, 3 * MiB};
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
            void *p = T(malloc)(s[i]);
            cr_assert_not_null(p);
            memset(p, 3, s[i]);
            errno = 55;
            T(free_sized)(p, s[i]);
            cr_assert_eq(errno, 55, "free_sized changed errno");
            p = T(aligned_alloc)(256, s[i]);
            cr_assert_not_null(p);
            memset(p, 4, s[i]);
            T(free_aligned_sized)(p, 256, s[i]);
            p = T(aligned_alloc)(2 * MiB, s[i]);
            cr_assert_not_null(p);
            memset(p, 5, s[i]);
            T(free_aligned_sized)(p, 2 * MiB, s[i]);
        }
    }
    T(free_sized)(NULL, 0);
    T(free_aligned_sized)(NULL, 64, 0);
#if RSBT_LIBC_NAMES
    void *p = malloc(77);
    cr_assert_not_null(p);
    cfree(p);
#endif
}

/* ------------------------------------------------------ valloc/pvalloc -- */

Test(contract, valloc_pvalloc_runtime_page_size)
{
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    cr_assert(ps >= 4096 && (ps & (ps - 1)) == 0);
    static const size_t s[] = {1, 100, 4095, 4096, 4097, 65536, 300 * KiB, 3 * MiB};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        void *p = T(valloc)(s[i]);
        cr_assert_not_null(p, "valloc(%zu)", s[i]);
        cr_assert(is_aligned(p, ps), "valloc(%zu) = %p not aligned to page size %zu", s[i], p, ps);
        touch_usable(p, s[i], 7);
        T(free)(p);
        p = T(pvalloc)(s[i]);
        cr_assert_not_null(p, "pvalloc(%zu)", s[i]);
        cr_assert(is_aligned(p, ps), "pvalloc(%zu) = %p not page aligned", s[i], p);
        size_t rounded = (s[i] + ps - 1) & ~(ps - 1);
        touch_usable(p, rounded, 8);
        T(free)(p);
    }
    void *p = T(pvalloc)(0);
    cr_assert_not_null(p, "pvalloc(0) returned NULL");
    cr_assert(is_aligned(p, ps));
    touch_usable(p, ps, 9);
    T(free)(p);
    /* pvalloc rounds to the *system* page: a one-byte pvalloc is one page
     * (plus at most class rounding), not an allocator page of 64 KiB. */
    p = T(pvalloc)(1);
    cr_assert_not_null(p);
    cr_assert_lt(T_usable(p), 2 * ps, "pvalloc(1) usable size %zu: rounded to a build-time page, not %zu",
                 T_usable(p), ps);
    T(free)(p);
}

/* ---------------------------------------------------------- trim ---- */

Test(contract, malloc_trim_releases_and_heap_still_works)
{
    enum { N = 64 };
    void *v[N];
    for (int k = 0; k < N; k++) {
        v[k] = T(malloc)(512 * KiB);
        cr_assert_not_null(v[k]);
        memset(v[k], 6, 512 * KiB);
    }
    for (int k = 0; k < N; k++)
        T(free)(v[k]);
    int r = T_trim(0);
    cr_assert(r == 0 || r == 1);
#if !RSBT_LIBC_NAMES || !defined(RSBT_VARIANT_GLIBC)
    cr_assert_eq(r, 1, "malloc_trim after freeing 32 MiB of medium blocks released nothing");
#endif
    for (int k = 0; k < N; k++) {
        v[k] = T(malloc)(512 * KiB);
        cr_assert_not_null(v[k]);
        memset(v[k], 7, 512 * KiB);
    }
    for (int k = 0; k < N; k++)
        T(free)(v[k]);
}

/* ------------------------------------------------- invalid frees abort -- */

struct bad_op {
    int kind;
    void *p;
};
enum { OP_FREE2, OP_FREE1, OP_REALLOC, OP_FREE2_CHURN };

static void do_bad_op(void *arg)
{
    struct bad_op *op = arg;
    switch (op->kind) {
    case OP_FREE2:
        T(free)(op->p);
        T(free)(op->p);
        break;
    case OP_FREE1:
        T(free)(op->p);
        break;
    case OP_FREE2_CHURN: /* other page runs come and go between the frees */
        T(free)(op->p);
        for (int i = 0; i < 16; i++) {
            void *q = T(malloc)((size_t)(300 + 37 * i) * 1024);
            if (q) memset(q, i, 4096);
            T(free)(q);
        }
        T(free)(op->p);
        break;
    case OP_REALLOC: {
        void *q = T(realloc)(op->p, 100);
        (void)q;
        break;
    }
    }
    /* reached only if nothing was detected */
    static const char msg[] = "test: invalid operation returned normally\n";
    (void)!write(2, msg, sizeof msg - 1);
}

static void expect_abort(int kind, void *p, const char *what)
{
    struct bad_op op = {kind, p};
    rsbt_child_t c;
    cr_assert_eq(rsbt_run_child(do_bad_op, &op, 20, &c), 0, "fork failed");
    cr_assert(!c.timed_out, "%s: the child hung instead of aborting", what);
    cr_assert(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGABRT,
              "%s: child %s %d, want SIGABRT; stderr: \"%s\"", what,
              WIFSIGNALED(c.status) ? "died of signal" : "exited with", WIFSIGNALED(c.status) ? WTERMSIG(c.status) : WEXITSTATUS(c.status),
              c.err);
    cr_assert_not_null(strstr(c.err, "rsbmalloc"), "%s: stderr does not name rsbmalloc: \"%s\"", what, c.err);
    cr_assert(rsbt_mentions_addr(c.err, p), "%s: stderr does not give the address %p in hex: \"%s\"", what, p, c.err);
    cr_assert(rsbt_count_lines(c.err) == 1 && c.err[c.err_len - 1] == '\n',
              "%s: want exactly one line on stderr, got: \"%s\"", what, c.err);
}

Test(contract_abort, double_free_small)
{
    void *p = T(malloc)(48);
    cr_assert_not_null(p);
    expect_abort(OP_FREE2, p, "double free of a 48-byte block");
    T(free)(p);
}

Test(contract_abort, double_free_small_largest_class)
{
    void *p = T(malloc)(200 * KiB);
    cr_assert_not_null(p);
    expect_abort(OP_FREE2, p, "double free of a 200 KiB block");
    T(free)(p);
}

Test(contract_abort, double_free_medium)
{
    void *p = T(malloc)(700 * KiB);
    cr_assert_not_null(p);
    expect_abort(OP_FREE2, p, "double free of a 700 KiB block");
    T(free)(p);
}

Test(contract_abort, double_free_medium_after_other_page_runs)
{
    void *p = T(malloc)(700 * KiB);
    cr_assert_not_null(p);
    expect_abort(OP_FREE2_CHURN, p, "double free of a 700 KiB block, 16 page runs freed in between");
    T(free)(p);
}

Test(contract_abort, double_free_huge)
{
    void *p = T(malloc)(5 * MiB);
    cr_assert_not_null(p);
    expect_abort(OP_FREE2, p, "double free of a 5 MiB block");
    T(free)(p);
}

Test(contract_abort, free_stack_address)
{
    alignas(64) char buf[256];
    memset(buf, 0, sizeof buf);
    expect_abort(OP_FREE1, buf + 64, "free of a stack address");
}

Test(contract_abort, free_static_address)
{
    alignas(64) static char buf[256];
    expect_abort(OP_FREE1, buf + 64, "free of a static (.bss) address");
}

Test(contract_abort, free_interior_small_plus8)
{
    void *p = T(malloc)(48);
    cr_assert_not_null(p);
    expect_abort(OP_FREE1, (char *)p + 8, "free(malloc(48) + 8)");
    T(free)(p);
}

Test(contract_abort, free_interior_small_plus16)
{
    /* 16-aligned, but not the start of a block */
    void *p = T(malloc)(48);
    cr_assert_not_null(p);
    expect_abort(OP_FREE1, (char *)p + 16, "free(malloc(48) + 16)");
    T(free)(p);
}

Test(contract_abort, free_interior_small_large_class)
{
    void *p = T(malloc)(100000);
    cr_assert_not_null(p);
    expect_abort(OP_FREE1, (char *)p + 4096, "free(malloc(100000) + 4096)");
    T(free)(p);
}

Test(contract_abort, free_interior_medium)
{
    void *p = T(malloc)(700 * KiB);
    cr_assert_not_null(p);
    expect_abort(OP_FREE1, (char *)p + 16, "free(malloc(700 KiB) + 16)");
    expect_abort(OP_FREE1, (char *)p + 64 * KiB, "free(malloc(700 KiB) + 64 KiB)");
    expect_abort(OP_FREE1, (char *)p + 512 * KiB, "free(malloc(700 KiB) + 512 KiB)");
    T(free)(p);
}

Test(contract_abort, free_interior_huge)
{
    void *p = T(malloc)(8 * MiB);
    cr_assert_not_null(p);
    expect_abort(OP_FREE1, (char *)p + 16, "free(malloc(8 MiB) + 16)");
    expect_abort(OP_FREE1, (char *)p + MiB, "free(malloc(8 MiB) + 1 MiB)");
    expect_abort(OP_FREE1, (char *)p + 4 * MiB + 4096, "free(malloc(8 MiB) + 4 MiB + 4 KiB)");
    T(free)(p);
}

Test(contract_abort, free_foreign_mmap)
{
    void *m = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    expect_abort(OP_FREE1, (char *)m + 4096, "free of a foreign mmap'ed page");
    munmap(m, 4 * MiB);
}

Test(contract_abort, realloc_stack_address)
{
    alignas(64) char buf[256];
    memset(buf, 0, sizeof buf);
    expect_abort(OP_REALLOC, buf + 64, "realloc of a stack address");
}

#if !RSBT_LIBC_NAMES
Test(contract_abort, rsb_free_of_system_malloc_pointer)
{
    /* Two allocators in one process: rsb_free must refuse glibc's block. */
    void *p = malloc(100);
    cr_assert_not_null(p);
    expect_abort(OP_FREE1, p, "rsb_free of a glibc malloc() block");
    free(p);
}
#endif

/* ------------------------------------------------ override is active -- */

#if RSBT_LIBC_NAMES
Test(contract, libc_names_are_rsbmalloc)
{
    /* The program's malloc must be rsbmalloc's: its statistics see it. */
    cr_assert(rsbt_have_stats(), "rsb_stats is not resolvable: librsbmalloc is not loaded");
    size_t before = rsbt_in_use();
    void *p = malloc(MiB);
    cr_assert_not_null(p);
    size_t mid = rsbt_in_use();
    cr_assert_geq(mid - before, MiB, "malloc(1 MiB) not counted by rsb_stats: %zu -> %zu", before, mid);
    free(p);
    cr_assert_lt(rsbt_in_use(), mid, "free() not counted by rsb_stats");
    rsb_stats_t h0, h1;
    rsb_stats(&h0);
    p = malloc(3 * MiB);
    cr_assert_not_null(p);
    rsb_stats(&h1);
    cr_assert_eq(h1.huge_count, h0.huge_count + 1, "malloc(3 MiB) did not make an rsbmalloc huge block");
    free(p);

    /* glibc-internal allocations (strdup, asprintf, fopen) must come from
     * rsbmalloc too, and be freeable with our free */
    static char big[200000];
    memset(big, 'x', sizeof big - 1);
    before = rsbt_in_use();
    char *d = strdup(big);
    cr_assert_not_null(d);
    cr_assert_geq(rsbt_in_use() - before, sizeof big, "strdup inside libc did not use rsbmalloc");
    free(d);
    char *s = NULL;
    cr_assert(asprintf(&s, "%d-%s", 42, "x") > 0);
    free(s);
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, f));
    fclose(f);

    /* 17 bytes rounds up to our 32-byte class (glibc would report 24) */
    void *q = malloc(17);
    cr_assert_eq(malloc_usable_size(q), 32, "malloc_usable_size(malloc(17)) = %zu, want rsbmalloc's 32",
                 malloc_usable_size(q));
    free(q);

    /* dynamic symbol lookup sees one allocator */
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    void *r = dlsym(RTLD_DEFAULT, "rsb_malloc");
    if (!r)   /* static link: rsb_malloc is in the executable, not exported */
        r = (void *)&rsb_malloc;
    cr_assert(m && r);
    Dl_info im, ir;
    cr_assert(dladdr(m, &im) && dladdr(r, &ir));
    cr_assert_str_eq(im.dli_fname, ir.dli_fname, "malloc comes from %s but rsb_malloc from %s",
                     im.dli_fname, ir.dli_fname);
}

Test(contract, glibc_extras_exported_and_sane)
{
    void *p = malloc(10 * MiB);
    cr_assert_not_null(p);
    memset(p, 1, 10 * MiB);
    struct mallinfo2 mi = mallinfo2();
    /* glibc's meaning: a block with its own mapping is in hblks/hblkhd. */
    cr_assert_geq(mi.hblks, 1, "mallinfo2: no mmapped block counted");
    cr_assert_geq(mi.hblkhd, 10 * MiB, "mallinfo2: hblkhd %zu < a live 10 MiB block", mi.hblkhd);
    cr_assert_lt(mi.uordblks, 10 * MiB, "mallinfo2: the mmapped block counted in uordblks too");
    free(p);
    (void)mallopt(M_ARENA_MAX, 1);   /* accepted or ignored, but callable */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(malloc_info(0, f), 0, "malloc_info failed");
    fclose(f);
    cr_assert_gt(len, 0, "malloc_info wrote nothing");
    free(buf);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    struct mallinfo mo = mallinfo();
#pragma GCC diagnostic pop
    (void)mo;
}
#endif
