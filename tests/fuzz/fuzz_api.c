/*
 * Differential fuzzer of the prefixed API (rsb_malloc & co.).
 *
 * The input is decoded into a sequence of operations: malloc, calloc,
 * realloc, reallocarray, memalign / posix_memalign / aligned_alloc / valloc /
 * pvalloc, free, free_sized, usable-size use, frees and allocations made by
 * a second thread (remote frees both ways), absurd requests that must fail
 * with the documented error, realloc to 0.  Sizes cover every class: tiny,
 * small (16 B..256 KiB), medium (256 KiB..2 MiB), huge (> 2 MiB) and the
 * class boundaries; alignments from 8 B to 16 MiB.
 *
 * A shadow model keeps every live block (address, requested size, usable
 * size, alignment, fill pattern).  After every operation:
 *   - each live block still holds its pattern (first/last bytes; the whole
 *     block, sparsely for big ones, when it is freed or reallocated),
 *   - each block's usable size is unchanged and >= its size, its address is
 *     aligned as requested,
 *   - the blocks' [address, address + usable size) ranges are disjoint.
 * Any violation aborts with a message, which libFuzzer reports as a crash.
 *
 * Built two ways:
 *   - with clang's libFuzzer and ASan (tests/fuzz/meson.build when the
 *     compiler supports -fsanitize=fuzzer; scripts/test-robust);
 *   - with replay.c as main() (any compiler), replaying the seed corpus
 *     and the crash regressions as a meson test.
 * The allocator is linked as source (the prefixed library): under ASan,
 * ASan owns malloc, rsbmalloc is only reached through rsb_*.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "robust.h"
#include "rsbmalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SLOTS 64
#define LIVE_CAP ((size_t)96 << 20)

typedef struct blk {
    unsigned char *p;
    size_t size;   /* bytes filled with the pattern */
    size_t usable; /* rsb_malloc_usable_size at allocation */
    size_t align;
    unsigned fill;
} blk;

static blk live[SLOTS];
static unsigned nlive;
static size_t live_bytes;
static unsigned fill_seq;
static unsigned long op_index;

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "fuzz_api: op %lu: ", op_index);                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* ---- input ---------------------------------------------------------------- */

typedef struct rd {
    const uint8_t *d;
    size_t n, i;
} rd;

static uint8_t u8(rd *r) { return r->i < r->n ? r->d[r->i++] : 0; }
/* Little-endian; each read is its own statement (the order in which the
 * operands of one expression are evaluated is unspecified). */
static uint16_t u16(rd *r) {
    unsigned lo = u8(r);
    unsigned hi = u8(r);
    return (uint16_t)(lo | hi << 8);
}
static uint32_t u32(rd *r) {
    uint32_t lo = u16(r);
    uint32_t hi = u16(r);
    return lo | hi << 16;
}

static size_t log_uniform(uint32_t v, size_t lo, size_t hi) {
    unsigned lg_lo = 63 - (unsigned)__builtin_clzll(lo), lg_hi = 63 - (unsigned)__builtin_clzll(hi);
    unsigned lg = lg_lo + (v & 63) % (lg_hi - lg_lo + 1);
    size_t base = (size_t)1 << lg;
    size_t s = base + ((size_t)(v >> 6) % base);
    return s < lo ? lo : s > hi ? hi : s;
}

/* A size in one of the allocator's ranges. */
static size_t get_size(rd *r) {
    uint8_t sel = u8(r);
    uint32_t v = u32(r);
    switch (sel % 16) {
    case 0: case 1: case 2: case 3: return v % 65;                               /* tiny, incl. 0 */
    case 4: case 5: case 6: case 7: case 8: return log_uniform(v, 65, RB_SMALL_MAX); /* small */
    case 9: case 10: case 11: return RB_SMALL_MAX + 1 + v % (RB_MEDIUM_MAX - RB_SMALL_MAX); /* medium */
    case 12: case 13: return RB_MEDIUM_MAX + 1 + v % (8 * RB_MiB);                /* huge */
    default: {                                                                    /* boundaries */
        static const size_t edge[] = {16, 17, 128, 129, 1024, 4096, 65536, 65537, RB_SMALL_MAX,
                                      RB_SMALL_MAX + 1, RB_MEDIUM_MAX, RB_MEDIUM_MAX + 1,
                                      4 * RB_MiB - 64, 4 * RB_MiB, 4 * RB_MiB + 1};
        size_t s = edge[v % (sizeof edge / sizeof edge[0])];
        return s + ((v >> 8) & 3) - 1;
    }
    }
}

static size_t page_size(void) {
    static size_t pg;
    if (!pg) pg = (size_t)sysconf(_SC_PAGESIZE);
    return pg;
}

