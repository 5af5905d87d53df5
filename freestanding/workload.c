/*
 * The bare-metal self-check (see workload.h).  Built with -ffreestanding
 * -nostdlib and no libc, like the library: byte loops only, integer
 * arithmetic that needs no libgcc helper on a 32-bit target.
 *
 *   1. a random mix of alloc / free / realloc / aligned alloc over slots,
 *      every block filled with a pattern and checked before it is freed
 *      or resized, rsb_heap_check() every 1024 operations;
 *   2. exhaustion: fill with 16, 64, 256, 4096 bytes and random sizes until
 *      the first failure; report the utilisation; free everything; the
 *      largest free run must be back to its initial value;
 *   3. errors: a double free, a foreign pointer and an interior pointer
 *      reach the error hook and leave the heap intact;
 *   4. two heaps side by side, each keeping to its own half.
 */
#include "workload.h"

#include <stdint.h>

#include "rsbmalloc_heap.h"

static void (*put)(const char *s);
static int failures;

static void put_uint(size_t v) {
    char b[24];
    int n = 0;
    do {
        b[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char out[24];
    int k = 0;
    while (n) out[k++] = b[--n];
    out[k] = 0;
    put(out);
}

static void check(int ok, const char *what) {
    if (ok) return;
    failures++;
    put("  FAILED: ");
    put(what);
    put("\n");
}

static uint32_t rng = 2463534242u;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void fill(unsigned char *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7u + (i >> 7));
}

static int intact(const unsigned char *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7u + (i >> 7))) return 0;
    return 1;
}

static struct errlog {
    int count;
    rsb_heap_error last;
} errs;

static void on_error(rsb_heap *h, rsb_heap_error e, const void *p, void *ctx) {
    (void)h, (void)p, (void)ctx;
    errs.count++;
    errs.last = e;
}

#define SLOTS 128
static struct slot {
    unsigned char *p;
    size_t n;
    uint32_t seed;
} slots[SLOTS];

static void random_phase(rsb_heap *h, unsigned iterations, size_t max) {
    for (unsigned i = 0; i < iterations; i++) {
        struct slot *s = &slots[rnd() % SLOTS];
        uint32_t r = rnd();
        size_t n = 1 + (r >> 8) % ((r & 7) == 0 ? max : max / 16 + 1);
        if (!s->p) {
            unsigned char *p;
            if ((r & 0x30) == 0) {
                size_t align = (size_t)16 << ((r >> 24) % 8);
                p = rsb_heap_alloc_aligned(h, align, n);
                check(!p || ((uintptr_t)p & (align - 1)) == 0, "aligned allocation");
            } else {
                p = rsb_heap_alloc(h, n);
            }
            if (!p) continue;
            check(((uintptr_t)p & 15) == 0, "16-byte alignment");
            check(rsb_heap_usable_size(h, p) >= n, "usable size");
            s->p = p, s->n = n, s->seed = rnd();
            fill(p, n, s->seed);
        } else if (r & 0x40) {
            check(intact(s->p, s->n, s->seed), "block contents before free");
            rsb_heap_free(h, s->p);
            s->p = 0;
        } else {
            check(intact(s->p, s->n, s->seed), "block contents before realloc");
            unsigned char *q = rsb_heap_realloc(h, s->p, n);
            if (!q) {
                check(intact(s->p, s->n, s->seed), "block kept by a failed realloc");
                continue;
            }
            check(intact(q, n < s->n ? n : s->n, s->seed), "contents moved by realloc");
            s->p = q, s->n = n;
            fill(q, n, s->seed);
        }
        if ((i & 1023) == 0) rsb_heap_check(h);
    }
    for (int k = 0; k < SLOTS; k++)
        if (slots[k].p) {
            check(intact(slots[k].p, slots[k].n, slots[k].seed), "block contents at the end");
            rsb_heap_free(h, slots[k].p);
            slots[k].p = 0;
        }
    rsb_heap_check(h);
}

static size_t largest_free(rsb_heap *h) {
    rsb_heap_stats_t st;
    rsb_heap_stats(h, &st);
    return st.largest_free;
}

/* Fill until the first failure, in blocks kept as a list threaded through
 * the blocks themselves (no side table: the heap may be all the RAM). */
