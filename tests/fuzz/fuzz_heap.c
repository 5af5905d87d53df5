/*
 * Differential fuzzer of the freestanding heap (rsb_heap_*), the region
 * build's counterpart of fuzz_api.c.  Each input is a program: the first two
 * bytes place and size the region (misaligned starts, odd lengths), the rest
 * are operations (alloc, aligned alloc, realloc, free, usable size, and the
 * errors the heap must report through its hook: a foreign pointer, a pointer
 * inside a block, an immediate second free).  A shadow model records every
 * live block (size, fill byte); after each step the fuzzer checks contents,
 * alignment, usable size, that the block lies in the region and overlaps no
 * other.  At the end every block is freed and the heap must be whole again:
 * nothing in use and largest_free back to its value after init (exhaustion
 * never loses memory).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsbmalloc_heap.h"

#define REGION (256 * 1024)
#define MAXLIVE 256

static _Alignas(4096) unsigned char region[REGION + 256];
static struct blk {
    unsigned char *p;
    size_t size;
    unsigned char fill;
} live[MAXLIVE];
static unsigned nlive;
static unsigned hook_calls;
static unsigned char *lo, *hi;

static void fail(const char *what, const void *p, size_t n) {
    fprintf(stderr, "fuzz_heap: %s (pointer %p, size %zu, %u live)\n", what, p, n, nlive);
    abort();
}

static void hook(rsb_heap *h, rsb_heap_error e, const void *p, void *ctx) {
    (void)h, (void)e, (void)p, (void)ctx;
    hook_calls++;
}

typedef struct {
    const uint8_t *d;
    size_t n, i;
} input;

static unsigned byte(input *in) { return in->i < in->n ? in->d[in->i++] : 0; }

/* Sizes across the classes and page runs, sometimes absurd. */
static size_t pick_size(input *in) {
    unsigned k = byte(in), v = byte(in) | (byte(in) << 8);
    switch (k % 8) {
    case 0: return v % 64;
    case 1: case 2: return v % 512;
    case 3: return v % 4096;
    case 4: return v % 16384;
    case 5: return (size_t)v * 2 % (64 * 1024);
    case 6: return (size_t)v * 4; /* up to the whole region and beyond */
    default: return k & 8 ? (size_t)-1 / 2 : (size_t)-1;
    }
}

static void check_block(const struct blk *b) {
    for (size_t i = 0; i < b->size; i++)
        if (b->p[i] != b->fill) fail("contents changed", b->p, b->size);
}

static void admit(rsb_heap *h, unsigned char *p, size_t size, size_t align, unsigned char fill) {
    if ((uintptr_t)p % align) fail("misaligned block", p, size);
    if (p < lo || p + size > hi) fail("block outside the region", p, size);
    if (rsb_heap_usable_size(h, p) < size) fail("usable size below the request", p, size);
    for (unsigned i = 0; i < nlive; i++)
        if (p < live[i].p + live[i].size && live[i].p < p + (size ? size : 1) && live[i].size)
            fail("blocks overlap", p, size);
    memset(p, fill, size);
    live[nlive++] = (struct blk){p, size, fill};
}

static void expect_report(rsb_heap *h, void *p, const char *what) {
    unsigned before = hook_calls;
    rsb_heap_free(h, p);
    if (hook_calls != before + 1) fail(what, p, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    input in = {data, size, 0};
    size_t off = byte(&in) % 256, len = REGION - (byte(&in) % 64) * 512;
    rsb_heap *h = rsb_heap_init(region + off, len);
    if (!h) fail("init refused a 224..256 KiB region", region + off, len);
    rsb_heap_set_error_hook(h, hook, NULL);
    lo = region + off;
    hi = region + off + len;
    rsb_heap_stats_t st0, st;
    rsb_heap_stats(h, &st0);
    nlive = 0;
    unsigned char fill = 1;
    for (unsigned steps = 0; in.i < in.n && steps < 4000; steps++) {
        unsigned op = byte(&in) % 10;
        struct blk *b = nlive ? &live[byte(&in) % nlive] : NULL;
        fill = (unsigned char)(fill * 5 + 3);
        if (op <= 1 && nlive < MAXLIVE) { /* alloc */
            size_t n = pick_size(&in);
            unsigned char *p = rsb_heap_alloc(h, n);
            if (p) admit(h, p, n, 16, fill);
        } else if (op == 2 && nlive < MAXLIVE) { /* aligned */
            size_t align = (size_t)1 << (3 + byte(&in) % 11), n = pick_size(&in);
            unsigned char *p = rsb_heap_alloc_aligned(h, align, n);
            if (p) admit(h, p, n, align, fill);
        } else if (op == 3 && b) { /* realloc keeps the prefix, or fails intact */
            size_t n = pick_size(&in);
            if (n == 0) continue; /* size 0 frees: covered by free */
            check_block(b);
            unsigned char *p = rsb_heap_realloc(h, b->p, n);
            if (!p) {
                check_block(b);
                continue;
            }
            size_t keep = n < b->size ? n : b->size;
            for (size_t i = 0; i < keep; i++)
                if (p[i] != b->fill) fail("realloc lost contents", p, n);
            *b = live[--nlive];
            admit(h, p, n, 16, fill);
        } else if ((op == 4 || op == 5) && b) { /* free */
            check_block(b);
            rsb_heap_free(h, b->p);
            *b = live[--nlive];
        } else if (op == 6 && b) {
            if (rsb_heap_usable_size(h, b->p) < b->size) fail("usable size shrank", b->p, b->size);
        } else if (op == 7 && b) { /* errors: each must reach the hook, heap intact */
            unsigned kind = byte(&in) % 3;
            if (kind == 0) {
                int local;
                expect_report(h, &local, "foreign pointer not reported");
            } else if (kind == 1 && b->size >= 32) {
                expect_report(h, b->p + 16, "pointer inside a block not reported");
            } else if (kind == 2) {
                check_block(b);
                unsigned char *p = b->p;
                rsb_heap_free(h, p);
                *b = live[--nlive];
                expect_report(h, p, "immediate double free not reported");
            }
        }
    }
    for (unsigned i = 0; i < nlive; i++) check_block(&live[i]);
    while (nlive) rsb_heap_free(h, live[--nlive].p);
    rsb_heap_stats(h, &st);
    if (st.in_use != 0) fail("bytes still in use after freeing everything", NULL, st.in_use);
    if (st.largest_free != st0.largest_free) fail("largest_free not restored", NULL, st.largest_free);
    return 0;
}