static size_t get_align(rd *r) { return (size_t)8 << (u8(r) % 22); } /* 8 B .. 16 MiB */

/* ---- the second thread ----------------------------------------------------- */

enum { W_IDLE, W_FREE, W_MALLOC, W_REALLOC, W_DONE };
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcv = PTHREAD_COND_INITIALIZER;
static int wstate = W_IDLE;
static void *warg, *wres;
static size_t wsize;
static pthread_once_t wonce = PTHREAD_ONCE_INIT;

static void *worker(void *unused) {
    (void)unused;
    pthread_mutex_lock(&wmu);
    for (;;) {
        while (wstate == W_IDLE || wstate == W_DONE) pthread_cond_wait(&wcv, &wmu);
        if (wstate == W_FREE) rsb_free(warg);
        else if (wstate == W_MALLOC) wres = rsb_malloc(wsize);
        else if (wstate == W_REALLOC) wres = rsb_realloc(warg, wsize);
        wstate = W_DONE;
        pthread_cond_broadcast(&wcv);
    }
    return NULL;
}

static void start_worker(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0) abort();
    pthread_detach(t);
}

/* Run one call on the second thread and wait for it (deterministic). */
static void *on_worker(int what, void *arg, size_t size) {
    pthread_once(&wonce, start_worker);
    pthread_mutex_lock(&wmu);
    warg = arg;
    wsize = size;
    wstate = what;
    pthread_cond_broadcast(&wcv);
    while (wstate != W_DONE) pthread_cond_wait(&wcv, &wmu);
    void *res = wres;
    wstate = W_IDLE;
    pthread_mutex_unlock(&wmu);
    return res;
}

/* ---- the shadow model ------------------------------------------------------- */

static void full_check(const blk *b, const char *when) {
    size_t bad = rb_check_sparse(b->p, b->fill, b->size);
    if (bad != (size_t)-1)
        FAIL("%s: block %p (size %zu, usable %zu, align %zu) corrupted at offset %zu", when, (void *)b->p,
             b->size, b->usable, b->align, bad);
}

static void add(void *p, size_t size, size_t align, bool zeroed, const char *what, int fill) {
    if (!p) FAIL("%s(%zu) returned NULL (errno %d)", what, size, errno);
    if ((uintptr_t)p % (align < 16 ? 16 : align)) FAIL("%s(%zu, align %zu) returned %p", what, size, align, p);
    size_t u = rsb_malloc_usable_size(p);
    if (u < size) FAIL("%s(%zu): usable size %zu", what, size, u);
    if (zeroed && !rb_is_zero_sparse(p, size)) FAIL("%s(%zu): memory not zeroed", what, size);
    if (nlive == SLOTS) FAIL("model full");
    blk *b = &live[nlive++];
    b->p = p;
    b->size = size;
    b->usable = u;
    b->align = align;
    b->fill = fill >= 0 ? (unsigned)fill : fill_seq++;
    live_bytes += size;
    rb_fill_sparse(p, b->fill, size);
}

static blk take(unsigned i) {
    blk b = live[i];
    live_bytes -= b.size;
    live[i] = live[--nlive];
    return b;
}

static int cmp_addr(const void *x, const void *y) {
    const blk *a = *(const blk *const *)x, *b = *(const blk *const *)y;
    return a->p < b->p ? -1 : a->p > b->p;
}

/* After every operation. */
static void check_model(void) {
    const blk *sorted[SLOTS];
    for (unsigned i = 0; i < nlive; i++) {
        const blk *b = &live[i];
        sorted[i] = b;
        size_t u = rsb_malloc_usable_size(b->p);
        if (u != b->usable) FAIL("usable size of %p changed from %zu to %zu", (void *)b->p, b->usable, u);
        size_t head = b->size < 64 ? b->size : 64;
        size_t bad = rb_check_range(b->p, b->fill, 0, head);
        if (bad == (size_t)-1 && b->size > 64) bad = rb_check_range(b->p, b->fill, b->size - 64, b->size);
        if (bad != (size_t)-1)
            FAIL("block %p (size %zu, usable %zu) corrupted at offset %zu", (void *)b->p, b->size, b->usable, bad);
    }
    qsort(sorted, nlive, sizeof sorted[0], cmp_addr);
    for (unsigned i = 1; i < nlive; i++)
        if ((uintptr_t)sorted[i - 1]->p + sorted[i - 1]->usable > (uintptr_t)sorted[i]->p)
            FAIL("blocks overlap: %p+%zu and %p+%zu", (void *)sorted[i - 1]->p, sorted[i - 1]->usable,
                 (void *)sorted[i]->p, sorted[i]->usable);
}