static void exhaustion(rsb_heap *h, size_t len, size_t size) {
    size_t initial = largest_free(h);
    void *list = 0;
    size_t bytes = 0, blocks = 0;
    for (;;) {
        size_t n = size ? size : 1 + rnd() % 4096;
        if (n < sizeof(void *)) n = sizeof(void *);
        void **p = rsb_heap_alloc(h, n);
        if (!p) break;
        *p = list;
        list = p;
        bytes += n;
        blocks++;
    }
    rsb_heap_check(h);
    put("  ");
    put(size ? "" : "random 1..");
    put_uint(size ? size : 4096);
    put(" B: ");
    put_uint(blocks);
    put(" blocks, ");
    /* Basis points, in size_t arithmetic (no 64-bit division on 32-bit targets). */
    size_t bp = len <= (size_t)-1 / 10000 ? bytes * 10000 / len : bytes / (len / 10000);
    put_uint(bp / 100);
    put(".");
    put_uint(bp % 100 / 10);
    put_uint(bp % 10);
    put("% of the region\n");
    check(blocks > 0, "exhaustion: at least one block");
    while (list) {
        void **p = list;
        list = *p;
        rsb_heap_free(h, p);
    }
    rsb_heap_check(h);
    check(largest_free(h) == initial, "exhaustion: largest free back to its initial value");
}

static void error_checks(rsb_heap *h) {
    int local;
    rsb_heap_set_error_hook(h, on_error, 0);
    unsigned char *a = rsb_heap_alloc(h, 24), *b = rsb_heap_alloc(h, 24);
    check(a && b, "two small blocks");
    fill(b, 24, 5);
    errs.count = 0;
    rsb_heap_free(h, a);
    rsb_heap_free(h, a);
    check(errs.count == 1 && errs.last == RSB_HEAP_DOUBLE_FREE, "double free reported");
    rsb_heap_free(h, &local);
    check(errs.count == 2 && errs.last == RSB_HEAP_FOREIGN_POINTER, "foreign pointer reported");
    rsb_heap_free(h, b + 4);
    check(errs.count == 3 && errs.last == RSB_HEAP_INVALID_POINTER, "interior pointer reported");
    check(intact(b, 24, 5), "neighbour intact after bad frees");
    rsb_heap_free(h, b);
    check(errs.count == 3, "good free after bad ones");
    rsb_heap_check(h);
    rsb_heap_set_error_hook(h, 0, 0);
}

int bm_workload(void *mem, size_t len, unsigned iterations, void (*put_fn)(const char *s)) {
    put = put_fn;
    failures = 0;
    unsigned char *m = mem;
    check(rsb_heap_init(m, 32) == 0, "a tiny region is refused");

    rsb_heap *h = rsb_heap_init(m, len);
    check(h != 0, "heap over the whole region");
    if (!h) return failures;
    rsb_heap_stats_t st;
    rsb_heap_stats(h, &st);
    put("heap: ");
    put_uint(len);
    put(" B region, ");
    put_uint(st.capacity);
    put(" B capacity, slabs of ");
    put_uint(st.window);
    put(" B windows, ");
    put_uint(st.classes);
    put(" slab classes up to ");
    put_uint(st.small_max);
    put(" B\n");

    put("random alloc/free/realloc: ");
    put_uint(iterations);
    put(" operations\n");
    random_phase(h, iterations, len / 64 < 20000 ? len / 64 : 20000);
    rsb_heap_stats(h, &st);
    check(st.in_use == 0, "nothing in use after the random phase");
    check(st.largest_free == st.capacity, "whole capacity free after the random phase");

    put("exhaustion (utilisation at the first failure):\n");
    static const size_t sizes[] = {16, 64, 256, 4096, 0};
    for (unsigned i = 0; i < 5; i++) exhaustion(h, len, sizes[i]);

    put("errors through the hook\n");
    error_checks(h);

    put("two heaps side by side\n");
    rsb_heap *h1 = rsb_heap_init(m, len / 2), *h2 = rsb_heap_init(m + len / 2, len - len / 2);
    check(h1 && h2, "two half heaps");
    if (h1 && h2) {
        for (unsigned i = 0; i < iterations / 4; i++) {
            rsb_heap *x = (i & 1) ? h2 : h1;
            unsigned char *lo = (i & 1) ? m + len / 2 : m, *hi = (i & 1) ? m + len : m + len / 2;
            size_t n = 1 + rnd() % 700;
            unsigned char *p = rsb_heap_alloc(x, n);
            if (!p) continue;
            check(p >= lo && p + n <= hi, "block inside its own heap");
            fill(p, n, i);
            struct slot *s = &slots[rnd() % SLOTS];
            if (s->p) {
                rsb_heap *owner = s->p < m + len / 2 ? h1 : h2;
                check(intact(s->p, s->n, s->seed), "block of the other heap intact");
                rsb_heap_free(owner, s->p);
            }
            s->p = p, s->n = n, s->seed = i;
        }
        for (int k = 0; k < SLOTS; k++)
            if (slots[k].p) {
                rsb_heap_free(slots[k].p < m + len / 2 ? h1 : h2, slots[k].p);
                slots[k].p = 0;
            }
        rsb_heap_check(h1);
        rsb_heap_check(h2);
        check(largest_free(h1) > 0 && largest_free(h2) > 0, "both heaps whole");
    }
    put(failures ? "FAIL: " : "PASS: ");
    put_uint((size_t)failures);
    put(" failed checks\n");
    return failures;
}