/* ---- operations --------------------------------------------------------------- */

static void expect_fail(void *p, int err, int want, const char *what) {
    if (p) FAIL("%s succeeded, expected failure", what);
    if (err != want) FAIL("%s: errno %d, expected %d", what, err, want);
}

static size_t absurd(rd *r) {
    uint32_t v = u32(r);
    switch (v & 3) {
    case 0: return SIZE_MAX - (v >> 2);
    case 1: return (size_t)PTRDIFF_MAX + 1 + (v >> 2);
    case 2: return ((size_t)1 << 48) + ((size_t)(v >> 2) << 12); /* beyond the address space */
    default: return (size_t)PTRDIFF_MAX - (v >> 2);
    }
}

static void do_realloc(unsigned i, size_t ns, bool remote) {
    blk b = live[i];
    full_check(&b, "before realloc");
    void *q = remote ? on_worker(W_REALLOC, b.p, ns) : rsb_realloc(b.p, ns);
    if (ns == 0) { /* glibc semantics: freed, NULL */
        if (q) FAIL("realloc(p, 0) returned %p", q);
        take(i);
        return;
    }
    if (!q) FAIL("realloc(%zu -> %zu) failed (errno %d)", b.size, ns, errno);
    size_t keep = b.size < ns ? b.size : ns;
    size_t bad = rb_check_sparse_n(q, b.fill, b.size, keep);
    if (bad != (size_t)-1) FAIL("realloc %zu -> %zu lost contents at offset %zu", b.size, ns, bad);
    take(i);
    add(q, ns, 16, false, "realloc", (int)b.fill);
}

static void step(rd *r) {
    uint8_t op = u8(r);
    op_index++;
    /* Keep the live set bounded. */
    if (nlive == SLOTS || live_bytes > LIVE_CAP) op = 4;
    switch (op % 16) {
    case 0: case 1: { /* malloc */
        size_t s = get_size(r);
        add(rsb_malloc(s), s, 16, false, "malloc", -1);
        break;
    }
    case 2: { /* calloc */
        size_t s = get_size(r);
        size_t n = 1 + u8(r) % 8;
        size_t m = s / n + (s % n != 0);
        add(rsb_calloc(n, m), n * m, 16, true, "calloc", -1);
        break;
    }
    case 3: { /* realloc, maybe to another class; realloc(NULL) */
        size_t s = get_size(r);
        if (!nlive || (s & 31) == 31) {
            add(rsb_realloc(NULL, s ? s : 1), s ? s : 1, 16, false, "realloc(NULL)", -1);
            break;
        }
        do_realloc(u8(r) % nlive, s, false);
        break;
    }
    case 4: case 5: { /* free */
        if (!nlive) break;
        unsigned i = u8(r) % nlive;
        full_check(&live[i], "before free");
        blk b = take(i);
        errno = 4242;
        switch (b.size & 3) {
        case 0: rsb_free_sized(b.p, b.size); break;
        case 1: rsb_free_aligned_sized(b.p, b.align, b.size); break;
        default: rsb_free(b.p); break;
        }
        if (errno != 4242) FAIL("free changed errno to %d", errno);
        break;
    }
    case 6: { /* aligned allocations */
        size_t align = get_align(r);
        size_t s = get_size(r);
        uint8_t how = u8(r) % 5;
        if (how == 0) {
            add(rsb_memalign(align, s), s, align, false, "memalign", -1);
        } else if (how == 1) {
            void *p = (void *)0x1;
            int e = rsb_posix_memalign(&p, align, s);
            if (e) FAIL("posix_memalign(%zu, %zu) returned %d", align, s, e);
            add(p, s, align, false, "posix_memalign", -1);
        } else if (how == 2) {
            add(rsb_aligned_alloc(align, s), s, align, false, "aligned_alloc", -1);
        } else if (how == 3) {
            add(rsb_valloc(s), s, page_size(), false, "valloc", -1);
        } else {
            size_t ps = s > 4 * RB_MiB ? 4 * RB_MiB : s, pg = page_size();
            void *p = rsb_pvalloc(ps);
            size_t want = ps ? (ps + pg - 1) & ~(pg - 1) : pg;
            add(p, want, pg, false, "pvalloc", -1);
        }
        break;
    }
    case 7: { /* free from the second thread (a remote free) */
        if (!nlive) break;
        unsigned i = u8(r) % nlive;
        full_check(&live[i], "before remote free");
        blk b = take(i);
        on_worker(W_FREE, b.p, 0);
        break;
    }
    case 8: { /* allocated by the second thread, used and freed here */
        size_t s = get_size(r);
        add(on_worker(W_MALLOC, NULL, s), s, 16, false, "malloc (second thread)", -1);
        break;
    }
    case 9: { /* realloc on the second thread */
        if (!nlive) break;
        size_t s = get_size(r);
        do_realloc(u8(r) % nlive, s, true);
        break;
    }
    case 10: { /* use the whole usable size: it is the block's */
        if (!nlive) break;
        unsigned i = u8(r) % nlive;
        blk *b = &live[i];
        full_check(b, "before growing to the usable size");
        live_bytes += b->usable - b->size;
        b->size = b->usable;
        rb_fill_sparse(b->p, b->fill, b->size);
        break;
    }
    case 11: { /* absurd requests fail cleanly, leaving everything intact */
        size_t s = absurd(r);
        uint8_t how = u8(r) % 7;
        void *p;
        errno = 0;
        if (how == 0) {
            p = rsb_malloc(s);
            expect_fail(p, errno, ENOMEM, "malloc(absurd)");
        } else if (how == 1) {
            p = rsb_calloc(s / 3 + 2, 3 + (s & 1));
            expect_fail(p, errno, ENOMEM, "calloc(absurd)");
        } else if (how == 2) {
            size_t al = get_align(r);
            p = rsb_memalign(al, s);
            expect_fail(p, errno, ENOMEM, "memalign(absurd)");
        } else if (how == 3) {
            size_t al = get_align(r);
            p = (void *)0x1;
            errno = 77;
            int e = rsb_posix_memalign(&p, al, s);
            if (e != ENOMEM || p != (void *)0x1 || errno != 77) FAIL("posix_memalign(absurd): %d", e);
        } else if (how == 4) {
            errno = 0;
            size_t al = 24 + (s & 7) * 16; /* 8 x odd: not a power of two */
            p = rsb_aligned_alloc(al, 64);
            expect_fail(p, errno, EINVAL, "aligned_alloc(non-power-of-two)");
            p = (void *)0x1;
            int e = rsb_posix_memalign(&p, 4, 64); /* not a multiple of sizeof(void *) */
            if (e != EINVAL || p != (void *)0x1) FAIL("posix_memalign(4): %d", e);
        } else if (nlive) { /* realloc / reallocarray fail, block intact */
            unsigned i = u8(r) % nlive;
            blk *b = &live[i];
            p = how == 5 ? rsb_realloc(b->p, s) : rsb_reallocarray(b->p, s / 7 + 1, 8);
            expect_fail(p, errno, ENOMEM, how == 5 ? "realloc(absurd)" : "reallocarray(overflow)");
            full_check(b, "after a failed realloc");
        }
        break;
    }
    case 12: { /* reallocarray */
        if (!nlive) break;
        size_t s = get_size(r);
        size_t n = 1 + u8(r) % 4;
        size_t m = s / n + 1;
        unsigned i = u8(r) % nlive;
        blk b = live[i];
        full_check(&b, "before reallocarray");
        void *q = rsb_reallocarray(b.p, n, m);
        if (!q) FAIL("reallocarray(%zu x %zu) failed", n, m);
        size_t keep = b.size < n * m ? b.size : n * m;
        size_t bad = rb_check_sparse_n(q, b.fill, b.size, keep);
        if (bad != (size_t)-1) FAIL("reallocarray lost contents at %zu", bad);
        take(i);
        add(q, n * m, 16, false, "reallocarray", (int)b.fill);
        break;
    }
    case 13: { /* many small blocks of one size, freed in another order */
        size_t base = u8(r);
        size_t mult = 1 + u8(r) % 4;
        size_t s = 1 + base * mult;
        unsigned n = 2 + u8(r) % 12;
        for (unsigned k = 0; k < n && nlive < SLOTS; k++) add(rsb_malloc(s), s, 16, false, "malloc (burst)", -1);
        break;
    }
    case 14: { /* realloc to 0 frees */
        if (!nlive) break;
        do_realloc(u8(r) % nlive, 0, false);
        break;
    }
    default: { /* trim, sometimes */
        if ((u8(r) & 15) == 0) rsb_malloc_trim(0);
        break;
    }
    }
    check_model();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rd r = {data, size, 0};
    nlive = 0;
    live_bytes = 0;
    op_index = 0;
    while (r.i < r.n) step(&r);
    for (unsigned i = 0; i < nlive; i++) full_check(&live[i], "at the end");
    while (nlive) {
        blk b = take(nlive - 1);
        if (nlive & 1)
            on_worker(W_FREE, b.p, 0);
        else
            rsb_free(b.p);
    }
    return 0;
}
